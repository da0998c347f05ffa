import { describe, expect, it } from 'vitest';
import type { AppendMsg, Message } from '../../src/raft/index.ts';
import { ofType, RawNet } from './raw.ts';

/**
 * Quorum-first replication (Config.holdBackEntries): new entries go at once
 * to the followers the next commit needs; the spare ones get them in larger
 * batches. Sending later never touches safety; these pin the liveness side:
 * a spare follower is never held past its bound, a heartbeat answer, a
 * transfer, or the loss of a follower the commit counted on.
 */

const FIVE = ['a', 'b', 'c', 'd', 'e'];

function leaderA(ids: string[], holdBackEntries: number): RawNet {
  const net = new RawNet(ids, {}, { config: { holdBackEntries, heartbeatTicks: 1, electionTicks: 10 } });
  net.elect('a');
  net.deliver();
  expect(net.node('a').status()).toMatchObject({ role: 'leader', commit: 1 });
  return net;
}

const appsTo = (ms: readonly Message[], to: string) =>
  ms.filter((m): m is AppendMsg => m.type === 'app' && m.to === to && m.entries.length > 0);

describe('quorum-first replication (holdBackEntries)', () => {
  it('5 nodes: a new entry goes to two followers at once; the other two get the batch at the bound', () => {
    const net = leaderA(FIVE, 4);
    const sent: Message[] = [];
    for (let i = 1; i <= 3; i++) {
      net.propose('a', `p${i}`);
      sent.push(...net.deliver());
    }
    expect(appsTo(sent, 'b').length).toBe(3);
    expect(appsTo(sent, 'c').length).toBe(3);
    expect(appsTo(sent, 'd')).toEqual([]);
    expect(appsTo(sent, 'e')).toEqual([]);
    // b and c are enough to commit: the leader and every follower it told know it.
    expect(net.node('a').status().commit).toBe(4);
    // The fourth entry brings the spare followers' backlog to the bound: one append each, with all four.
    net.propose('a', 'p4');
    const fourth = net.deliver();
    expect(appsTo(fourth, 'd').map((m) => m.entries.length)).toEqual([4]);
    expect(appsTo(fourth, 'e').map((m) => m.entries.length)).toEqual([4]);
    for (const id of FIVE) expect(net.peer(id).log().length).toBe(5);
  });

  it('3 nodes: one follower takes each entry; the other catches up at its heartbeat answer', () => {
    const net = leaderA(['a', 'b', 'c'], 64);
    net.propose('a', 'x');
    const sent = net.deliver();
    expect(appsTo(sent, 'b').length).toBe(1);
    expect(appsTo(sent, 'c')).toEqual([]);
    expect(net.node('a').status().commit).toBe(2);
    expect(net.peer('c').log().length).toBe(1);
    net.tick('a');
    const beat = net.deliver();
    expect(appsTo(beat, 'c').map((m) => m.entries.length)).toEqual([1]);
    expect(net.peer('c').log().length).toBe(2);
  });

  it('0 (the default) sends every entry to every follower at once', () => {
    const net = leaderA(FIVE, 0);
    net.propose('a', 'x');
    const sent = net.deliver();
    for (const id of ['b', 'c', 'd', 'e']) expect(appsTo(sent, id).length).toBe(1);
  });

  it('a follower the commit counted on becomes unreachable: the next entry goes to a spare one with its backlog', () => {
    const net = leaderA(FIVE, 64);
    net.propose('a', 'p1');
    net.deliver();
    net.node('a').reportUnreachable('b');
    net.propose('a', 'p2');
    const sent = net.deliver((m) => m.to !== 'b');
    // c already had p1; d takes p1 and p2 in one append.
    expect(appsTo(sent, 'd').map((m) => m.entries.map((e) => e.index))).toEqual([[2, 3]]);
    expect(net.node('a').status().commit).toBe(3);
  });

  it('a transfer target whose old append was in flight is sent the newer entries at its answer, not held back', () => {
    const net = new RawNet(
      FIVE,
      {},
      { config: { holdBackEntries: 64, maxInflightMsgs: 1, lazyCommit: true, electionTicks: 10 } },
    );
    net.elect('a');
    net.deliver();
    net.propose('a', 'p1');
    net.deliver();
    // b and c probe (unreachable): p2 goes to them (probing), d and e, so e holds an append in flight.
    net.node('a').reportUnreachable('b');
    net.node('a').reportUnreachable('c');
    net.propose('a', 'p2');
    const toE = net.take((m) => m.to === 'e');
    net.deliver();
    // b and c replicate again and take p3; d and e would wait for it.
    net.propose('a', 'p3');
    net.deliver((m) => m.to !== 'e');
    expect(net.peer('e').log().length).toBe(1);
    net.node('a').transferLeader('e');
    net.flush('a');
    // e answers its old append; only messages from here on, no tick: it must be sent p3 and then TimeoutNow.
    net.queue.push(...toE);
    net.deliver();
    expect(net.node('e').status()).toMatchObject({ role: 'leader' });
  });

  it('while the two followers a commit needs have an entry in flight, a spare one is not sent it', () => {
    const net = leaderA(FIVE, 64);
    net.propose('a', 'p1');
    // Nothing delivered: b and c hold p1 in flight; d and e wait.
    const queued = net.take();
    expect(queued.filter((m) => m.type === 'app').map((m) => m.to)).toEqual(['b', 'c']);
  });

  it('a follower with an append in flight covers the commit: 3 nodes, the spare one waits, and so may the proposal', () => {
    const opts = (holdBackEntries: number) => ({
      config: { holdBackEntries, maxInflightMsgs: 1, lazyCommit: true, electionTicks: 10 },
    });
    for (const [bound, paused] of [
      [64, true],
      [0, false],
    ] as const) {
      const net = new RawNet(['a', 'b', 'c'], {}, opts(bound));
      net.elect('a');
      net.deliver();
      net.propose('a', 'p1');
      const inFlight = net.take();
      expect(inFlight.filter((m) => m.type === 'app').map((m) => m.to)).toEqual(bound === 0 ? ['b', 'c'] : ['b']);
      if (bound === 0) continue;
      // b is busy with p1 and will take what comes next at its answer: a new proposal may wait for it.
      expect(net.node('a').followersPaused()).toBe(paused);
      net.propose('a', 'p2');
      expect(net.take().filter((m) => m.type === 'app')).toEqual([]);
      net.queue.push(...inFlight);
      const sent = net.deliver();
      expect(appsTo(sent, 'b').map((m) => m.entries.map((e) => e.index))).toEqual([[2], [3]]);
      expect(net.node('a').status().commit).toBe(3);
    }
  });

  it('a spare follower gets what waits for it at the next tick, before any heartbeat; the leader wakes for it', () => {
    const net = new RawNet(
      ['a', 'b', 'c'],
      {},
      { config: { holdBackEntries: 64, heartbeatTicks: 5, electionTicks: 10 } },
    );
    net.elect('a');
    net.deliver();
    net.propose('a', 'x');
    net.deliver();
    expect(net.peer('c').log().length).toBe(1);
    expect(net.node('a').ticksUntilTimeout()).toBe(1);
    const tick = net.tick('a');
    expect(ofType(tick, 'heartbeat')).toEqual([]);
    expect(appsTo(tick, 'c').map((m) => m.entries.length)).toEqual([1]);
    net.deliver();
    expect(net.peer('c').log().length).toBe(2);
    expect(net.node('a').ticksUntilTimeout()).toBeGreaterThan(1);
  });

  it("a spare follower's catch-up in flight does not cover new entries: they go to the other follower at once", () => {
    const net = new RawNet(
      ['a', 'b', 'c'],
      {},
      { config: { holdBackEntries: 64, maxInflightMsgs: 1, lazyCommit: true, heartbeatTicks: 5, electionTicks: 10 } },
    );
    net.elect('a');
    net.deliver();
    net.propose('a', 'p1');
    net.deliver();
    // The tick sends c its catch-up; it stays in flight.
    const flushed = net.tick('a');
    expect(appsTo(flushed, 'c').length).toBe(1);
    net.take((m) => m.to === 'c');
    expect(net.node('a').followersPaused()).toBe(false);
    net.propose('a', 'p2');
    expect(
      net
        .take()
        .filter((m) => m.type === 'app')
        .map((m) => m.to),
    ).toEqual(['b']);
  });
});
