import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import { Cluster } from './harness.ts';
import { appResp, Peer, type PeerOptions, RawNet, text, voteResp } from './raw.ts';

const S = ['s1', 's2', 's3', 's4', 's5'];
/** One entry per AppendEntries, so the test controls exactly which entries reach whom. */
const ONE: PeerOptions = { config: { maxMsgBytes: 1 } };

describe('Figure 8 / §5.4.2: a leader commits an earlier-term entry only through a current-term one', () => {
  it('counting replicas of an earlier-term entry does not commit it; the current-term no-op does', () => {
    // a was leader of term 2 and left index 2 behind uncommitted; it now leads term 3.
    const a = new Peer('a', ['a', 'b', 'c'], { terms: [1, 2], hard: { term: 2 } });
    a.node.campaign();
    a.flush();
    a.node.step(voteResp('b', 'a', 3));
    a.flush();
    expect(a.status).toMatchObject({ role: 'leader', term: 3, lastIndex: 3, commit: 0 });
    // b acknowledges index 2 (term 2): {a, b} is a majority holding it, yet it must not commit.
    a.node.step(appResp('b', 'a', 3, 2));
    a.flush();
    expect(a.status.commit).toBe(0);
    // Once the term-3 no-op at index 3 is on a majority, both commit together.
    a.node.step(appResp('b', 'a', 3, 3));
    const out = a.flush();
    expect(a.status.commit).toBe(3);
    expect(a.applied.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(out.filter((m) => m.type === 'app').every((m) => m.type === 'app' && m.commit === 3)).toBe(true);
  });

  it('every new leader appends an empty no-op of its term first (§8)', () => {
    const a = new Peer('a', ['a', 'b', 'c'], { terms: [1, 1, 2], hard: { term: 4 } });
    a.node.campaign();
    a.flush();
    a.node.step(voteResp('c', 'a', 5));
    const rd = a.node.ready();
    expect(rd.entries).toEqual([{ index: 4, term: 5, type: 'normal', data: new Uint8Array(0) }]);
  });

  it('in a cluster, the first entry of every leader term is a no-op', () => {
    const c = new Cluster(['a', 'b', 'c'], { seed: 21 });
    for (let round = 0; round < 4; round++) {
      const l = c.elect();
      c.propose(l, `r${round}`);
      c.isolate(l);
      c.tickAll(40);
      c.heal();
      c.tickAll(5);
    }
    const l = c.elect();
    c.propose(l, 'last');
    const log = c.node(l).log;
    const entries = log.entries(log.firstIndex(), log.lastIndex() + 1, Number.POSITIVE_INFINITY);
    const seenTerms = new Set<number>();
    for (const e of entries) {
      if (seenTerms.has(e.term)) continue;
      seenTerms.add(e.term);
      expect(e.data.byteLength).toBe(0);
    }
    expect(seenTerms.size).toBeGreaterThanOrEqual(5);
  });
});

describe('Figure 8 / §5.4.2: the scenario of the paper, step by step', () => {
  /**
   * (a) s1 leads term 1 and puts "x" at index 2 on s1, s2 only.
   * (b) s1 crashes; s5 wins term 2 with s3, s4, s5 and writes its no-op at index 2 (s5 only); s5 crashes.
   * (c) s1 restarts and wins term 3; it replicates index 2 ("x", term 1) to s3 and s4: a majority
   *     {s1, s3, s4} now stores it, but the term-3 no-op at index 3 is on s1 alone.
   */
  function toStepC(): RawNet {
    const net = new RawNet(S, {}, ONE);
    net.elect('s1');
    net.deliver();
    expect(net.peer('s1').status.commit).toBe(1);
    net.propose('s1', 'x');
    net.deliver((m) => m.to === 's2' || m.from === 's2');
    expect(net.peer('s2').terms()).toEqual([1, 1]);
    expect(net.node('s1').status().commit).toBe(1);

    net.isolate('s1');
    net.campaign('s5');
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(net.node('s5').status()).toMatchObject({ role: 'leader', term: 2 });
    net.take();
    expect(net.peer('s5').terms()).toEqual([1, 2]);
    net.heal();
    net.isolate('s5');

    net.restart('s1', ONE);
    net.campaign('s1'); // term 2: s3 and s4 already voted for s5
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(net.node('s1').status()).toMatchObject({ role: 'candidate', term: 2 });
    net.campaign('s1'); // term 3
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(net.node('s1').status()).toMatchObject({ role: 'leader', term: 3, lastIndex: 3 });
    return net;
  }

  /** Lets index 2 reach s3 and s4 but not the no-op at index 3. */
  const onlyIndex2 = (net: RawNet) => (m: Message) =>
    (m.to === 's3' || m.to === 's4' || m.from === 's3' || m.from === 's4') &&
    !(m.type === 'app' && m.entries.some((e) => e.index === 3) && net.node(m.to).status().lastIndex >= 2);

  it('(c) a majority storing the term-1 entry does not commit it', () => {
    const net = toStepC();
    net.deliver(onlyIndex2(net));
    for (const id of ['s1', 's3', 's4']) expect(net.peer(id).terms().slice(0, 2)).toEqual([1, 1]);
    const st = net.node('s1').status();
    expect([st.progress.s3?.match, st.progress.s4?.match]).toEqual([2, 2]);
    expect(st.commit).toBe(1);
    for (const id of S) expect(net.peer(id).applied.map((e) => text(e.data))).not.toContain('x');
  });

  it('(d) so s5 may still win term 4 and replace it everywhere, and no node ever applied it', () => {
    const net = toStepC();
    net.deliver(onlyIndex2(net));
    net.heal();
    net.isolate('s1');
    net.restart('s5', ONE);
    net.campaign('s5'); // term 3: refused, everyone voted for s1
    net.deliver();
    net.campaign('s5'); // term 4: s2, s3, s4 grant (last term 2 beats their 1)
    net.deliver();
    expect(net.node('s5').status()).toMatchObject({ role: 'leader', term: 4, commit: 3 });
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(net.peer(id).terms()).toEqual([1, 2, 4]);
      expect(net.peer(id).applied.map((e) => text(e.data))).not.toContain('x');
    }
  });

  it('(e) once s1 commits its term-3 entry on a majority, index 2 is committed and s5 can no longer win', () => {
    const net = toStepC();
    net.deliver((m) => m.to !== 's2' && m.from !== 's2');
    expect(net.node('s1').status().commit).toBe(3);
    expect(net.peer('s1').applied.map((e) => text(e.data))).toEqual(['', 'x', '']);
    net.heal();
    net.isolate('s1');
    net.restart('s5', ONE);
    for (let i = 0; i < 3; i++) {
      net.campaign('s5');
      net.deliver();
      expect(net.node('s5').status().role).not.toBe('leader');
    }
    // Only s2 (last term 1) grants; s3 and s4 (last term 3) refuse.
    const grants = net.sent.filter((m) => m.type === 'voteResp' && m.to === 's5' && !m.reject && m.term >= 4);
    expect(new Set(grants.map((m) => m.from))).toEqual(new Set(['s2']));
  });
});
