import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { appMsg, appResp, bytes, entriesOf, heartbeatResp, ofType, type PeerOptions, RawNet, text } from './raw.ts';

const ABC = ['a', 'b', 'c'];

/** a leads term 1 of {a,b,c}; both followers acknowledged the no-op, so they are in replicate state. */
function leaderA(common: PeerOptions = {}): RawNet {
  const net = new RawNet(ABC, {}, common);
  net.elect('a');
  net.deliver();
  const st = net.node('a').status();
  expect(st).toMatchObject({ role: 'leader', term: 1, commit: 1 });
  expect(st.progress.b).toMatchObject({ state: 'replicate', match: 1, next: 2 });
  return net;
}

const appsTo = (ms: readonly Message[], to: string) => ofType(ms, 'app', to).map((m) => m.entries.map((e) => e.index));

/** A payload whose entry counts `size` bytes toward the flow-control limits (data + 16). */
const sized = (size: number, tag: string) => bytes(tag.padEnd(size - 16, '.'));

describe('§5.3 log replication: batching (thesis §10.2.1)', () => {
  it('proposals made before the next Ready leave in one AppendEntries per follower and one persist', () => {
    const net = leaderA();
    const a = net.peer('a');
    const readiesBefore = a.readies.length;
    for (const cmd of ['x', 'y', 'z']) expect(a.node.propose(bytes(cmd))).toMatchObject({ ok: true, term: 1 });
    const out = net.flush('a');
    expect(a.readies.length).toBe(readiesBefore + 1);
    expect(a.readies[readiesBefore]?.entries.map((e) => [e.index, e.term, text(e.data)])).toEqual([
      [2, 1, 'x'],
      [3, 1, 'y'],
      [4, 1, 'z'],
    ]);
    const apps = ofType(out, 'app');
    expect(apps.map((m) => [m.to, m.prevIndex, m.prevTerm, m.entries.map((e) => e.index), m.commit])).toEqual([
      ['b', 1, 1, [2, 3, 4], 1],
      ['c', 1, 1, [2, 3, 4], 1],
    ]);
    net.deliver();
    for (const id of ABC) {
      expect(net.node(id).status().commit).toBe(4);
      expect(net.peer(id).applied.map((e) => text(e.data))).toEqual(['', 'x', 'y', 'z']);
    }
  });

  it('the proposal reports its index and term', () => {
    const net = leaderA();
    expect(net.node('a').propose(bytes('p'))).toEqual({ ok: true, index: 2, term: 1 });
    expect(net.node('a').propose(bytes('q'))).toEqual({ ok: true, index: 3, term: 1 });
    expect(net.node('b').propose(bytes('r'))).toEqual({ ok: false, reason: 'notLeader', leader: 'a' });
  });

  it('maxMsgBytes splits a large batch into several messages (at least one entry each)', () => {
    const net = leaderA({ config: { maxMsgBytes: 120 } });
    const a = net.node('a');
    for (let i = 0; i < 5; i++) a.propose(sized(50, `e${i}`));
    a.propose(sized(200, 'big'));
    const out = net.flush('a');
    expect(appsTo(out, 'b')).toEqual([[2, 3], [4, 5], [6], [7]]);
  });

  it('the driver with deferProcessing sends a turn of proposals as one message per follower', async () => {
    const { Driver } = await import('../../src/driver/index.ts');
    const { MemoryLogStore } = await import('../../src/storage/index.ts');
    const { ListMachine, seededRng } = await import('./harness.ts');
    const sent: Message[] = [];
    const d = new Driver<string>({
      raft: { id: 'a', rng: seededRng(1), preVote: false },
      log: new MemoryLogStore(),
      sm: new ListMachine(),
      transport: { send: (ms) => sent.push(...ms) },
      bootstrap: { voters: ABC, learners: [] },
      deferProcessing: true,
    });
    d.campaign();
    for (const m of ofType(sent, 'vote'))
      d.receive({ type: 'voteResp', from: m.to, to: 'a', term: 1, reject: false, preVote: false });
    for (const m of ofType(sent, 'app')) d.receive(appResp(m.to, 'a', 1, 1));
    sent.length = 0;
    for (let i = 0; i < 10; i++) d.propose(bytes(`k${i}`), () => {});
    expect(sent).toEqual([]);
    d.process();
    expect(ofType(sent, 'app').map((m) => [m.to, m.entries.length])).toEqual([
      ['b', 10],
      ['c', 10],
    ]);
  });
});

describe('§5.3 log replication: pipelining with a bounded in-flight window (thesis §10.2.1)', () => {
  it('keeps at most maxInflightMsgs AppendEntries in flight to a follower in replicate state', () => {
    const net = leaderA({ config: { maxInflightMsgs: 3 } });
    const a = net.node('a');
    const sentToB: number[][] = [];
    for (let i = 2; i <= 6; i++) {
      a.propose(bytes(`v${i}`));
      sentToB.push(...appsTo(net.flush('a'), 'b'));
    }
    // Pipelined: three messages out without waiting for any answer, then paused.
    expect(sentToB).toEqual([[2], [3], [4]]);
    expect(a.status().progress.b).toMatchObject({ state: 'replicate', match: 1, next: 5 });
    // An ack of the first frees one slot: everything not yet sent goes in one message.
    const out = net.step(appResp('b', 'a', 1, 2));
    expect(appsTo(out, 'b')).toEqual([[5, 6]]);
    // Still full (3, 4, 5-6 in flight): another proposal waits.
    a.propose(bytes('v7'));
    expect(appsTo(net.flush('a'), 'b')).toEqual([]);
    // One ack for everything up to 6 frees the whole window; the new commit index (6) rides along.
    const last = ofType(net.step(appResp('b', 'a', 1, 6)), 'app', 'b');
    expect(last.filter((m) => m.entries.length > 0).map((m) => [m.prevIndex, m.entries.map((e) => e.index)])).toEqual([
      [6, [7]],
    ]);
    expect(last.every((m) => m.commit === 6)).toBe(true);
  });

  it('keeps at most maxInflightBytes of entries in flight to a follower', () => {
    const net = leaderA({ config: { maxInflightMsgs: 100, maxInflightBytes: 100 } });
    const a = net.node('a');
    const sentToB: number[][] = [];
    for (let i = 0; i < 4; i++) {
      a.propose(sized(50, `b${i}`));
      sentToB.push(...appsTo(net.flush('a'), 'b'));
    }
    expect(sentToB).toEqual([[2], [3]]);
    expect(appsTo(net.step(appResp('b', 'a', 1, 2)), 'b')).toEqual([[4, 5]]);
  });

  it('a slow follower does not hold back a fast one', () => {
    const net = leaderA({ config: { maxInflightMsgs: 2 } });
    const a = net.node('a');
    const withEntries = () => ofType(net.sent, 'app', 'b').filter((m) => m.entries.length > 0).length;
    const before = withEntries();
    for (let i = 0; i < 6; i++) {
      a.propose(bytes(`w${i}`));
      net.flush('a');
      // c answers everything at once; b never answers.
      net.deliver((m) => m.to === 'c' || m.from === 'c');
    }
    expect(a.status().commit).toBe(7);
    expect(a.status().progress.c).toMatchObject({ match: 7, state: 'replicate' });
    expect(a.status().progress.b).toMatchObject({ match: 1, state: 'replicate' });
    // b never answered: exactly the window's worth of entry-carrying messages went to it
    // (empty appends that only carry the commit index take no slot).
    expect(withEntries() - before).toBe(2);
  });
});

describe('§5.3 log replication: probe and replicate states', () => {
  it('a new leader probes with one message per follower until the first success, then pipelines', () => {
    const net = new RawNet(ABC);
    net.campaign('a');
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    const a = net.node('a');
    expect(a.status().progress.b).toMatchObject({ state: 'probe', match: 0, next: 1 });
    expect(net.queue.map((m) => `${m.type}>${m.to}`)).toEqual(['app>b', 'app>c']);
    // Paused while its probe is out: new proposals send nothing.
    a.propose(bytes('p1'));
    a.propose(bytes('p2'));
    expect(ofType(net.flush('a'), 'app')).toEqual([]);
    // The probe succeeds: replicate state, and everything else goes in one message.
    const probe = net.take((m) => m.to === 'b')[0] as Message;
    const reply = net.step(probe);
    expect(reply).toEqual([appResp('b', 'a', 1, 1)]);
    const out = net.step(reply[0] as Message);
    expect(a.status().progress.b).toMatchObject({ state: 'replicate', match: 1, next: 4 });
    expect(appsTo(out, 'b').filter((e) => e.length > 0)).toEqual([[2, 3]]);
  });

  it('a heartbeat response unpauses a probing follower and resends', () => {
    const net = new RawNet(ABC);
    net.campaign('a');
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    net.take();
    // The probe to b was lost. A heartbeat answer shows b is alive: probe again.
    const out = net.step(heartbeatResp('b', 'a', 1));
    expect(ofType(out, 'app', 'b').map((m) => [m.prevIndex, m.entries.length])).toEqual([[0, 1]]);
  });

  it('a rejection in replicate state falls back to probe from match+1', () => {
    const net = leaderA();
    const a = net.node('a');
    a.propose(bytes('q'));
    net.flush('a');
    net.take();
    // b lost its tail (e.g. a disk that lied): it rejects prevIndex 1.
    const out = net.step({ ...appResp('b', 'a', 1, 2, true), hintIndex: 0, hintTerm: 0 });
    expect(a.status().progress.b).toMatchObject({ state: 'probe' });
    expect(ofType(out, 'app', 'b').map((m) => [m.prevIndex, m.entries.map((e) => e.index)])).toEqual([[1, [2]]]);
  });

  it('a stale rejection (below match) is ignored', () => {
    const net = leaderA();
    const a = net.node('a');
    net.propose('a', 'q');
    net.deliver();
    expect(a.status().progress.b).toMatchObject({ state: 'replicate', match: 2, next: 3 });
    const out = net.step(appResp('b', 'a', 1, 1, true));
    expect(out).toEqual([]);
    expect(a.status().progress.b).toMatchObject({ state: 'replicate', match: 2, next: 3 });
  });

  it('reportUnreachable moves a replicating follower back to probe', () => {
    const net = leaderA();
    net.node('a').reportUnreachable('b');
    expect(net.node('a').status().progress.b).toMatchObject({ state: 'probe', match: 1, next: 2 });
  });

  it('a follower answers an append below its commit index with its commit index', () => {
    const net = leaderA();
    net.propose('a', 'q');
    net.deliver();
    expect(net.node('b').status().commit).toBe(2);
    const out = net.step(appMsg('a', 'b', 1, 0, 0, entriesOf([1]), 0));
    expect(out).toEqual([appResp('b', 'a', 1, 2)]);
  });
});

describe('§5.3 fast log backtracking with the conflict-term hint', () => {
  /** a leads term `term+1` with log `leaderTerms`; b's log is `followerTerms`. Returns b's rejections. */
  function backtrack(leaderTerms: number[], followerTerms: number[]) {
    const leaderTerm = Math.max(...leaderTerms, ...followerTerms);
    const net = new RawNet(ABC, {
      a: { terms: leaderTerms, hard: { term: leaderTerm } },
      b: { terms: followerTerms, hard: { term: leaderTerm } },
      c: { terms: leaderTerms, hard: { term: leaderTerm } },
    });
    net.elect('a');
    net.deliver();
    const rejections = ofType(net.sent, 'appResp', 'a').filter((m) => m.from === 'b' && m.reject);
    const appsToB = ofType(net.sent, 'app', 'b').length;
    const want = [...leaderTerms, leaderTerm + 1];
    expect(net.peer('b').terms()).toEqual(want);
    expect(net.peer('a').terms()).toEqual(want);
    return { rejections, appsToB, net };
  }

  it('skips a whole conflicting term in one round trip (50 stale entries, 1 rejection)', () => {
    const leader = [1, ...Array<number>(50).fill(3)];
    const follower = [1, ...Array<number>(60).fill(2)];
    const { rejections } = backtrack(leader, follower);
    expect(rejections.map((m) => [m.index, m.hintIndex, m.hintTerm])).toEqual([[51, 51, 2]]);
  });

  it('a follower with a much shorter log hints its last index', () => {
    const { rejections } = backtrack([1, ...Array<number>(40).fill(2)], [1]);
    expect(rejections.map((m) => [m.index, m.hintIndex, m.hintTerm])).toEqual([[41, 1, 1]]);
  });

  it('needs one round trip per distinct conflicting term, not per entry', () => {
    const { rejections, appsToB } = backtrack([1, 1, 4, 4, 4, 6, 6], [1, 1, 5, 5, 5, 5, 5, 5, 5]);
    expect(rejections.map((m) => [m.index, m.hintIndex, m.hintTerm])).toEqual([
      [7, 7, 5],
      [5, 2, 1],
    ]);
    // 2 rejected probes, then 1 accepted append (c's ack already committed, so it carries commit 8).
    expect(appsToB).toBe(3);
  });
});

describe('§5.3 log matching in a cluster', () => {
  it('replicates a stream of commands to every node in order', () => {
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], { seed: 9 });
    const l = c.elect();
    for (let i = 0; i < 50; i++) expect(c.propose(l, `cmd${i}`)?.status).toBe('applied');
    c.tickAll(2);
    const want = Array.from({ length: 50 }, (_, i) => `cmd${i}`);
    for (const n of c.nodes.values()) expect(n.sm.log).toEqual(want);
  });

  it('a follower cut off for a while catches up after the heal', () => {
    const c = new Cluster(ABC, { seed: 4 });
    const l = c.elect();
    const f = ABC.find((id) => id !== l) as string;
    c.isolate(f);
    for (let i = 0; i < 20; i++) expect(c.propose(l, `m${i}`)?.status).toBe('applied');
    expect(c.node(f).sm.log).toEqual([]);
    c.heal();
    c.tickAll(3);
    expect(c.node(f).sm.log).toEqual(c.node(l).sm.log);
    expect(c.node(f).driver.status().commit).toBe(c.node(l).driver.status().commit);
  });
});

describe('§5.3 commit propagation to a follower that caught up while paused', () => {
  // Found by these tests: b's re-probe ack arrived after c's ack had committed the no-op, and
  // the leader sent b nothing more, so b learned the commit only at the next heartbeat (never,
  // once the leader went quiet). The leader now tells a follower whose known commit lags.
  it('a follower whose ack arrives after the commit learns the commit index without waiting for a heartbeat', () => {
    const net = new RawNet(ABC, { a: { terms: [1, 1], hard: { term: 1 } }, b: { terms: [1] }, c: { terms: [1, 1] } });
    net.elect('a');
    net.deliver();
    expect(net.node('a').status().commit).toBe(3);
    expect(net.peer('b').terms()).toEqual([1, 1, 2]);
    expect(net.node('b').status().commit).toBe(3);
  });

  it('a heartbeat carries the commit index too', () => {
    const net = new RawNet(ABC, { a: { terms: [1, 1], hard: { term: 1 } }, b: { terms: [1] }, c: { terms: [1, 1] } });
    net.elect('a');
    net.deliver();
    expect(net.node('a').status().commit).toBe(3);
    expect(net.peer('b').terms()).toEqual([1, 1, 2]);
    net.node('a').heartbeat();
    net.flush('a');
    net.deliver();
    expect(net.node('b').status().commit).toBe(3);
  });
});

describe('thesis §10.2.1 flow control recovers from lost replies and late appends', () => {
  it('a heartbeat reply frees a full window whose append reply was lost (found by sim seed 57)', () => {
    const net = leaderA({ config: { maxInflightMsgs: 1 } });
    const a = net.node('a');
    a.propose(bytes('w1'));
    net.flush('a');
    // b stores entry 2 but its reply is lost; c acks.
    net.deliverOnly((m) => m.type === 'app' && m.to === 'b');
    net.take((m) => m.type === 'appResp' && m.from === 'b');
    net.deliver();
    a.propose(bytes('w2'));
    net.flush('a');
    expect(
      appsTo(
        net.take((m) => m.to === 'b'),
        'b',
      ),
    ).toEqual([]); // window full: nothing to b
    net.deliver();
    // A heartbeat round proves b alive: one slot frees and entry 3 goes out.
    a.heartbeat();
    net.flush('a');
    net.deliver();
    expect(net.peer('b').terms()).toEqual([1, 1, 1]);
    expect(a.status().progress.b).toMatchObject({ match: 3 });
  });

  it('a follower keeps the entries of a late append that reach past its commit index (found by sim seed 20199)', () => {
    const net = new RawNet(['a', 'b'], {}, {});
    net.elect('a');
    net.deliver();
    // b has committed 1 (the no-op). A late append from a starts below that, at prevIndex 0, with 1..2.
    const entries = [
      { index: 1, term: 1, type: 'normal' as const, data: new Uint8Array() },
      { index: 2, term: 1, type: 'normal' as const, data: bytes('x') },
    ];
    expect(net.node('b').status().commit).toBe(1);
    const out = net.step({ type: 'app', from: 'a', to: 'b', term: 1, prevIndex: 0, prevTerm: 0, entries, commit: 1 });
    expect(ofType(out, 'appResp')).toMatchObject([{ index: 2, reject: false }]);
    expect(net.peer('b').terms()).toEqual([1, 1]);
  });
});

describe('lazyCommit: followers learn commits from the next append or heartbeat', () => {
  it('a commit sends no commit-only AppendEntries; the next heartbeat carries it and followers apply', () => {
    const net = leaderA({ config: { lazyCommit: true } });
    net.propose('a', 'x');
    const out = net.deliver();
    expect(net.node('a').status().commit).toBe(2);
    // Only the append with the entry went out, and its acks: no second round telling the commit.
    expect(ofType(out, 'app').map((m) => [m.to, m.entries.length, m.commit])).toEqual([
      ['b', 1, 1],
      ['c', 1, 1],
    ]);
    expect(net.node('b').status().commit).toBe(1);
    net.tick('a');
    net.deliver();
    for (const id of ['b', 'c']) {
      expect(net.node(id).status().commit).toBe(2);
      expect(net.peer(id).applied.map((e) => text(e.data))).toEqual(['', 'x']);
    }
  });

  it('the commit rides on the next batch of entries', () => {
    const net = leaderA({ config: { lazyCommit: true } });
    net.propose('a', 'x');
    net.deliver();
    net.propose('a', 'y');
    const apps = ofType(net.take(), 'app');
    expect(apps.map((m) => [m.to, m.entries.map((e) => e.index), m.commit])).toEqual([
      ['b', [3], 2],
      ['c', [3], 2],
    ]);
  });

  it('without it (the default) the leader tells followers a new commit at once', () => {
    const net = leaderA();
    net.propose('a', 'x');
    net.deliver();
    expect(net.node('b').status().commit).toBe(2);
    expect(net.node('c').status().commit).toBe(2);
  });

  it('a follower that forwarded a read learns the commit from the round confirming it, so it serves at once', () => {
    const net = leaderA({ config: { lazyCommit: true } });
    net.propose('a', 'x');
    net.deliver();
    const b = net.peer('b');
    expect(b.node.status().commit).toBe(1);
    b.node.readIndex('f1');
    net.flush('b');
    net.deliver();
    expect(b.readStates).toEqual([{ index: 2, ctx: 'f1' }]);
    expect(b.node.status().commit).toBe(2);
    expect(b.applied.map((e) => text(e.data))).toEqual(['', 'x']);
  });
});
