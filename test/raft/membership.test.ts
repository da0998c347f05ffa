import { describe, expect, it } from 'vitest';
import type { ProposeOutcome } from '../../src/driver/index.ts';
import { applyToConf, decodeConfChange, encodeConfChange } from '../../src/raft/conf-change.ts';
import type { ConfChange, Message, NodeId } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';
import { Cluster, ListMachine } from './harness.ts';
import { appResp, bytes, ofType, Peer, RawNet, voteMsg, voteResp } from './raw.ts';

const ABC = ['a', 'b', 'c'];

function changeConf(c: Cluster, id: NodeId, cc: ConfChange): ProposeOutcome<string | undefined> | undefined {
  let out: ProposeOutcome<string | undefined> | undefined;
  c.node(id).driver.proposeConfChange(cc, (o) => {
    out = o;
  });
  c.deliver();
  return out;
}

/** A brand-new node bootstrapped, as the node shell does, with the cluster's initial membership. */
function newcomer(c: Cluster, id: NodeId, initial: NodeId[] = ABC): void {
  c.start(id, new MemoryLogStore(), new ListMachine(), { voters: initial, learners: [] });
}

function others(c: Cluster, id: NodeId): NodeId[] {
  return [...c.nodes.keys()].filter((x) => x !== id);
}

/** a leads {a,b,c} at term 1 with its no-op applied, so it may propose a conf change. */
function leaderA(learners: NodeId[] = []): RawNet {
  const net = new RawNet([...ABC, ...learners], {}, { voters: ABC, learners });
  net.elect('a');
  net.deliver();
  expect(net.node('a').status()).toMatchObject({ role: 'leader', commit: 1, applied: 1 });
  return net;
}

describe('thesis §4.1 single-server membership changes: one at a time', () => {
  it('a new leader accepts no change until its own no-op is applied', () => {
    const a = new Peer('a', ABC);
    a.node.campaign();
    a.flush();
    a.node.step(voteResp('b', 'a', 1));
    a.flush();
    expect(a.node.proposeConfChange({ type: 'addVoter', node: 'd' })).toMatchObject({
      ok: false,
      reason: 'confPending',
      leader: 'a',
    });
    a.node.step(appResp('b', 'a', 1, 1));
    a.flush();
    expect(a.node.proposeConfChange({ type: 'addVoter', node: 'd' })).toEqual({ ok: true, index: 2, term: 1 });
  });

  it('refuses a second change while the first is not applied, and accepts it afterwards', () => {
    const net = leaderA();
    const a = net.node('a');
    expect(a.proposeConfChange({ type: 'addLearner', node: 'd' })).toEqual({ ok: true, index: 2, term: 1 });
    expect(a.proposeConfChange({ type: 'addLearner', node: 'e' })).toMatchObject({
      ok: false,
      reason: 'confPending',
    });
    net.flush('a');
    // Committed is not enough: only applying it makes room for the next change.
    net.peer('a').autoApplyConf = true;
    net.deliver();
    expect(a.status()).toMatchObject({ commit: 2, applied: 2 });
    expect(a.status().conf).toEqual({ voters: ABC, learners: ['d'] });
    expect(a.proposeConfChange({ type: 'addLearner', node: 'e' })).toEqual({ ok: true, index: 3, term: 1 });
  });

  it('the change is an entry of type conf, applied by every member when committed', () => {
    const net = leaderA();
    net.node('a').proposeConfChange({ type: 'addLearner', node: 'd' });
    net.flush('a');
    net.deliver();
    net.node('a').heartbeat();
    net.flush('a');
    net.deliver();
    for (const id of ABC) {
      const e = net.peer(id).applied.find((x) => x.index === 2);
      expect(e?.type).toBe('conf');
      expect(net.node(id).status().conf).toEqual({ voters: ABC, learners: ['d'] });
    }
  });

  const invalid: [string, ConfChange][] = [
    ['adding an existing voter', { type: 'addVoter', node: 'b' }],
    ['demoting a voter to learner directly', { type: 'addLearner', node: 'b' }],
    ['removing a non-member', { type: 'remove', node: 'z' }],
    // A change may come from outside (an RPC): its type is looked up as an own name, never inherited.
    ['an inherited name as its type', { type: 'toString', node: 'd' } as unknown as ConfChange],
    ['__proto__ as its type', JSON.parse('{"type":"__proto__","node":"d"}') as ConfChange],
    ['an object as its type', { type: {}, node: 'd' } as unknown as ConfChange],
    ['no node', { type: 'addVoter', node: '' }],
  ];
  for (const [name, cc] of invalid) {
    it(`refuses ${name}`, () => {
      const net = leaderA();
      const res = net.node('a').proposeConfChange(cc);
      expect(res).toMatchObject({ ok: false, reason: 'invalid' });
      expect(net.flush('a')).toEqual([]);
      expect(net.node('a').status().lastIndex).toBe(1);
    });
  }

  it('refuses to remove the last voter', () => {
    const p = new Peer('a', ['a']);
    p.node.campaign();
    p.flush();
    expect(p.node.proposeConfChange({ type: 'remove', node: 'a' })).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('a follower refuses to propose a change', () => {
    const net = leaderA();
    expect(net.node('b').proposeConfChange({ type: 'addVoter', node: 'd' })).toMatchObject({
      ok: false,
      reason: 'notLeader',
      leader: 'a',
    });
  });
});

describe('thesis §4.1 adding and removing voters', () => {
  it('adds a voter: the empty node catches up and then counts toward the quorum', () => {
    const c = new Cluster(ABC, { seed: 2 });
    const l = c.elect();
    for (let i = 0; i < 5; i++) c.propose(l, `pre${i}`);
    newcomer(c, 'd');
    expect(c.node('d').driver.node.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    expect(changeConf(c, l, { type: 'addVoter', node: 'd' })?.status).toBe('applied');
    c.tickAll(3);
    for (const n of c.nodes.values()) {
      expect(n.driver.status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
      expect(n.sm.log).toEqual(['pre0', 'pre1', 'pre2', 'pre3', 'pre4']);
    }
    // Quorum of 4 is 3: the leader and one other cannot commit.
    const [x, y] = others(c, l).filter((id) => id !== 'd') as [NodeId, NodeId];
    c.cut(l, x);
    c.cut(l, y);
    expect(c.propose(l, 'needs-3')).toBeUndefined();
    c.heal();
    c.tickAll(2);
    expect(c.node(l).sm.log).toContain('needs-3');
  });

  it('removes a follower: it gets nothing more and the quorum shrinks', () => {
    const c = new Cluster(ABC, { seed: 5 });
    const l = c.elect();
    const [gone, stay] = others(c, l) as [NodeId, NodeId];
    expect(changeConf(c, l, { type: 'remove', node: gone })?.status).toBe('applied');
    expect(c.node(l).driver.status().conf.voters).toEqual([l, stay].sort());
    expect(Object.keys(c.node(l).driver.status().progress).sort()).toEqual([l, stay].sort());
    expect(c.propose(l, 'two-of-two')?.status).toBe('applied');
    c.tickAll(3);
    expect(c.node(gone).sm.log).not.toContain('two-of-two');
    expect(c.node(stay).sm.log).toContain('two-of-two');
    // With only {l, stay} left, both are needed.
    c.cut(l, stay);
    expect(c.propose(l, 'alone')).toBeUndefined();
  });

  it("a removed follower that holds the change learns it is out from the leader's last heartbeat", () => {
    // lazyCommit, as the node runtime runs: the commit index travels only with the next append or heartbeat.
    const c = new Cluster(ABC, { seed: 5, lazyCommit: true });
    const l = c.elect();
    const [gone] = others(c, l) as [NodeId, NodeId];
    expect(changeConf(c, l, { type: 'remove', node: gone })?.status).toBe('applied');
    c.tickAll(3);
    // Without the last heartbeat it held the entry but never learned it was committed: it still counted itself in.
    expect(c.node(gone).driver.status().conf.voters).not.toContain(gone);
  });

  it('a removed follower that never learns of its removal does not disrupt the others (thesis §4.2.3)', () => {
    const c = new Cluster(ABC, { seed: 37 });
    const l = c.elect();
    c.tickAll(2);
    const [gone, stay] = others(c, l) as [NodeId, NodeId];
    c.isolate(gone);
    expect(changeConf(c, l, { type: 'remove', node: gone })?.status).toBe('applied');
    const term = c.node(l).driver.status().term;
    c.heal();
    c.tickAll(150);
    // gone still believes it is a voter and keeps trying, but the leased members ignore it.
    expect(c.node(gone).driver.status().conf.voters).toContain(gone);
    expect(c.node(l).driver.status()).toMatchObject({ role: 'leader', term });
    expect(c.node(stay).driver.status()).toMatchObject({ leader: l, term });
    expect(c.propose(l, 'undisturbed')?.status).toBe('applied');
  });

  it('issue 16: members drop what a removed node asks of them, even with no leader to lease them', () => {
    // d is removed while cut off: it never learns, and campaigns on its old configuration {a,b,c,d}.
    const net = new RawNet(['a', 'b', 'c', 'd'], {}, { config: { checkQuorum: true, preVote: true } });
    net.elect('a');
    net.deliver();
    net.isolate('d');
    expect(net.node('a').proposeConfChange({ type: 'remove', node: 'd' })).toMatchObject({ ok: true });
    net.flush('a');
    net.deliver();
    net.tick('a');
    net.deliver();
    for (const id of ABC) expect(net.node(id).status().conf.voters).toEqual(ABC);
    net.heal();
    const { term, lastIndex } = net.node('b').status();
    const lastTerm = net.peer('b').terms().at(-1) ?? 0;
    // The leader is gone: b and c no longer ignore votes (no lease), and d's log is as long as theirs.
    for (const id of ['b', 'c']) net.node(id).forgetLeader();
    for (const preVote of [true, false]) {
      for (const to of ['b', 'c']) {
        expect(net.step(voteMsg('d', to, term + 1, lastIndex, lastTerm, { preVote }))).toEqual([]);
        expect(net.node(to).status()).toMatchObject({ term, vote: 'a' });
      }
    }
    // Its answers are dropped too: a higher term in them changes nothing.
    net.step({ type: 'heartbeatResp', from: 'd', to: 'b', term: term + 5, ctx: '' } as Message);
    expect(net.node('b').status().term).toBe(term);
    // The same request from a member is granted: only the outsider is dropped.
    expect(ofType(net.step(voteMsg('c', 'b', term + 1, lastIndex, lastTerm, { preVote: true })), 'voteResp')).toEqual([
      expect.objectContaining({ reject: false }),
    ]);
  });

  it('a member left behind answers an outsider asking with a newer log: the configuration that added it may need its vote', () => {
    // b's configuration is {a,b,c}; d asks as if added by changes b has not applied.
    const net = new RawNet(['a', 'b', 'c', 'd'], {}, { voters: ABC, config: { checkQuorum: true, preVote: true } });
    net.elect('a');
    net.deliver();
    net.node('b').forgetLeader();
    const { term, lastIndex } = net.node('b').status();
    const lastTerm = net.peer('b').terms().at(-1) ?? 0;
    // As long as b's: dropped (issue 16). One entry longer, or of a later term: judged, and granted.
    expect(net.step(voteMsg('d', 'b', term + 1, lastIndex, lastTerm, { preVote: true }))).toEqual([]);
    for (const [index, logTerm] of [
      [lastIndex + 1, lastTerm],
      [lastIndex - 1, lastTerm + 1],
    ] as const) {
      expect(ofType(net.step(voteMsg('d', 'b', term + 1, index, logTerm, { preVote: true })), 'voteResp')).toEqual([
        expect.objectContaining({ to: 'd', reject: false }),
      ]);
    }
    // A real vote at a higher term with a newer log: b takes the term and votes.
    const granted = ofType(net.step(voteMsg('d', 'b', term + 1, lastIndex + 1, lastTerm)), 'voteResp');
    expect(granted).toEqual([expect.objectContaining({ to: 'd', reject: false })]);
    expect(net.node('b').status()).toMatchObject({ term: term + 1, vote: 'd' });
  });

  it('a removed leader steps down once the change applies; the others elect a leader among themselves', () => {
    const c = new Cluster(ABC, { seed: 7 });
    const l = c.elect();
    c.propose(l, 'before');
    expect(changeConf(c, l, { type: 'remove', node: l })?.status).toBe('applied');
    const st = c.node(l).driver.status();
    expect(st.role).toBe('follower');
    expect(st.conf.voters).not.toContain(l);
    expect(c.node(l).driver.node.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    c.tickAll(60);
    const fresh = c.leader();
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(l);
    expect(c.node(fresh as string).driver.status().conf.voters).toEqual(others(c, l).sort());
    expect(c.propose(fresh as string, 'after')?.status).toBe('applied');
    c.tickAll(60);
    expect(c.node(l).driver.status().role).toBe('follower');
  });
});

describe('thesis §4.2.1 learners (non-voting members) and promotion', () => {
  it('a candidate asks only voters for votes', () => {
    const net = new RawNet(['a', 'b', 'c', 'd'], {}, { voters: ABC, learners: ['d'] });
    const out = net.campaign('a');
    expect(ofType(out, 'vote').map((m) => m.to)).toEqual(['b', 'c']);
  });

  it("a learner's acknowledgement does not count toward commitment", () => {
    const net = leaderA(['d']);
    const a = net.node('a');
    net.propose('a', 'x');
    net.take();
    net.step(appResp('d', 'a', 1, 2));
    expect(a.status()).toMatchObject({ commit: 1 });
    expect(a.status().progress.d?.match).toBe(2);
    net.step(appResp('c', 'a', 1, 2));
    expect(a.status().commit).toBe(2);
  });

  it("a learner's heartbeat ack does not keep the leader in office under CheckQuorum", () => {
    const net = new RawNet(['a', 'b', 'c', 'd'], {}, { voters: ABC, learners: ['d'], config: { checkQuorum: true } });
    net.elect('a');
    net.deliver();
    net.isolate('b');
    for (const x of ['c']) for (const y of ['a', 'b', 'd']) net.cuts.add(`${x}|${y}`).add(`${y}|${x}`);
    for (let t = 0; t < 20; t++) {
      net.tick('a');
      net.deliver();
    }
    expect(net.node('a').status().role).toBe('follower');
  });

  it('promote makes a learner a voter, and is refused for anyone else', () => {
    const net = leaderA(['d']);
    expect(net.node('a').proposeConfChange({ type: 'promote', node: 'b' })).toMatchObject({ ok: false });
    expect(net.node('a').proposeConfChange({ type: 'promote', node: 'x' })).toMatchObject({ ok: false });
    expect(net.node('a').proposeConfChange({ type: 'promote', node: 'd' })).toMatchObject({ ok: true });
    net.flush('a');
    net.deliver();
    net.tick('a');
    net.deliver();
    for (const id of ['a', 'b', 'c', 'd'])
      expect(net.node(id).status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
  });

  it('a promotion that applies after its learner was removed changes nothing (no voter that never caught up)', () => {
    const conf = { voters: ABC, learners: ['d'] };
    const removed = applyToConf(conf, { type: 'remove', node: 'd' });
    expect(applyToConf(removed, { type: 'promote', node: 'd' })).toEqual(removed);
    // What promote guards against: a plain addVoter in its place would add d back, as a voter.
    expect(applyToConf(removed, { type: 'addVoter', node: 'd' }).voters).toContain('d');
    expect(decodeConfChange(encodeConfChange({ type: 'promote', node: 'd' }))).toEqual({ type: 'promote', node: 'd' });
  });

  it('adds a learner, which replicates but never campaigns, then promotes it to voter', () => {
    const c = new Cluster(ABC, { seed: 13 });
    const l = c.elect();
    c.propose(l, 'one');
    newcomer(c, 'd');
    expect(changeConf(c, l, { type: 'addLearner', node: 'd' })?.status).toBe('applied');
    c.tickAll(3);
    expect(c.node('d').driver.status().conf).toEqual({ voters: ABC, learners: ['d'] });
    expect(c.node('d').sm.log).toEqual(['one']);
    expect(c.node('d').driver.node.ticksUntilTimeout()).toBe(Number.POSITIVE_INFINITY);
    // The learner alone cannot help the leader commit.
    for (const id of others(c, l)) if (id !== 'd') c.cut(l, id);
    expect(c.propose(l, 'learner-only')).toBeUndefined();
    c.heal();
    c.tickAll(3);
    // Promotion.
    expect(changeConf(c, c.elect(), { type: 'addVoter', node: 'd' })?.status).toBe('applied');
    c.tickAll(3);
    for (const n of c.nodes.values()) {
      expect(n.driver.status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    }
    expect(Number.isFinite(c.node('d').driver.node.ticksUntilTimeout())).toBe(true);
    // d is a full voter now: it can take over leadership.
    const leader = c.elect();
    c.node(leader).driver.transferLeader('d');
    c.deliver();
    c.tickAll(2);
    expect(c.leader()).toBe('d');
    expect(c.propose('d', 'from-d')?.status).toBe('applied');
  });

  it('proposals keep flowing while a change is pending (only conf changes wait)', () => {
    const net = leaderA();
    expect(net.node('a').proposeConfChange({ type: 'addLearner', node: 'd' }).ok).toBe(true);
    expect(net.node('a').propose(bytes('data'))).toEqual({ ok: true, index: 3, term: 1 });
  });
});

describe('thesis §4.1 membership of a node that joins with an empty log', () => {
  // Conf entries are changes relative to the initial membership, so a newcomer replaying the
  // log from index 1 must start from that same membership (found by the unit tests: starting
  // from an empty one turned `addVoter d` into a one-voter cluster {d}, a split brain).
  it('a newcomer started from the initial membership learns the full configuration from the log', () => {
    const c = new Cluster(ABC, { seed: 2 });
    const l = c.elect();
    c.propose(l, 'x');
    c.addEmpty('d');
    expect(changeConf(c, l, { type: 'addVoter', node: 'd' })?.status).toBe('applied');
    c.tickAll(3);
    expect(c.node('d').driver.status().conf).toEqual({ voters: ['a', 'b', 'c', 'd'], learners: [] });
    // Cut off, d cannot elect itself: it needs a majority of four.
    c.isolate('d');
    c.tickAll(60);
    expect(c.node('d').driver.status().role).not.toBe('leader');
  });

  it('the driver refuses to start a node that has neither a configuration nor the initial one', () => {
    expect(() => c0().start('d', new MemoryLogStore(), new ListMachine(), undefined)).toThrow(/initial membership/);
  });
});

function c0(): Cluster {
  return new Cluster(ABC, { seed: 3 });
}
