import { describe, expect, it } from 'vitest';
import type { ReadOutcome } from '../../src/driver/index.ts';
import type { Message } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { heartbeat, heartbeatResp, ofType, Peer, RawNet, voteMsg, voteResp } from './raw.ts';

const ABC = ['a', 'b', 'c'];
const CQ = { config: { checkQuorum: true, preVote: true, electionTicks: 10, heartbeatTicks: 1 } };

/** a leads term 1 of {a,b,c}, every follower has acknowledged the no-op. */
function leaderA(): RawNet {
  const net = new RawNet(ABC, {}, CQ);
  net.elect('a');
  net.deliver();
  expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
  return net;
}

describe('thesis §6.2 CheckQuorum: a leader without a quorum steps down', () => {
  it('a leader hearing from nobody steps down at the second check, keeping its term', () => {
    const net = leaderA();
    // Responses before the first check count for it; none arrive after.
    net.tick('a', 10);
    expect(net.node('a').status().role).toBe('leader');
    net.tick('a', 9);
    expect(net.node('a').status().role).toBe('leader');
    net.node('a').tick();
    const rd = net.node('a').ready();
    expect(rd.softState).toEqual({ role: 'follower', leader: '' });
    expect(rd.hardState).toBeUndefined();
    expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 1 });
  });

  it('one follower of two answering heartbeats is a quorum: the leader stays', () => {
    const net = leaderA();
    for (let t = 0; t < 100; t++) {
      net.tick('a');
      net.deliver((m) => m.from === 'b' || m.to === 'b');
    }
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('in a 5-node cluster one live follower is not enough', () => {
    const net = new RawNet(['a', 'b', 'c', 'd', 'e'], {}, CQ);
    net.elect('a');
    net.deliver();
    let steppedDownAt = -1;
    for (let t = 1; t <= 30 && steppedDownAt < 0; t++) {
      net.tick('a');
      net.deliver((m) => m.from === 'b' || m.to === 'b');
      if (net.node('a').status().role !== 'leader') steppedDownAt = t;
    }
    expect(steppedDownAt).toBe(20);
  });

  it('in a cluster, an isolated leader steps down and the majority elects a new one', () => {
    const c = new Cluster(ABC, { seed: 3, checkQuorum: true, preVote: true });
    const old = c.elect();
    c.tickAll(5);
    const term = c.node(old).driver.status().term;
    c.isolate(old);
    c.tickAll(20);
    expect(c.node(old).driver.status()).toMatchObject({ role: 'follower', term });
    c.tickAll(40);
    const fresh = c.leader();
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(old);
    expect(c.node(fresh as string).driver.status().term).toBe(term + 1);
    c.heal();
    c.tickAll(5);
    expect(c.node(old).driver.status()).toMatchObject({ role: 'follower', term: term + 1, leader: fresh });
  });
});

describe('thesis §4.2.3 / §6.2 leader lease: votes are ignored while a leader is heard', () => {
  it('a follower that heard from its leader ignores a higher-term RequestVote', () => {
    const p = new Peer('b', ABC, CQ);
    p.node.step(heartbeat('a', 'b', 1, 0));
    p.flush();
    p.node.tick();
    p.node.step(voteMsg('c', 'b', 2, 5, 1));
    expect(p.flush()).toEqual([]);
    expect(p.status).toMatchObject({ term: 1, vote: '', leader: 'a' });
    // Pre-votes too.
    p.node.step(voteMsg('c', 'b', 2, 5, 1, { preVote: true }));
    expect(p.flush()).toEqual([]);
  });

  it('grants it once an election timeout has passed without the leader', () => {
    const p = new Peer('b', ABC, CQ);
    p.node.step(heartbeat('a', 'b', 1, 0));
    p.flush();
    for (let i = 0; i < 9; i++) p.node.tick();
    p.flush();
    p.node.step(voteMsg('c', 'b', 2, 5, 1));
    expect(p.flush()).toEqual([]);
    p.node.tick();
    p.flush();
    p.node.step(voteMsg('c', 'b', 2, 5, 1));
    expect(p.flush()).toEqual([voteResp('b', 'c', 2)]);
    expect(p.status).toMatchObject({ term: 2, vote: 'c' });
  });

  it('forgetLeader ends the lease at once without changing the term', () => {
    const p = new Peer('b', ABC, CQ);
    p.node.step(heartbeat('a', 'b', 1, 0));
    p.flush();
    p.node.forgetLeader();
    expect(p.status).toMatchObject({ term: 1, leader: '' });
    p.node.step(voteMsg('c', 'b', 2, 0, 0));
    expect(p.flush()).toEqual([voteResp('b', 'c', 2)]);
  });

  it('a leader in good standing ignores a higher-term RequestVote from a rejoining node', () => {
    const net = leaderA();
    net.tick('a', 3);
    net.deliver();
    net.step(voteMsg('c', 'a', 5, 1, 1));
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(net.queue).toEqual([]);
  });

  it('without CheckQuorum there is no lease: the vote is granted', () => {
    const p = new Peer('b', ABC, { config: { checkQuorum: false, preVote: true } });
    p.node.step(heartbeat('a', 'b', 1, 0));
    p.flush();
    p.node.step(voteMsg('c', 'b', 2, 0, 0));
    expect(p.flush()).toEqual([voteResp('b', 'c', 2)]);
  });

  it('heartbeat responses keep the leader active (recentActive) for the next check', () => {
    const net = leaderA();
    net.tick('a', 10);
    net.queue = [];
    net.step(heartbeatResp('c', 'a', 1));
    expect(net.node('a').status().progress.c?.recentActive).toBe(true);
    expect(net.node('a').status().progress.b?.recentActive).toBe(false);
    net.tick('a', 10);
    expect(net.node('a').status().role).toBe('leader');
  });
});

describe('a leader out of touch with its quorum refuses new work at once', () => {
  it('an election timeout less a heartbeat without a quorum answering: proposals refused (noQuorum) until one answers', () => {
    const net = leaderA();
    const a = net.node('a');
    // Heartbeats go out but nothing comes back.
    net.tick('a', 9);
    net.take();
    expect(a.propose(new Uint8Array([1]))).toMatchObject({ ok: true });
    net.tick('a');
    net.take();
    expect(a.quorumInContact()).toBe(false);
    const last = a.status().lastIndex;
    expect(a.propose(new Uint8Array([2]))).toMatchObject({ ok: false, reason: 'noQuorum', leader: 'a' });
    expect(a.status()).toMatchObject({ role: 'leader', lastIndex: last });
    // One follower answers: with the leader that is a quorum again.
    net.step(heartbeatResp('b', 'a', 1, ''));
    expect(a.quorumInContact()).toBe(true);
    expect(a.propose(new Uint8Array([3]))).toMatchObject({ ok: true });
  });

  it('a leader whose followers answer every heartbeat never refuses', () => {
    const net = leaderA();
    for (let t = 0; t < 50; t++) {
      net.tick('a');
      net.deliver();
      expect(net.node('a').propose(new Uint8Array([t]))).toMatchObject({ ok: true });
    }
  });

  it('without CheckQuorum there is no such refusal', () => {
    const net = new RawNet(ABC, {}, { config: { checkQuorum: false, electionTicks: 10 } });
    net.elect('a');
    net.deliver();
    net.tick('a', 30);
    net.take();
    expect(net.node('a').quorumInContact()).toBe(true);
    expect(net.node('a').propose(new Uint8Array([1]))).toMatchObject({ ok: true });
  });

  it('through the driver: an isolated leader answers reads with notLeader instead of hanging', () => {
    const c = new Cluster(ABC, { seed: 3, checkQuorum: true });
    const l = c.elect();
    expect(c.propose(l, 'v=1')?.status).toBe('applied');
    c.isolate(l);
    for (let t = 0; t < 10; t++) c.node(l).driver.tick();
    expect(c.node(l).driver.status().role).toBe('leader');
    const outcomes: unknown[] = [];
    c.node(l).driver.read((o) => outcomes.push(o));
    expect(outcomes).toEqual([{ status: 'notLeader', leader: '' }]);
  });
});

describe('issue 16: a read forwarded to a leader out of touch with its quorum', () => {
  it('is refused at once (reject, index 0), starting no heartbeat round, and served again once a quorum answers', () => {
    const net = leaderA();
    const a = net.node('a');
    const b = net.peer('b');
    // a's heartbeats go out but nothing comes back, though b still reaches a (and a reaches b).
    net.tick('a', 10);
    net.take();
    expect(a.quorumInContact()).toBe(false);
    expect(a.status().role).toBe('leader');
    b.node.readIndex('f1');
    const [fwd] = net.flush('b');
    expect(fwd).toMatchObject({ type: 'readIndex', from: 'b', to: 'a', ctx: 'f1' });
    net.queue = [];
    const answer = net.step(fwd as Message);
    expect(answer).toEqual([{ type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'f1', index: 0, reject: true }]);
    net.deliver();
    expect(b.readStates).toEqual([{ index: 0, ctx: 'f1', refused: true }]);
    // A read on the leader itself is refused the same way.
    a.readIndex('l1');
    expect(net.flush('a')).toEqual([]);
    expect(net.peer('a').readStates).toEqual([{ index: 0, ctx: 'l1', refused: true }]);
    // c answers a heartbeat: with a that is a quorum, and b's next read is confirmed as usual.
    net.step(heartbeatResp('c', 'a', 1, ''));
    expect(a.quorumInContact()).toBe(true);
    net.queue = [];
    b.node.readIndex('f2');
    net.flush('b');
    net.deliver();
    expect(ofType(net.sent, 'readIndexResp').at(-1)).toEqual({
      type: 'readIndexResp',
      from: 'a',
      to: 'b',
      term: 1,
      ctx: 'f2',
      index: 1,
      reject: false,
    });
    expect(b.readStates.at(-1)).toEqual({ index: 1, ctx: 'f2' });
  });

  it('through the driver: the follower answers notLeader at once, and reads again once the quorum is back', () => {
    const c = new Cluster(ABC, { seed: 3, checkQuorum: true });
    const l = c.elect();
    expect(c.propose(l, 'v=1')?.status).toBe('applied');
    const [f, g] = ABC.filter((id) => id !== l) as [string, string];
    // g is cut off; f still talks with l, but l never hears f's answers to its heartbeats and appends.
    c.cut(l, g);
    const unheard = (m: Message) => !(m.to === l && (m.type === 'heartbeatResp' || m.type === 'appResp'));
    for (let t = 0; t < 10; t++) {
      c.node(l).driver.tick();
      c.node(f).driver.tick();
      c.deliver(100_000, unheard);
    }
    expect(c.node(l).driver.status().role).toBe('leader');
    expect(c.node(l).driver.node.quorumInContact()).toBe(false);
    expect(c.node(f).driver.status().leader).toBe(l);
    const outcomes: ReadOutcome[] = [];
    c.node(f).driver.read((o) => outcomes.push(o));
    c.deliver(100_000, unheard);
    expect(outcomes).toEqual([{ status: 'notLeader', leader: '' }]);
    expect(c.node(f).driver.idle()).toBe(true);
    // The quorum is back: l hears f again at its next heartbeat, and f's read is served.
    c.heal();
    c.tickAll();
    expect(c.node(l).driver.node.quorumInContact()).toBe(true);
    c.node(f).driver.read((o) => outcomes.push(o));
    c.deliver();
    expect(outcomes[1]).toMatchObject({ status: 'ready' });
    expect(c.node(l).driver.status().role).toBe('leader');
  });
});

describe('a stall: time that passed while a node could not run is judged after its queued messages', () => {
  it('a leader stalled for two election timeouts keeps leading on the answers that queued meanwhile', () => {
    const net = leaderA();
    const a = net.node('a');
    net.tick('a');
    net.deliverOnly((m) => m.from === 'a'); // the followers answer; a has not read the answers yet
    const queued = net.take((m) => m.to === 'a');
    expect(queued.map((m) => m.type)).toEqual(['heartbeatResp', 'heartbeatResp']);
    a.elapse(25);
    // Nothing judged yet: still leading, still in contact, serving, and heartbeating at once.
    expect(a.status().role).toBe('leader');
    expect(a.quorumInContact()).toBe(true);
    expect(ofType(net.flush('a'), 'heartbeat').map((m) => m.to)).toEqual(['b', 'c']);
    expect(net.propose('a', 'x')).toMatchObject({ ok: true });
    for (const m of queued) net.step(m);
    net.deliver();
    for (let t = 0; t < 30; t++) {
      net.tick('a');
      net.deliver();
    }
    expect(a.status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('a stalled leader that hears nothing judges the stall at its next tick, and steps down on schedule', () => {
    const net = leaderA();
    const a = net.node('a');
    net.isolate('a');
    a.elapse(25);
    expect(a.quorumInContact()).toBe(true);
    net.tick('a');
    // The stall counts now that nothing arrived during it.
    expect(a.quorumInContact()).toBe(false);
    expect(net.propose('a', 'x')).toMatchObject({ ok: false, reason: 'noQuorum' });
    // The check at that tick still saw the acks from before the stall (the first check passes); the next fails.
    expect(a.status().role).toBe('leader');
    net.tick('a', 10);
    expect(a.status()).toMatchObject({ role: 'follower', term: 1 });
  });

  it('ticked one by one instead, the same stall deposes the leader before its queued answers are stepped', () => {
    const net = leaderA();
    net.tick('a');
    net.deliverOnly((m) => m.from === 'a');
    expect(net.take((m) => m.to === 'a')).toHaveLength(2);
    net.tick('a', 25);
    expect(net.node('a').status().role).toBe('follower');
  });

  it("a follower stalled past its election timeout steps its leader's queued heartbeat before it may campaign", () => {
    const net = leaderA();
    const b = net.node('b');
    net.tick('a');
    const hb = net.take((m) => m.to === 'b');
    net.take();
    b.elapse(30);
    expect(net.flush('b')).toEqual([]);
    for (const m of hb) net.step(m);
    expect(ofType(net.tick('b'), 'vote')).toEqual([]);
    expect(b.status()).toMatchObject({ role: 'follower', leader: 'a', term: 1 });
  });

  it('a follower stalled with nothing queued campaigns at its next tick', () => {
    const net = leaderA();
    const b = net.node('b');
    b.elapse(30);
    expect(net.flush('b')).toEqual([]);
    const votes = ofType(net.tick('b'), 'vote');
    expect(votes.map((m) => m.to)).toEqual(['a', 'c']);
    expect(votes.every((m) => m.preVote)).toBe(true);
  });

  it('an alarm on time ticks as usual: the follower campaigns in that call', () => {
    const net = leaderA();
    const b = net.node('b');
    b.elapse(b.ticksUntilTimeout());
    expect(ofType(net.flush('b'), 'vote')).toHaveLength(2);
  });

  it("a heartbeat that arrives as the timeout falls due counts before it is judged (the event's last tick follows its messages)", () => {
    const net = leaderA();
    const b = net.node('b');
    net.tick('a');
    const [hb] = net.take((m) => m.to === 'b');
    net.take();
    b.elapse(b.ticksUntilTimeout(), () => b.step(hb as Message));
    expect(ofType(net.flush('b'), 'vote')).toEqual([]);
    expect(b.status()).toMatchObject({ role: 'follower', leader: 'a' });
  });
});
