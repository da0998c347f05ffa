import { describe, expect, it } from 'vitest';
import { ofType, RawNet } from './raw.ts';

/**
 * Figure 7 of the Raft paper: the leader of term 8 and six possible follower
 * logs. (a)-(b) miss entries, (c)-(d) have extra uncommitted entries,
 * (e)-(f) both. Here every log starts persisted with term 7 as current term.
 */
const LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};
/** Rejected AppendEntries per follower: with the conflict hint, at most one each. */
const REJECTIONS: Record<string, [number, number, number][]> = {
  a: [[10, 9, 6]],
  b: [[10, 4, 4]],
  c: [],
  d: [],
  e: [[10, 7, 4]],
  f: [[10, 10, 3]],
};
const IDS = ['L', 'a', 'b', 'c', 'd', 'e', 'f'];

function figure7(): RawNet {
  const opts: Record<string, { terms: number[]; hard: { term: number } }> = { L: { terms: LEADER, hard: { term: 7 } } };
  for (const [id, terms] of Object.entries(FOLLOWERS)) opts[id] = { terms, hard: { term: 7 } };
  return new RawNet(IDS, opts);
}

describe('Figure 7 / §5.3: every follower log converges to the leader of term 8', () => {
  it('the leader wins term 8 with the votes of (a), (b), (e), (f); (c) and (d) refuse (§5.4.1)', () => {
    const net = figure7();
    net.campaign('L');
    net.deliverOnly((m) => m.type === 'vote' || m.type === 'voteResp');
    expect(net.node('L').status()).toMatchObject({ role: 'leader', term: 8 });
    const answers = ofType(net.sent, 'voteResp').map((m) => `${m.from}:${m.reject ? 'no' : 'yes'}`);
    expect(answers.sort()).toEqual(['a:yes', 'b:yes', 'c:no', 'd:no', 'e:yes', 'f:yes']);
  });

  for (const id of Object.keys(FOLLOWERS)) {
    it(`follower (${id}) ends with exactly the leader's log, committed and applied`, () => {
      const net = figure7();
      net.elect('L');
      net.deliver();
      const want = [...LEADER, 8];
      expect(net.peer(id).terms()).toEqual(want);
      expect(net.peer(id).log()).toEqual(net.peer('L').log());
      expect(net.node('L').status().commit).toBe(11);
      // A follower that was probing may learn the commit index only from the next heartbeat
      // (see the skipped BUG test in replication.test.ts).
      net.node('L').heartbeat();
      net.flush('L');
      net.deliver();
      expect(net.node(id).status()).toMatchObject({ term: 8, leader: 'L', commit: 11, lastIndex: 11 });
      expect(net.peer(id).applied.map((e) => e.term)).toEqual(want);
      const rejected = ofType(net.sent, 'appResp', 'L')
        .filter((m) => m.from === id && m.reject)
        .map((m) => [m.index, m.hintIndex, m.hintTerm]);
      expect(rejected).toEqual(REJECTIONS[id]);
    });
  }

  it('the same holds when every follower is brought up to date at once, including the extra entries of (c) and (d) being discarded', () => {
    const net = figure7();
    net.elect('L');
    net.deliver();
    for (const id of Object.keys(FOLLOWERS)) expect(net.peer(id).terms()).toEqual(net.peer('L').terms());
    // (d)'s term-7 entries never applied anywhere.
    for (const id of IDS) expect(net.peer(id).applied.some((e) => e.term === 7)).toBe(false);
  });
});
