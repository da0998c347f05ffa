import { describe, expect, it } from 'vitest';
import type { LogStore } from '../../src/driver/index.ts';
import type { Entry } from '../../src/raft/index.ts';
import { entry, range, show } from './log-entries.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

/**
 * The contract every LogStore must keep (Hono's common.case.test pattern):
 * run it against each implementation. `reopen` gives a fresh instance over
 * the same durable state, as after a crash.
 */
export function logStoreSuite(name: string, make: () => { store: LogStore; reopen: () => LogStore }): void {
  describe(`LogStore conformance: ${name}`, () => {
    it('starts empty: first 1, last 0, term(0) = 0, zero hard state', () => {
      const { store } = make();
      expect(store.firstIndex()).toBe(1);
      expect(store.lastIndex()).toBe(0);
      expect(store.term(0)).toBe(0);
      expect(store.term(1)).toBeUndefined();
      expect(store.initialState().hardState).toEqual({ term: 0, vote: '', commit: 0 });
    });

    it('appends entries and the hard state, and keeps them across a reopen', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 5, 1), hardState: { term: 1, vote: 'a', commit: 3 } });
      const again = reopen();
      expect(again.lastIndex()).toBe(5);
      expect(again.term(4)).toBe(1);
      expect(again.entries(2, 4, 1 << 20).map((e) => e.index)).toEqual([2, 3]);
      expect(new TextDecoder().decode(again.entries(5, 6, 1 << 20)[0]?.data)).toBe('e5');
      expect(again.initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 3 });
    });

    it('an append at an existing index truncates it and everything after (§5.3)', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 6, 1) });
      store.persist({ entries: [entry(4, 2, 'new4')] });
      const again = reopen();
      expect(again.lastIndex()).toBe(4);
      expect(again.term(4)).toBe(2);
      expect(again.term(5)).toBeUndefined();
      expect(new TextDecoder().decode(again.entries(4, 5, 1 << 20)[0]?.data)).toBe('new4');
    });

    it('refuses a gap', () => {
      const { store } = make();
      store.persist({ entries: range(1, 2, 1) });
      expect(() => store.persist({ entries: [entry(5, 1)] })).toThrow();
      expect(store.lastIndex()).toBe(2);
    });

    it('entries respects maxBytes but always returns at least one entry', () => {
      const { store } = make();
      store.persist({ entries: range(1, 10, 1) });
      expect(store.entries(1, 11, 1).length).toBe(1);
      expect(store.entries(1, 11, 3 * (2 + 16)).length).toBe(3);
      expect(store.entries(1, 11, 1 << 20).length).toBe(10);
    });

    it('compaction drops entries up to the snapshot and answers term(snapshot index)', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 10, 2) });
      store.compact({ index: 6, term: 2, conf: { voters: ['a', 'b'], learners: [] } }, bytes('snap'));
      const again = reopen();
      expect(again.firstIndex()).toBe(7);
      expect(again.lastIndex()).toBe(10);
      expect(again.term(6)).toBe(2);
      expect(again.term(5)).toBeUndefined();
      expect(again.snapshot().meta).toEqual({ index: 6, term: 2, conf: { voters: ['a', 'b'], learners: [] } });
      expect(() => again.entries(5, 8, 1 << 20)).toThrow();
      expect(again.entries(7, 11, 1 << 20).map((e) => e.index)).toEqual([7, 8, 9, 10]);
    });

    it('persisting a snapshot replaces the whole log', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 4, 1) });
      const meta = { index: 20, term: 3, conf: { voters: ['a'], learners: ['b'] } };
      store.persist({
        snapshot: { meta, data: new Uint8Array(0) },
        entries: [entry(21, 3)],
        hardState: { term: 3, vote: '', commit: 20 },
      });
      const again = reopen();
      expect(again.firstIndex()).toBe(21);
      expect(again.lastIndex()).toBe(21);
      expect(again.term(20)).toBe(3);
      expect(again.term(3)).toBeUndefined();
      expect(again.initialState().conf).toEqual(meta.conf);
    });

    // Stores may keep one persist's entries together (SqliteLogStore writes one row per batch):
    // cutting into a batch, compacting part of one and reading across several must not show it.

    it('an append inside an earlier batch truncates there; reads, warm or after a reopen, see only the new suffix', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 4, 1) });
      store.persist({ entries: range(5, 8, 1) });
      store.persist({ entries: range(9, 12, 1) });
      expect(store.entries(1, 13, 1 << 20).length).toBe(12); // warm whatever a store caches
      expect([store.term(7), store.term(9)]).toEqual([1, 1]);
      store.persist({ entries: [entry(7, 2, 'n7'), entry(8, 2, 'n8'), entry(9, 2, 'n9')] });
      for (const s of [store, reopen()]) {
        expect(s.lastIndex()).toBe(9);
        expect([s.term(6), s.term(7), s.term(9), s.term(10)]).toEqual([1, 2, 2, undefined]);
        expect(show(s.entries(1, 13, 1 << 20))).toEqual([...show(range(1, 6, 1)), '7/2/n7', '8/2/n8', '9/2/n9']);
        expect(show(s.entries(6, 8, 1 << 20))).toEqual(['6/1/e6', '7/2/n7']);
      }
      // Cut again at the first entry of the batch just written, then at the first entry of the log.
      store.persist({ entries: [entry(7, 3, 'm7')] });
      expect(show(store.entries(5, 11, 1 << 20))).toEqual(['5/1/e5', '6/1/e6', '7/3/m7']);
      store.persist({ entries: range(1, 3, 4) });
      for (const s of [store, reopen()]) {
        expect(s.lastIndex()).toBe(3);
        expect(s.term(4)).toBeUndefined();
        expect(show(s.entries(1, 11, 1 << 20))).toEqual(show(range(1, 3, 4)));
      }
    });

    it('compaction inside a batch keeps the rest of it readable, also after a reopen and a later cut', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 10, 2) });
      store.persist({ entries: range(11, 12, 3) });
      expect(store.term(3)).toBe(2);
      const conf = { voters: ['a'], learners: [] };
      store.compact({ index: 4, term: 2, conf }, bytes('snap'));
      for (const s of [store, reopen()]) {
        expect([s.firstIndex(), s.lastIndex()]).toEqual([5, 12]);
        expect([s.term(3), s.term(4), s.term(5), s.term(12)]).toEqual([undefined, 2, 2, 3]);
        expect(() => s.entries(4, 6, 1 << 20)).toThrow();
        expect(show(s.entries(5, 13, 1 << 20))).toEqual([...show(range(5, 10, 2)), ...show(range(11, 12, 3))]);
      }
      // A conflicting append inside the partly compacted batch.
      store.persist({ entries: [entry(6, 5, 'x6')] });
      store.compact({ index: 5, term: 2, conf }, bytes('snap'));
      for (const s of [store, reopen()]) {
        expect([s.firstIndex(), s.lastIndex()]).toEqual([6, 6]);
        expect([s.term(5), s.term(6), s.term(7)]).toEqual([2, 5, undefined]);
        expect(show(s.entries(6, 13, 1 << 20))).toEqual(['6/5/x6']);
      }
      store.compact({ index: 6, term: 5, conf }, bytes('snap'));
      const again = reopen();
      expect([again.firstIndex(), again.lastIndex(), again.term(6)]).toEqual([7, 6, 5]);
      expect(again.entries(7, 9, 1 << 20)).toEqual([]);
    });

    it('entries stops at maxBytes wherever that falls among batches', () => {
      const { store } = make();
      // Data of 4 bytes: each entry counts 4 + 16 = 20 bytes.
      for (const [lo, hi] of [
        [1, 4],
        [5, 8],
        [9, 12],
      ] as const)
        store.persist({ entries: Array.from({ length: hi - lo + 1 }, (_, i) => entry(lo + i, 1, 'dddd')) });
      const idx = (lo: number, hi: number, max: number) => store.entries(lo, hi, max).map((e) => e.index);
      expect(idx(2, 13, 20 * 6)).toEqual([2, 3, 4, 5, 6, 7]);
      expect(idx(2, 13, 20 * 6 + 19)).toEqual([2, 3, 4, 5, 6, 7]);
      expect(idx(3, 13, 20 * 2)).toEqual([3, 4]);
      expect(idx(6, 10, 1 << 20)).toEqual([6, 7, 8, 9]);
      expect(idx(6, 99, 1 << 20)).toEqual([6, 7, 8, 9, 10, 11, 12]);
      expect(idx(7, 8, 0)).toEqual([7]);
      expect(idx(13, 20, 1 << 20)).toEqual([]);
    });

    it('a batch of large entries (past 256 KiB in all, one entry alone past it) reads back whole', () => {
      const { store, reopen } = make();
      const big = (index: number, size: number): Entry => ({
        index,
        term: 1,
        type: index % 7 === 0 ? 'conf' : 'normal',
        data: new Uint8Array(size).fill(index),
      });
      const sizes = Array.from({ length: 30 }, (_, i) => (i === 12 ? 300 * 1024 : i === 20 ? 0 : 30 * 1024));
      const batch = sizes.map((n, i) => big(i + 1, n));
      store.persist({ entries: batch });
      const same = (got: Entry[], want: Entry[]) =>
        expect(got.map((e) => [e.index, e.type, e.data.byteLength, e.data[0]])).toEqual(
          want.map((e) => [e.index, e.type, e.data.byteLength, e.data[0]]),
        );
      for (const s of [store, reopen()]) {
        expect(s.lastIndex()).toBe(30);
        same(s.entries(1, 31, 1 << 30), batch);
        // 8 entries of 30 KiB (+16 each) fit in 250 KiB, a 9th does not.
        same(s.entries(3, 31, 250 * 1024), batch.slice(2, 10));
        same(s.entries(13, 31, 1), batch.slice(12, 13));
      }
      store.persist({ entries: [big(12, 5)] });
      same(reopen().entries(1, 31, 1 << 30), [...batch.slice(0, 11), big(12, 5)]);
    });

    it('a failed persist leaves nothing half-written', () => {
      const { store, reopen } = make();
      store.persist({ entries: range(1, 3, 1), hardState: { term: 1, vote: '', commit: 0 } });
      expect(() =>
        store.persist({ entries: [entry(1, 0), entry(3, 1)], hardState: { term: 9, vote: 'x', commit: 0 } }),
      ).toThrow();
      const again = reopen();
      expect(again.lastIndex()).toBeGreaterThanOrEqual(1);
      expect(again.initialState().hardState.term).toBe(1);
    });
  });
}
