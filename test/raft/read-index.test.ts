import { describe, expect, it } from 'vitest';
import type { ReadOutcome } from '../../src/driver/index.ts';
import type { Message } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { appMsg, appResp, heartbeatResp, ofType, Peer, type PeerOptions, RawNet, voteResp } from './raw.ts';

const ABC = ['a', 'b', 'c'];

/** a leads term 1 of {a,b,c} with entries up to 3 committed everywhere. */
function leaderA(o: PeerOptions = {}): RawNet {
  const net = new RawNet(ABC, {}, o);
  net.elect('a');
  net.deliver();
  net.propose('a', 'x');
  net.propose('a', 'y');
  net.deliver();
  expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1, commit: 3 });
  net.queue = [];
  return net;
}

describe('thesis §6.4 ReadIndex on the leader', () => {
  it('answers only after a quorum acknowledges a heartbeat round carrying the read, at the commit index', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    const out = net.flush('a');
    expect(ofType(out, 'heartbeat').map((m) => [m.to, m.term, m.ctx, m.commit])).toEqual([
      ['b', 1, 'r1', 3],
      ['c', 1, 'r1', 3],
    ]);
    expect(a.readStates).toEqual([]);
    net.step(heartbeatResp('b', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([{ index: 3, ctx: 'r1' }]);
    // A late ack changes nothing.
    net.step(heartbeatResp('c', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([{ index: 3, ctx: 'r1' }]);
  });

  it('acks without the read context, with another context, or from a learner do not count', () => {
    const net = new RawNet(['a', 'b', 'c', 'd'], {}, { voters: ABC, learners: ['d'] });
    net.elect('a');
    net.deliver();
    net.queue = [];
    const a = net.peer('a');
    a.node.readIndex('r1');
    const out = net.flush('a');
    expect(ofType(out, 'heartbeat').map((m) => m.to)).toEqual(['b', 'c', 'd']);
    net.step(heartbeatResp('b', 'a', 1, ''));
    net.step(heartbeatResp('c', 'a', 1, 'other'));
    net.step(heartbeatResp('d', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([]);
    net.step(heartbeatResp('c', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([{ index: 1, ctx: 'r1' }]);
  });

  it('an ack confirms its read and every read queued before it, in order', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    net.propose('a', 'z');
    net.deliver((m) => m.type !== 'heartbeat');
    expect(a.status.commit).toBe(4);
    a.node.readIndex('r2');
    a.node.readIndex('r3');
    net.flush('a');
    net.step(heartbeatResp('b', 'a', 1, 'r2'));
    expect(a.readStates).toEqual([
      { index: 3, ctx: 'r1' },
      { index: 4, ctx: 'r2' },
    ]);
    net.step(heartbeatResp('c', 'a', 1, 'r3'));
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1', 'r2', 'r3']);
  });

  it('reads arriving while a round is unanswered share one next round, started when it is answered', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    expect(ofType(net.flush('a'), 'heartbeat').map((m) => m.ctx)).toEqual(['r1', 'r1']);
    // The commit moves on, then three more reads arrive while r1's round is out.
    net.propose('a', 'z');
    net.deliver((m) => m.type !== 'heartbeat');
    net.queue = [];
    for (const ctx of ['r2', 'r3', 'r4']) a.node.readIndex(ctx);
    expect(ofType(net.flush('a'), 'heartbeat')).toEqual([]);
    // r1's round ends: r1 is answered, and one round carrying the newest read goes out.
    const next = net.step(heartbeatResp('b', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([{ index: 3, ctx: 'r1' }]);
    expect(ofType(next, 'heartbeat').map((m) => m.ctx)).toEqual(['r4', 'r4']);
    // That round's ack answers all three, at the commit index each saw on arrival.
    net.step(heartbeatResp('c', 'a', 1, 'r4'));
    expect(a.readStates.slice(1)).toEqual([
      { index: 4, ctx: 'r2' },
      { index: 4, ctx: 'r3' },
      { index: 4, ctx: 'r4' },
    ]);
    // Nothing is pending: the next read starts a round at once.
    a.node.readIndex('r5');
    expect(ofType(net.flush('a'), 'heartbeat').map((m) => m.ctx)).toEqual(['r5', 'r5']);
  });

  it('an ack of the older round never confirms a read that arrived after it was sent', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    a.node.readIndex('r2');
    net.step(heartbeatResp('b', 'a', 1, 'r1'));
    net.step(heartbeatResp('c', 'a', 1, 'r1'));
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1']);
    net.step(heartbeatResp('b', 'a', 1, 'r2'));
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1', 'r2']);
  });

  it('a lost round does not strand the reads queued behind it: the next heartbeat carries the newest', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    a.node.readIndex('r2');
    net.take(); // r1's round is lost
    const out = net.tick('a');
    expect(ofType(out, 'heartbeat').map((m) => m.ctx)).toEqual(['r2', 'r2']);
    net.deliver();
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1', 'r2']);
  });

  it('periodic heartbeats carry the newest pending read', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    net.take();
    const out = net.tick('a');
    expect(ofType(out, 'heartbeat').map((m) => m.ctx)).toEqual(['r1', 'r1']);
    net.deliver();
    expect(a.readStates).toEqual([{ index: 3, ctx: 'r1' }]);
  });

  it('a single-voter leader answers at once', () => {
    const p = new Peer('a', ['a']);
    p.node.campaign();
    p.flush();
    p.node.readIndex('solo');
    p.flush();
    expect(p.readStates).toEqual([{ index: 1, ctx: 'solo' }]);
  });

  it('a new leader defers reads until an entry of its own term is committed', () => {
    // a leads term 2; index 2 (term 1) may or may not be committed: its commit index is not trustworthy.
    const a = new Peer('a', ABC, { terms: [1, 1], hard: { term: 1, commit: 1 } });
    a.node.campaign();
    a.flush();
    a.node.step(voteResp('b', 'a', 2));
    a.flush();
    expect(a.status).toMatchObject({ role: 'leader', term: 2, commit: 1, lastIndex: 3 });
    a.node.readIndex('early');
    expect(ofType(a.flush(), 'heartbeat')).toEqual([]);
    // Even a heartbeat ack does not serve it.
    a.node.step(heartbeatResp('b', 'a', 2, 'early'));
    a.flush();
    expect(a.readStates).toEqual([]);
    // The no-op commits: now the heartbeat round for the read goes out.
    a.node.step(appResp('b', 'a', 2, 3));
    const out = a.flush();
    expect(a.status.commit).toBe(3);
    expect(ofType(out, 'heartbeat').map((m) => [m.to, m.ctx])).toEqual([
      ['b', 'early'],
      ['c', 'early'],
    ]);
    a.node.step(heartbeatResp('c', 'a', 2, 'early'));
    a.flush();
    expect(a.readStates).toEqual([{ index: 3, ctx: 'early' }]);
  });
});

describe('thesis §6.4 ReadIndex: a deposed or partitioned leader cannot serve a stale read', () => {
  it('a leader that learns of a newer term drops its pending reads', () => {
    const net = leaderA();
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    net.take();
    net.step(appMsg('b', 'a', 2, 3, 1, [], 3));
    expect(a.status).toMatchObject({ role: 'follower', term: 2, leader: 'b' });
    // Acks of the old term arrive late: ignored.
    net.step(heartbeatResp('b', 'a', 1, 'r1'));
    net.step(heartbeatResp('c', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([]);
  });

  it('an isolated leader (without CheckQuorum) never answers, however long it waits', () => {
    const net = leaderA();
    net.isolate('a');
    const a = net.peer('a');
    a.node.readIndex('r1');
    net.flush('a');
    for (let i = 0; i < 50; i++) {
      net.tick('a');
      net.deliver();
    }
    expect(a.status.role).toBe('leader');
    expect(a.readStates).toEqual([]);
  });

  it('in a cluster, the old leader of a partition never reports a read ready while a newer leader writes', () => {
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], { seed: 17, checkQuorum: true });
    const old = c.elect();
    expect(c.propose(old, 'v=1')?.status).toBe('applied');
    c.isolate(old);
    const outcomes: ReadOutcome[] = [];
    c.node(old).driver.read((o) => outcomes.push(o));
    let fresh: string | undefined;
    for (let t = 0; t < 60 && fresh === undefined; t++) {
      c.tickAll();
      const l = c.leader();
      if (l !== undefined && l !== old) fresh = l;
    }
    expect(fresh).toBeDefined();
    expect(c.propose(fresh as string, 'v=2')?.status).toBe('applied');
    c.tickAll(30);
    // The read was never served; it failed over to "notLeader" when the old leader stepped down.
    expect(outcomes).toEqual([{ status: 'notLeader', leader: '' }]);
    expect(c.node(old).driver.status().role).not.toBe('leader');
    expect(c.node(old).sm.log).toEqual(['v=1']);
  });
});

describe('thesis §6.4 ReadIndex from a follower', () => {
  it('the follower forwards the read to its leader and gets the confirmed index back', () => {
    const net = leaderA();
    const b = net.peer('b');
    b.node.readIndex('f1');
    const fwd = net.flush('b');
    expect(fwd).toEqual([{ type: 'readIndex', from: 'b', to: 'a', term: 1, ctx: 'f1' }]);
    net.deliver();
    const kinds = net.sent.slice(-6).map((m: Message) => `${m.type}:${m.from}>${m.to}`);
    expect(kinds).toEqual([
      'readIndex:b>a',
      'heartbeat:a>b',
      'heartbeat:a>c',
      'heartbeatResp:b>a',
      'heartbeatResp:c>a',
      'readIndexResp:a>b',
    ]);
    expect(ofType(net.sent, 'readIndexResp')).toEqual([
      { type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'f1', index: 3, reject: false },
    ]);
    expect(b.readStates).toEqual([{ index: 3, ctx: 'f1' }]);
    expect(net.peer('a').readStates).toEqual([]);
  });

  it('a read forwarded to a leader that has not committed in its term yet waits for that commit', () => {
    const net = new RawNet(ABC, { a: { terms: [1, 1], hard: { term: 1, commit: 1 } } }, { hard: { term: 1 } });
    net.campaign('a');
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 2, commit: 1 });
    const appends = net.take();
    // b knows a as leader from a heartbeat of term 2 and forwards a read.
    net.step({ type: 'heartbeat', from: 'a', to: 'b', term: 2, commit: 0, ctx: '' });
    net.take();
    net.node('b').readIndex('fwd');
    net.flush('b');
    net.deliver();
    expect(ofType(net.sent, 'readIndexResp')).toEqual([]);
    // The appends (with the no-op) go through; the no-op commits and the read is confirmed at it.
    net.queue.push(...appends);
    net.deliver();
    expect(ofType(net.sent, 'readIndexResp')).toEqual([
      { type: 'readIndexResp', from: 'a', to: 'b', term: 2, ctx: 'fwd', index: 3, reject: false },
    ]);
    expect(net.peer('b').readStates).toEqual([{ index: 3, ctx: 'fwd' }]);
  });

  it('a follower that knows no leader sends nothing', () => {
    const p = new Peer('b', ABC);
    p.node.readIndex('lost');
    expect(p.flush()).toEqual([]);
    expect(p.readStates).toEqual([]);
  });

  it('through the driver, a lagging follower serves the read only after applying up to the read index', () => {
    const c = new Cluster(ABC, { seed: 8 });
    const l = c.elect();
    c.tickAll(2);
    const f = ABC.find((id) => id !== l) as string;
    // The write commits with the other follower while f misses the appends.
    c.node(l).driver.propose(new TextEncoder().encode('w1'), () => {});
    c.deliver(100_000, (m) => !(m.type === 'app' && m.to === f));
    expect(c.node(l).sm.log).toEqual(['w1']);
    expect(c.node(f).sm.log).toEqual([]);
    let seen: string[] | undefined;
    let outcome: ReadOutcome | undefined;
    c.node(f).driver.read((o) => {
      outcome = o;
      seen = [...c.node(f).sm.log];
    });
    c.deliver();
    expect(outcome).toEqual({ status: 'ready', index: c.node(l).driver.status().commit });
    expect(seen).toEqual(['w1']);
  });
});

describe('quorum reads (Config.quorumReads): a read round asks a quorum, not every follower', () => {
  const FIVE = ['a', 'b', 'c', 'd', 'e'];
  function leaderOfFive(): RawNet {
    const net = new RawNet(FIVE, {}, { config: { quorumReads: true, heartbeatTicks: 1, electionTicks: 10 } });
    net.elect('a');
    net.deliver();
    net.queue = [];
    return net;
  }
  const heartbeatsTo = (out: readonly Message[]) => ofType(out, 'heartbeat').map((m) => m.to);

  it('the first round asks two of four followers; the next asks the two that confirmed a full round first', () => {
    const net = leaderOfFive();
    const a = net.peer('a');
    a.node.readIndex('r1');
    expect(heartbeatsTo(net.flush('a'))).toEqual(['b', 'c']);
    net.queue = [];
    net.step(heartbeatResp('b', 'a', 1, 'r1'));
    expect(a.readStates).toEqual([]);
    net.step(heartbeatResp('c', 'a', 1, 'r1'));
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1']);
    // r2's round asks b and c again; the periodic heartbeat carries r2 to every follower, and e and d answer first.
    a.node.readIndex('r2');
    expect(heartbeatsTo(net.flush('a'))).toEqual(['b', 'c']);
    net.queue = [];
    const beat = heartbeatsTo(net.tick('a'));
    expect(beat).toEqual(['b', 'c', 'd', 'e']);
    net.step(heartbeatResp('e', 'a', 1, 'r2'));
    net.step(heartbeatResp('d', 'a', 1, 'r2'));
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1', 'r2']);
    net.queue = [];
    a.node.readIndex('r3');
    expect(heartbeatsTo(net.flush('a'))).toEqual(['d', 'e']);
  });

  it('a silent follower among those asked delays the read to the next periodic heartbeat, which asks everyone', () => {
    const net = leaderOfFive();
    const a = net.peer('a');
    a.node.readIndex('r1');
    expect(heartbeatsTo(net.flush('a'))).toEqual(['b', 'c']);
    net.isolate('c');
    net.deliver();
    expect(a.readStates).toEqual([]);
    net.tick('a');
    net.deliver();
    expect(a.readStates.map((r) => r.ctx)).toEqual(['r1']);
  });
});
