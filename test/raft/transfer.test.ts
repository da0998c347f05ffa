import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { bytes, ofType, Peer, RawNet } from './raw.ts';

const ABCD = ['a', 'b', 'c', 'd'];
/** Production-like: PreVote and CheckQuorum on, so the target must get past the followers' leases. */
const CFG = { voters: ['a', 'b', 'c'], learners: ['d'], config: { preVote: true, checkQuorum: true } };

/** a leads term 1 of voters {a,b,c} + learner d; everyone has the no-op. */
function leaderA(): RawNet {
  const net = new RawNet(ABCD, {}, CFG);
  net.elect('a');
  net.deliver();
  expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
  net.queue = [];
  return net;
}

const isTimeoutNow = (m: Message) => m.type === 'timeoutNow';

describe('thesis §3.10 leadership transfer', () => {
  it('sends TimeoutNow at once to a caught-up target, which wins the next term despite the leases', () => {
    const net = leaderA();
    net.node('a').transferLeader('b');
    expect(net.node('a').status().leadTransferee).toBe('b');
    const out = net.flush('a');
    expect(out).toEqual([{ type: 'timeoutNow', from: 'a', to: 'b', term: 1 }]);
    net.deliver();
    // b skipped PreVote and flagged its requests so leased voters answer them.
    expect(
      ofType(net.sent, 'vote')
        .filter((m) => m.from === 'b')
        .map((m) => [m.to, m.term, m.preVote, m.transfer]),
    ).toEqual([
      ['a', 2, false, true],
      ['c', 2, false, true],
    ]);
    expect(net.node('b').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(net.node('a').status()).toMatchObject({ role: 'follower', term: 2, leader: 'b', leadTransferee: '' });
    expect(net.node('c').status()).toMatchObject({ term: 2, leader: 'b' });
  });

  it('waits for a lagging target to catch up before sending TimeoutNow', () => {
    const net = leaderA();
    net.cuts.add('a|b').add('b|a');
    for (const cmd of ['x', 'y', 'z']) net.propose('a', cmd);
    net.deliver();
    expect(net.node('a').status()).toMatchObject({ commit: 4, lastIndex: 4 });
    expect(net.node('b').status().lastIndex).toBe(1);
    net.node('a').transferLeader('b');
    const first = net.flush('a');
    expect(first.filter(isTimeoutNow)).toEqual([]);
    expect(net.node('a').status().leadTransferee).toBe('b');
    net.heal();
    const before = net.sent.length;
    net.deliver();
    const after = net.sent.slice(before);
    const at = after.findIndex(isTimeoutNow);
    expect(at).toBeGreaterThan(0);
    expect(after.filter(isTimeoutNow).length).toBe(1);
    // Sent right after b acknowledged the leader's last index, never before.
    const acks = ofType(after.slice(0, at), 'appResp').filter((m) => m.from === 'b' && !m.reject);
    expect(acks.map((m) => m.index).slice(-1)).toEqual([4]);
    expect(net.node('b').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(net.peer('b').terms()).toEqual([1, 1, 1, 1, 2]);
  });

  it('refuses a learner, a non-member and itself', () => {
    const net = leaderA();
    for (const target of ['d', 'zz', 'a']) {
      net.node('a').transferLeader(target);
      expect(net.node('a').status().leadTransferee).toBe('');
      expect(net.flush('a').filter(isTimeoutNow)).toEqual([]);
    }
    expect(net.node('a').propose(bytes('ok'))).toMatchObject({ ok: true });
  });

  it('a non-leader ignores transferLeader', () => {
    const net = leaderA();
    net.node('b').transferLeader('c');
    expect(net.node('b').status().leadTransferee).toBe('');
    expect(net.flush('b')).toEqual([]);
  });

  it('refuses proposals and conf changes while the transfer is in progress', () => {
    const net = leaderA();
    net.isolate('b');
    net.node('a').transferLeader('b');
    net.flush('a');
    expect(net.node('a').propose(bytes('w'))).toEqual({ ok: false, reason: 'transferring', leader: 'a' });
    expect(net.node('a').proposeConfChange({ type: 'remove', node: 'd' })).toMatchObject({
      ok: false,
      reason: 'transferring',
    });
    expect(net.node('a').status().lastIndex).toBe(1);
  });

  it('is abandoned after an election timeout, and the leader accepts proposals again', () => {
    const net = leaderA();
    net.isolate('b');
    net.node('a').transferLeader('b');
    net.flush('a');
    for (let i = 0; i < 9; i++) {
      net.tick('a');
      net.deliver();
    }
    expect(net.node('a').status()).toMatchObject({ role: 'leader', leadTransferee: 'b' });
    net.tick('a');
    net.deliver();
    expect(net.node('a').status()).toMatchObject({ role: 'leader', term: 1, leadTransferee: '' });
    expect(net.node('a').propose(bytes('again'))).toEqual({ ok: true, index: 2, term: 1 });
    // Its one TimeoutNow was lost on the way.
    expect(net.sent.filter(isTimeoutNow).length).toBe(1);
  });

  it('a transfer to a target that never catches up is abandoned too, without any TimeoutNow', () => {
    const net = leaderA();
    net.isolate('b');
    net.propose('a', 'x');
    net.deliver();
    expect(net.node('a').status().commit).toBe(2);
    net.node('a').transferLeader('b');
    net.flush('a');
    net.tick('a', 9);
    net.deliver();
    expect(net.node('a').status().leadTransferee).toBe('b');
    net.tick('a');
    expect(net.node('a').status()).toMatchObject({ role: 'leader', leadTransferee: '' });
    expect(net.node('a').propose(bytes('again'))).toEqual({ ok: true, index: 3, term: 1 });
    expect(net.sent.filter(isTimeoutNow)).toEqual([]);
  });

  it('repeating the request does not send a second TimeoutNow; another target replaces the first', () => {
    const net = leaderA();
    net.isolate('b');
    net.node('a').transferLeader('b');
    net.node('a').transferLeader('b');
    expect(net.flush('a').filter(isTimeoutNow)).toEqual([{ type: 'timeoutNow', from: 'a', to: 'b', term: 1 }]);
    net.node('a').transferLeader('c');
    expect(net.node('a').status().leadTransferee).toBe('c');
    expect(net.flush('a').filter(isTimeoutNow)).toEqual([{ type: 'timeoutNow', from: 'a', to: 'c', term: 1 }]);
  });

  it('a learner that receives TimeoutNow does not campaign', () => {
    const p = new Peer('d', ['a', 'b', 'c'], CFG);
    p.node.step({ type: 'timeoutNow', from: 'a', to: 'd', term: 1 });
    expect(p.flush()).toEqual([]);
    expect(p.status).toMatchObject({ role: 'follower', term: 1 });
  });

  it('a target that ignored TimeoutNow before applying its promotion gets it again with the next heartbeat', () => {
    const net = new RawNet(ABCD, {}, { ...CFG, config: { ...CFG.config, lazyCommit: true } });
    net.elect('a');
    net.deliver();
    net.tick('a');
    net.deliver();
    expect(net.node('d').status().commit).toBe(1);
    // d is promoted; with lazyCommit it has the entry but not yet its commit.
    expect(net.node('a').proposeConfChange({ type: 'addVoter', node: 'd' })).toMatchObject({ ok: true, index: 2 });
    net.flush('a');
    net.deliver();
    expect(net.node('a').status().conf.voters).toContain('d');
    expect(net.node('d').status().conf.voters).not.toContain('d');
    net.node('a').transferLeader('d');
    net.flush('a');
    net.deliver();
    expect(net.node('d').status().role).toBe('follower');
    // The heartbeat tells d the commit, d applies its promotion, and its ack brings TimeoutNow again.
    net.tick('a');
    net.deliver();
    expect(net.node('d').status()).toMatchObject({ role: 'leader', term: 2 });
  });

  it('through the driver in a cluster: leadership moves and writes continue at the new leader', () => {
    const c = new Cluster(['a', 'b', 'c'], { seed: 19 });
    const l = c.elect();
    expect(c.propose(l, 'before')?.status).toBe('applied');
    const target = ['a', 'b', 'c'].find((id) => id !== l) as string;
    const term = c.node(l).driver.status().term;
    c.node(l).driver.transferLeader(target);
    c.deliver();
    expect(c.leader()).toBe(target);
    expect(c.node(target).driver.status().term).toBe(term + 1);
    expect(c.propose(target, 'after')?.status).toBe('applied');
    c.tickAll(2);
    for (const n of c.nodes.values()) expect(n.sm.log).toEqual(['before', 'after']);
  });
});
