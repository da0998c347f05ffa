import { describe, expect, it } from 'vitest';
import type { Message, NodeId } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { appMsg, appResp, heartbeat, ofType, Peer, RawNet, voteMsg, voteResp } from './raw.ts';

const ABC = ['a', 'b', 'c'];

/** Ticks a follower until it starts campaigning; returns the ticks it took. */
function ticksToCampaign(p: Peer, max = 1000): number {
  for (let t = 1; t <= max; t++) {
    p.node.tick();
    p.flush();
    if (p.status.role !== 'follower') return t;
  }
  throw new Error('never campaigned');
}

describe('§5.2 leader election: randomized election timeouts', () => {
  it('draws every timeout from [electionTicks, 2*electionTicks-1] and uses the whole range', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 300; seed++) {
      const p = new Peer('a', ABC, { seed, config: { electionTicks: 10 } });
      const predicted = p.node.ticksUntilTimeout();
      const t = ticksToCampaign(p);
      expect(t).toBe(predicted);
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThanOrEqual(19);
      seen.add(t);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('electionJitterTicks narrows the spread: timeouts from [electionTicks, electionTicks+jitter-1]', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 100; seed++) {
      const p = new Peer('a', ABC, { seed, config: { electionTicks: 10, electionJitterTicks: 3 } });
      const t = ticksToCampaign(p);
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThanOrEqual(12);
      seen.add(t);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual([10, 11, 12]);
    expect(() => new Peer('a', ABC, { config: { electionJitterTicks: 0 } })).toThrow(/electionJitterTicks/);
  });

  it('redraws the timeout for each new election (a split vote does not repeat forever)', () => {
    const p = new Peer('a', ABC, { seed: 42, config: { electionTicks: 5 } });
    const gaps: number[] = [];
    ticksToCampaign(p);
    for (let round = 0; round < 40; round++) {
      const before = p.status.term;
      let t = 0;
      while (p.status.term === before) {
        p.node.tick();
        p.flush();
        t++;
      }
      expect(p.status.term).toBe(before + 1);
      gaps.push(t);
    }
    for (const g of gaps) {
      expect(g).toBeGreaterThanOrEqual(5);
      expect(g).toBeLessThanOrEqual(9);
    }
    expect(new Set(gaps).size).toBeGreaterThan(2);
  });

  it('a learner or a removed node never campaigns', () => {
    const learner = new Peer('d', ABC, { voters: ABC, learners: ['d'] });
    expect(learner.node.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 100; i++) learner.node.tick();
    expect(learner.flush()).toEqual([]);
    expect(learner.status).toMatchObject({ role: 'follower', term: 0 });
  });
});

describe('§5.2 leader election: candidates (Figure 2, "Candidates")', () => {
  it('on timeout becomes candidate of term+1, votes for itself and persists that with the RequestVotes', () => {
    const p = new Peer('a', ABC, { terms: [1, 1, 2] });
    expect(p.status.term).toBe(2);
    for (let i = 0; i < 19 && p.status.role === 'follower'; i++) p.node.tick();
    expect(p.status.role).toBe('candidate');
    const rd = p.node.ready();
    expect(rd.hardState).toEqual({ term: 3, vote: 'a', commit: 0 });
    expect(rd.softState).toEqual({ role: 'candidate', leader: '' });
    expect(rd.messages).toEqual([
      { type: 'vote', from: 'a', to: 'b', term: 3, preVote: false, transfer: false, lastIndex: 3, lastTerm: 2 },
      { type: 'vote', from: 'a', to: 'c', term: 3, preVote: false, transfer: false, lastIndex: 3, lastTerm: 2 },
    ]);
    p.handle(rd);
  });

  it('wins with a majority, then appends a no-op of its term and sends it to every follower', () => {
    const p = new Peer('a', ABC, { terms: [1, 1, 2] });
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 3));
    const rd = p.node.ready();
    expect(rd.softState).toEqual({ role: 'leader', leader: 'a' });
    expect(rd.entries).toEqual([{ index: 4, term: 3, type: 'normal', data: new Uint8Array(0) }]);
    const apps = ofType(rd.messages, 'app');
    expect(apps.map((m) => [m.to, m.term, m.prevIndex, m.prevTerm, m.entries.map((e) => e.index), m.commit])).toEqual([
      ['b', 3, 3, 2, [4], 0],
      ['c', 3, 3, 2, [4], 0],
    ]);
  });

  it('a single-voter cluster elects itself at once', () => {
    const p = new Peer('a', ['a']);
    p.node.campaign();
    p.flush();
    expect(p.status).toMatchObject({ role: 'leader', term: 1, vote: 'a', commit: 1, lastIndex: 1 });
  });

  it('steps back to follower when a majority rejects, keeping its term', () => {
    const p = new Peer('a', ['a', 'b', 'c', 'd', 'e']);
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 1, true));
    p.node.step(voteResp('c', 'a', 1, true));
    expect(p.status.role).toBe('candidate');
    p.node.step(voteResp('d', 'a', 1, true));
    expect(p.status).toMatchObject({ role: 'follower', term: 1, vote: 'a', leader: '' });
  });

  it('a vote response counts once per voter and only from voters', () => {
    const p = new Peer('a', ['a', 'b', 'c', 'd', 'e']);
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 1));
    p.node.step(voteResp('b', 'a', 1));
    p.node.step(voteResp('z', 'a', 1));
    expect(p.status.role).toBe('candidate');
    p.node.step(voteResp('c', 'a', 1));
    expect(p.status.role).toBe('leader');
  });

  it('concedes to a leader of its own term (AppendEntries from it)', () => {
    const p = new Peer('a', ABC);
    p.node.campaign();
    p.flush();
    p.node.step(appMsg('b', 'a', 1, 0, 0, [{ index: 1, term: 1, type: 'normal', data: new Uint8Array() }], 0));
    const out = p.flush();
    expect(p.status).toMatchObject({ role: 'follower', term: 1, leader: 'b', vote: 'a', lastIndex: 1 });
    expect(ofType(out, 'appResp')).toEqual([appResp('a', 'b', 1, 1)]);
  });
});

describe('§5.2 one vote per term, persisted before the reply (Figure 2, "Persistent state")', () => {
  it('grants the first candidate; the Ready that releases the grant carries the vote in its hard state', () => {
    const p = new Peer('b', ABC);
    p.node.step(voteMsg('a', 'b', 1, 0, 0));
    const rd = p.node.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
    expect(rd.messages).toEqual([voteResp('b', 'a', 1, false)]);
    p.handle(rd);
    expect(p.store.initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
  });

  it('rejects a second candidate of the same term and grants a repeated request of the first', () => {
    const p = new Peer('b', ABC);
    p.node.step(voteMsg('a', 'b', 1, 0, 0));
    p.flush();
    p.node.step(voteMsg('c', 'b', 1, 0, 0));
    expect(p.flush()).toEqual([voteResp('b', 'c', 1, true)]);
    p.node.step(voteMsg('a', 'b', 1, 0, 0));
    expect(p.flush()).toEqual([voteResp('b', 'a', 1, false)]);
    expect(p.status.vote).toBe('a');
  });

  it('remembers its vote across a restart', () => {
    const net = new RawNet(ABC);
    net.step(voteMsg('a', 'b', 1, 0, 0));
    const b = net.restart('b');
    expect(b.status).toMatchObject({ term: 1, vote: 'a', role: 'follower' });
    b.node.step(voteMsg('c', 'b', 1, 5, 1));
    expect(b.flush()).toEqual([voteResp('b', 'c', 1, true)]);
  });

  it('votes again in a later term', () => {
    const p = new Peer('b', ABC);
    p.node.step(voteMsg('a', 'b', 1, 0, 0));
    p.flush();
    p.node.step(voteMsg('c', 'b', 2, 0, 0));
    const out = p.flush();
    expect(out).toEqual([voteResp('b', 'c', 2, false)]);
    expect(p.store.initialState().hardState).toEqual({ term: 2, vote: 'c', commit: 0 });
  });

  it('a follower that grants a vote restarts its election timer', () => {
    const p = new Peer('b', ABC, { seed: 3 });
    const timeout = p.node.ticksUntilTimeout();
    for (let i = 0; i < timeout - 1; i++) p.node.tick();
    p.node.step(voteMsg('a', 'b', 1, 0, 0));
    p.flush();
    p.node.tick();
    expect(p.status.role).toBe('follower');
    expect(p.node.ticksUntilTimeout()).toBeGreaterThanOrEqual(9);
  });
});

describe('§5.4.1 election restriction (up-to-date check)', () => {
  // The voter's log has terms [1, 1, 2] (last index 3, last term 2).
  const cases: [string, number, number, boolean][] = [
    ['older last term, longer log', 10, 1, false],
    ['same last term, shorter log', 2, 2, false],
    ['same last term, same length', 3, 2, true],
    ['same last term, longer log', 4, 2, true],
    ['newer last term, shorter log', 1, 3, true],
    ['empty log', 0, 0, false],
  ];
  for (const [name, lastIndex, lastTerm, granted] of cases) {
    it(`${granted ? 'grants' : 'rejects'} a candidate with ${name} (${lastIndex}@${lastTerm})`, () => {
      const p = new Peer('b', ABC, { terms: [1, 1, 2] });
      p.node.step(voteMsg('a', 'b', 5, lastIndex, lastTerm));
      const rd = p.node.ready();
      expect(rd.messages).toEqual([voteResp('b', 'a', 5, !granted)]);
      // The higher term is adopted either way; the vote only when granted.
      expect(rd.hardState).toEqual({ term: 5, vote: granted ? 'a' : '', commit: 0 });
    });
  }

  it('in a cluster, a node with a stale log cannot be elected', () => {
    const net = new RawNet(ABC, { a: { terms: [1] }, b: { terms: [1, 2] }, c: { terms: [1, 2] } });
    net.campaign('a');
    net.deliver();
    // a (term 1) asks for term 2; b and c are at term 2 already with a newer log.
    expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 2 });
    expect(net.node('b').status()).toMatchObject({ term: 2, vote: '' });
    net.elect('b');
    expect(net.node('b').status()).toMatchObject({ role: 'leader', term: 3 });
  });
});

describe('§5.1 terms: a higher term wins, a stale term is refused (Figure 2, "All servers")', () => {
  function leaderAt3(config = {}): RawNet {
    const net = new RawNet(ABC, {}, { hard: { term: 2 }, config });
    net.elect('a');
    net.deliver();
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 3, commit: 1 });
    return net;
  }

  const higher: [string, (from: NodeId) => Message, NodeId][] = [
    ['AppendEntries', (f) => appMsg(f, 'a', 7, 1, 3, [], 1), 'b'],
    ['a heartbeat', (f) => heartbeat(f, 'a', 7, 1), 'b'],
    ['an AppendEntries response', (f) => appResp(f, 'a', 7, 1), ''],
    ['a vote response', (f) => voteResp(f, 'a', 7, true), ''],
  ];
  for (const [name, make, lead] of higher) {
    it(`a leader steps down on ${name} of a higher term`, () => {
      const net = leaderAt3();
      net.step(make('b'));
      expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 7, leader: lead, vote: '' });
      expect(net.peer('a').store.initialState().hardState.term).toBe(7);
    });
  }

  it('without CheckQuorum, a leader steps down on a higher-term RequestVote and may grant it', () => {
    const net = leaderAt3({ checkQuorum: false });
    const out = net.step(voteMsg('c', 'a', 4, 1, 3));
    expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 4, vote: 'c' });
    expect(out).toEqual([voteResp('a', 'c', 4, false)]);
  });

  it('ignores a RequestVote of a stale term without answering or changing its vote', () => {
    const p = new Peer('b', ABC, { hard: { term: 5, vote: 'c' } });
    p.node.step(voteMsg('a', 'b', 4, 9, 4));
    expect(p.flush()).toEqual([]);
    expect(p.status).toMatchObject({ term: 5, vote: 'c' });
  });

  it('ignores AppendEntries of a stale term when neither CheckQuorum nor PreVote is on', () => {
    const p = new Peer('b', ABC, { terms: [1], hard: { term: 5 } });
    p.node.step(appMsg('a', 'b', 4, 1, 1, [{ index: 2, term: 4, type: 'normal', data: new Uint8Array() }], 2));
    expect(p.flush()).toEqual([]);
    expect(p.status).toMatchObject({ term: 5, lastIndex: 1, commit: 0, leader: '' });
  });

  it('with CheckQuorum, answers a stale AppendEntries with its term so the old leader steps down', () => {
    const net = new RawNet(ABC, { b: { hard: { term: 5 } } }, { config: { checkQuorum: true } });
    net.peer('a').node.campaign();
    net.flush('a');
    net.step(voteResp('c', 'a', 1));
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1 });
    net.queue = [];
    const reply = net.step(appMsg('a', 'b', 1, 0, 0, [], 0));
    expect(reply).toEqual([appResp('b', 'a', 5, 0)]);
    expect(net.node('b').status()).toMatchObject({ term: 5, leader: '', lastIndex: 0 });
    net.deliver();
    expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 5 });
  });

  it('a candidate ignores vote responses of an earlier term', () => {
    const p = new Peer('a', ABC, { hard: { term: 4 } });
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 4));
    p.node.step(voteResp('c', 'a', 3));
    expect(p.status).toMatchObject({ role: 'candidate', term: 5 });
  });
});

describe('§5.2 election safety in a cluster', () => {
  it('at most one leader per term, over many seeds with a flaky network', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster(['a', 'b', 'c', 'd', 'e'], { seed: seed * 7, preVote: false, checkQuorum: false });
      const leaders = new Map<number, NodeId>();
      let dropped = 0;
      for (let t = 0; t < 150; t++) {
        for (const n of c.nodes.values()) n.driver.tick();
        // Drop every third message.
        c.deliver(100_000, () => dropped++ % 3 !== 0);
        for (const n of c.nodes.values()) {
          const st = n.driver.status();
          if (st.role !== 'leader') continue;
          const prev = leaders.get(st.term);
          if (prev !== undefined) expect(prev).toBe(n.id);
          leaders.set(st.term, n.id);
        }
      }
      expect(leaders.size).toBeGreaterThan(0);
    }
  });

  it('every node learns the leader and its term', () => {
    const c = new Cluster(['a', 'b', 'c', 'd', 'e'], { seed: 5 });
    const l = c.elect();
    c.tickAll(2);
    const term = c.node(l).driver.status().term;
    for (const n of c.nodes.values()) expect(n.driver.status()).toMatchObject({ leader: l, term });
  });
});
