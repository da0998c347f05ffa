import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';
import { heartbeat, ofType, Peer, RawNet, voteMsg, voteResp } from './raw.ts';

const ABC = ['a', 'b', 'c'];
const PRE = { config: { preVote: true } };

describe('thesis §9.6 PreVote: the pre-candidate', () => {
  it('on timeout asks for votes at term+1 without changing its term or vote', () => {
    const p = new Peer('a', ABC, { terms: [1, 1], hard: { term: 1, vote: 'b' }, ...PRE });
    for (let i = 0; i < 19 && p.status.role === 'follower'; i++) p.node.tick();
    expect(p.status).toMatchObject({ role: 'preCandidate', term: 1, vote: 'b' });
    const rd = p.node.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.softState).toEqual({ role: 'preCandidate', leader: '' });
    expect(rd.messages).toEqual([
      { type: 'vote', from: 'a', to: 'b', term: 2, preVote: true, transfer: false, lastIndex: 2, lastTerm: 1 },
      { type: 'vote', from: 'a', to: 'c', term: 2, preVote: true, transfer: false, lastIndex: 2, lastTerm: 1 },
    ]);
  });

  it('becomes a real candidate only after a majority of pre-votes', () => {
    const p = new Peer('a', ['a', 'b', 'c', 'd', 'e'], PRE);
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 1, false, true));
    // A real (non-pre) vote response of its own term is not counted by a pre-candidate.
    p.node.step(voteResp('c', 'a', 0, false, false));
    expect(p.status).toMatchObject({ role: 'preCandidate', term: 0 });
    p.node.step(voteResp('d', 'a', 1, false, true));
    const rd = p.node.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'a', commit: 0 });
    expect(ofType(rd.messages, 'vote').map((m) => [m.to, m.term, m.preVote])).toEqual([
      ['b', 1, false],
      ['c', 1, false],
      ['d', 1, false],
      ['e', 1, false],
    ]);
  });

  it('goes back to follower at its own term when a majority refuses', () => {
    const p = new Peer('a', ABC, { hard: { term: 4 }, ...PRE });
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 4, true, true));
    p.node.step(voteResp('c', 'a', 4, true, true));
    expect(p.status).toMatchObject({ role: 'follower', term: 4, vote: '' });
    expect(p.flush().length).toBe(0);
  });

  it('adopts a newer term carried by a pre-vote rejection', () => {
    const p = new Peer('a', ABC, { hard: { term: 4 }, ...PRE });
    p.node.campaign();
    p.flush();
    p.node.step(voteResp('b', 'a', 9, true, true));
    expect(p.status).toMatchObject({ role: 'follower', term: 9 });
  });

  it('stops campaigning when it hears from a leader of its term', () => {
    const p = new Peer('a', ABC, { hard: { term: 4 }, ...PRE });
    p.node.campaign();
    p.flush();
    p.node.step(heartbeat('b', 'a', 4, 0));
    expect(p.status).toMatchObject({ role: 'follower', term: 4, leader: 'b' });
  });
});

describe('thesis §9.6 PreVote: the voter', () => {
  it('grants a pre-vote without recording anything, even after voting in its term', () => {
    const p = new Peer('b', ABC, { terms: [1], hard: { term: 1, vote: 'c' }, ...PRE });
    p.node.step(voteMsg('a', 'b', 2, 1, 1, { preVote: true }));
    const rd = p.node.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.messages).toEqual([voteResp('b', 'a', 2, false, true)]);
    p.handle(rd);
    expect(p.status).toMatchObject({ term: 1, vote: 'c' });
  });

  it('refuses a pre-vote from a candidate whose log is behind, answering with its own term', () => {
    const p = new Peer('b', ABC, { terms: [1, 2], ...PRE });
    p.node.step(voteMsg('a', 'b', 3, 5, 1, { preVote: true }));
    const rd = p.node.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.messages).toEqual([voteResp('b', 'a', 2, true, true)]);
  });

  it('refuses a pre-vote for a term not above its own', () => {
    const p = new Peer('b', ABC, { hard: { term: 3, vote: 'c' }, ...PRE });
    p.node.step(voteMsg('a', 'b', 3, 0, 0, { preVote: true }));
    expect(p.flush()).toEqual([voteResp('b', 'a', 3, true, true)]);
    p.node.step(voteMsg('a', 'b', 2, 0, 0, { preVote: true }));
    expect(p.flush()).toEqual([voteResp('b', 'a', 3, true, true)]);
  });

  it('a full pre-vote then vote round elects a leader at term+1', () => {
    const net = new RawNet(ABC, {}, { hard: { term: 6 }, ...PRE });
    net.campaign('a');
    expect(net.node('a').status()).toMatchObject({ role: 'preCandidate', term: 6 });
    net.deliver();
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 7 });
    // Exactly two rounds of messages: 2 pre-votes, 2 votes, then replication.
    expect(net.sent.filter((m) => m.type === 'vote').map((m) => `${m.to}:${m.term}`)).toEqual([
      'b:7',
      'c:7',
      'b:7',
      'c:7',
    ]);
    expect(net.node('b').status()).toMatchObject({ term: 7, vote: 'a', leader: 'a' });
  });
});

describe('thesis §9.6 PreVote: a partitioned node does not disrupt the cluster on rejoin', () => {
  it('with PreVote, an isolated follower keeps its term and the leader keeps leading after the heal', () => {
    const c = new Cluster(ABC, { seed: 11, preVote: true, checkQuorum: true });
    const leader = c.elect();
    c.tickAll(3);
    const term = c.node(leader).driver.status().term;
    const f = ABC.find((id) => id !== leader) as string;
    c.isolate(f);
    c.tickAll(200);
    expect(c.node(f).driver.status().term).toBe(term);
    expect(c.node(leader).driver.status()).toMatchObject({ role: 'leader', term });
    c.heal();
    c.tickAll(30);
    for (const id of ABC) expect(c.node(id).driver.status()).toMatchObject({ term, leader });
    expect(c.propose(leader, 'after-heal')?.status).toBe('applied');
  });

  it('without PreVote (and CheckQuorum), the same isolated node inflates its term and deposes the leader', () => {
    const c = new Cluster(ABC, { seed: 11, preVote: false, checkQuorum: false });
    const leader = c.elect();
    c.tickAll(3);
    const term = c.node(leader).driver.status().term;
    const f = ABC.find((id) => id !== leader) as string;
    c.isolate(f);
    c.tickAll(200);
    const inflated = c.node(f).driver.status().term;
    expect(inflated).toBeGreaterThan(term + 5);
    c.heal();
    c.tickAll(60);
    const after = c.leader();
    expect(after).toBeDefined();
    expect(c.node(after as string).driver.status().term).toBeGreaterThan(inflated);
  });
});
