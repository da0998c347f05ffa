import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import { RawNet } from './raw.ts';

/**
 * Config.appendsAsHeartbeats: a periodic heartbeat round skips a follower
 * that was sent an append since the last round and answered since, or that
 * answered the last round and knows the commit index, and sends a spare
 * follower its held-back entries in an append instead of a heartbeat.
 * Skipping a heartbeat never touches safety; these pin the liveness side: a
 * silent follower, one with a commit index to learn, a round carrying a
 * read, and an explicit heartbeat still reach every follower, nobody goes
 * two rounds without a message, and with the option off every follower gets
 * every round.
 */

const HEARTBEAT = 5;

function leaderA(appendsAsHeartbeats: boolean, holdBackEntries = 0, lazyCommit = false): RawNet {
  const net = new RawNet(
    ['a', 'b', 'c'],
    {},
    { config: { appendsAsHeartbeats, holdBackEntries, lazyCommit, heartbeatTicks: HEARTBEAT, electionTicks: 20 } },
  );
  net.elect('a');
  net.deliver();
  const first = beatsTo(net.tick('a', HEARTBEAT));
  if (appendsAsHeartbeats && !lazyCommit) {
    // The election's appends told both the commit index: the first round skips them, the second does not.
    expect(first).toEqual([]);
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual(['b', 'c']);
  } else expect(first).toEqual(['b', 'c']);
  // Either way both were sent the last round, and answer it now.
  net.deliver();
  return net;
}

const beatsTo = (ms: readonly Message[]) =>
  ms
    .filter((m) => m.type === 'heartbeat')
    .map((m) => m.to)
    .sort();
const appsTo = (ms: readonly Message[]) =>
  ms
    .filter((m) => m.type === 'app')
    .map((m) => m.to)
    .sort();

describe('appends stand in for heartbeats (appendsAsHeartbeats)', () => {
  it('a follower sent an append that it answered since the last round gets no heartbeat; one that got nothing does', () => {
    const net = leaderA(true);
    net.tick('a', 2);
    net.propose('a', 'x');
    // b takes the append and answers; c's copy is lost.
    net.deliver((m) => m.to !== 'c');
    const round = net.tick('a', HEARTBEAT - 2);
    expect(beatsTo(round)).toEqual(['c']);
    // b learns the commit with the next append or round; nothing is lost meanwhile.
    net.deliver();
    net.tick('a', HEARTBEAT);
    net.deliver();
    for (const id of ['b', 'c']) expect(net.node(id).status().commit).toBe(net.node('a').status().commit);
  });

  it('off: every follower gets every round', () => {
    const net = leaderA(false);
    net.tick('a', 2);
    net.propose('a', 'x');
    net.deliver();
    expect(beatsTo(net.tick('a', HEARTBEAT - 2))).toEqual(['b', 'c']);
  });

  it('a follower that did not answer its append gets the heartbeat', () => {
    const net = leaderA(true);
    net.tick('a', 2);
    net.propose('a', 'x');
    // Both appends arrive; c's answer is lost.
    net.deliver((m) => !(m.from === 'c' && m.to === 'a'));
    expect(beatsTo(net.tick('a', HEARTBEAT - 2))).toEqual(['c']);
  });

  it('a round that carries a read goes to every follower', () => {
    const net = leaderA(true);
    net.tick('a', 2);
    net.propose('a', 'x');
    net.deliver();
    net.node('a').readIndex('r1');
    // The read's own round is lost; the periodic one carries it to everyone.
    net.flush('a');
    net.take((m) => m.type === 'heartbeat');
    const round = net.tick('a', HEARTBEAT - 2);
    expect(beatsTo(round)).toEqual(['b', 'c']);
    expect(round.filter((m) => m.type === 'heartbeat').every((m) => m.type === 'heartbeat' && m.ctx === 'r1')).toBe(
      true,
    );
  });

  it('an explicit heartbeat (the one a leader sends as it goes quiet) goes to every follower', () => {
    const net = leaderA(true);
    net.tick('a', 2);
    net.propose('a', 'x');
    net.deliver();
    net.node('a').heartbeat();
    expect(beatsTo(net.flush('a'))).toEqual(['b', 'c']);
  });

  it('a follower silent for a whole round gets the next one, so nobody goes two rounds without a message', () => {
    const net = leaderA(true);
    net.tick('a', 2);
    net.propose('a', 'x');
    net.deliver();
    expect(beatsTo(net.tick('a', HEARTBEAT - 2))).toEqual([]);
    // No append since that round: the next round reaches both.
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual(['b', 'c']);
  });

  it('a follower that answered the last round and knows the commit index skips a round, and gets the next', () => {
    const net = leaderA(true);
    // leaderA's first round went to both, and both answered it.
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual([]);
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual(['b', 'c']);
    net.deliver();
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual([]);
  });

  it('idle, a follower hears from the leader every other round, and nobody campaigns', () => {
    const net = leaderA(true);
    let beats = 0;
    for (let round = 0; round < 40; round++) {
      beats += beatsTo(net.tick('a', HEARTBEAT)).length;
      for (const id of ['b', 'c']) net.tick(id, HEARTBEAT);
      net.deliver();
    }
    expect(beats).toBe(40);
    expect(net.node('a').status().role).toBe('leader');
    for (const id of ['b', 'c']) expect(net.node(id).status().role).toBe('follower');
  });

  it('a follower that did not answer the last round gets this one', () => {
    const net = leaderA(true);
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual([]);
    net.tick('a', HEARTBEAT);
    // c's answer to that round is lost.
    net.deliver((m) => !(m.from === 'c' && m.to === 'a'));
    expect(beatsTo(net.tick('a', HEARTBEAT))).toEqual(['c']);
  });

  it('a follower with a commit index to learn gets the round (lazyCommit: no append carries it)', () => {
    const net = leaderA(true, 0, true);
    net.tick('a', HEARTBEAT - 1);
    net.propose('a', 'x');
    // The appends arrive, but their answers only after the round, which carries the old commit index.
    net.deliverOnly((m) => m.type === 'app');
    net.tick('a', 1);
    net.deliver((m) => m.type !== 'heartbeat' || m.from !== 'a');
    const committed = net.node('a').status().commit;
    expect(net.node('b').status().commit).toBeLessThan(committed);
    const round = net.tick('a', HEARTBEAT);
    expect(beatsTo(round)).toEqual(['b', 'c']);
    net.deliver();
    for (const id of ['b', 'c']) expect(net.node(id).status().commit).toBe(committed);
  });

  it('with quorum-first replication the spare follower gets its backlog at the round, in an append instead of a heartbeat', () => {
    const net = leaderA(true, 64);
    net.tick('a', 1);
    const sent: Message[] = [];
    for (const v of ['x', 'y']) {
      net.propose('a', v);
      sent.push(...net.deliver());
    }
    // b takes each entry at once; c, the spare, is held back (and not at every tick).
    expect(appsTo(sent).filter((to) => to === 'c')).toEqual([]);
    expect(appsTo(net.tick('a', 1))).toEqual([]);
    const round = net.tick('a', HEARTBEAT - 2);
    expect(beatsTo(round)).toEqual([]);
    expect(appsTo(round)).toEqual(['c']);
    net.deliver();
    expect(net.peer('c').log().length).toBe(net.peer('a').log().length);
  });

  describe('a leader sleeps through a round that would send nothing (ticksUntilTimeout)', () => {
    it('idle, with both followers answered: it announces the round after, and ticking there sends what it would have', () => {
      const net = leaderA(true);
      const a = net.node('a');
      // Both answered the round that just went and know the commit: the next round skips them.
      const due = a.ticksUntilTimeout();
      expect(due).toBe(2 * HEARTBEAT);
      const slept = net.tick('a', due - 1);
      expect(slept).toEqual([]);
      expect(beatsTo(net.tick('a', 1))).toEqual(['b', 'c']);
    });

    it('a follower that has not answered, a read waiting, or a spare backlog keeps the next round due', () => {
      const silent = leaderA(true);
      silent.tick('a', HEARTBEAT);
      silent.tick('a', HEARTBEAT);
      silent.deliver((m) => !(m.from === 'c' && m.to === 'a'));
      expect(silent.node('a').ticksUntilTimeout()).toBe(HEARTBEAT);

      const reading = leaderA(true);
      reading.node('a').readIndex('r1');
      reading.flush('a');
      reading.take((m) => m.type === 'heartbeat');
      expect(reading.node('a').ticksUntilTimeout()).toBe(HEARTBEAT);

      const spare = leaderA(true, 64);
      spare.propose('a', 'x');
      spare.deliver();
      expect(spare.node('a').ticksUntilTimeout()).toBe(HEARTBEAT);
    });

    it('off: every round is due', () => {
      const net = leaderA(false);
      expect(net.node('a').ticksUntilTimeout()).toBe(HEARTBEAT);
    });
  });
});
