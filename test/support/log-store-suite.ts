import { describe, expect, it } from 'vitest';
import type { LogStore } from '../../src/driver/index.ts';
import type { Entry } from '../../src/raft/index.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const entry = (index: number, term: number, data = `e${index}`): Entry => ({
  index,
  term,
  type: 'normal',
  data: bytes(data),
});
const range = (lo: number, hi: number, term: number) =>
  Array.from({ length: hi - lo + 1 }, (_, i) => entry(lo + i, term));

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
