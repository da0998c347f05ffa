import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { Driver } from '../../src/driver/index.ts';
import { MemoryLogStore, SqliteLogStore } from '../../src/storage/index.ts';
import { ListMachine, seededRng } from '../raft/harness.ts';
import { logStoreSuite } from '../support/log-store-suite.ts';
import { nodeSql } from '../support/node-sql.ts';

logStoreSuite('memory', () => {
  const store = new MemoryLogStore();
  return { store, reopen: () => store };
});

logStoreSuite('sqlite (node:sqlite)', () => {
  const db = new DatabaseSync(':memory:');
  return { store: new SqliteLogStore(nodeSql(db)), reopen: () => new SqliteLogStore(nodeSql(db)) };
});

describe('sqlite log store: the commit index', () => {
  const entries = (lo: number, hi: number, term: number) =>
    Array.from({ length: hi - lo + 1 }, (_, i) => ({
      index: lo + i,
      term,
      type: 'normal' as const,
      data: new TextEncoder().encode(`e${lo + i}`),
    }));

  it('a new commit index alone is not written; one with a new term or vote is', () => {
    const db = new DatabaseSync(':memory:');
    const store = new SqliteLogStore(nodeSql(db));
    store.persist({ entries: entries(1, 3, 1), hardState: { term: 1, vote: 'a', commit: 1 } });
    store.persist({ entries: entries(4, 5, 1), hardState: { term: 1, vote: 'a', commit: 4 } });
    store.persist({ entries: [], hardState: { term: 1, vote: 'a', commit: 5 } });
    expect(new SqliteLogStore(nodeSql(db)).initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 1 });
    store.persist({ entries: [], hardState: { term: 2, vote: '', commit: 5 } });
    expect(new SqliteLogStore(nodeSql(db)).initialState().hardState).toEqual({ term: 2, vote: '', commit: 5 });
  });

  it('a driver restarted on it counts what it applied as committed', () => {
    const db = new DatabaseSync(':memory:');
    const store = new SqliteLogStore(nodeSql(db));
    store.persist({ entries: entries(1, 5, 1), hardState: { term: 1, vote: 'a', commit: 1 } });
    store.persist({ entries: [], hardState: { term: 1, vote: 'a', commit: 5 } });
    const sm = new ListMachine();
    sm.apply(entries(1, 4, 1).map((e) => ({ index: e.index, kind: 'command' as const, data: e.data })));
    const d = new Driver<string>({
      raft: { id: 'a', rng: seededRng(1) },
      log: new SqliteLogStore(nodeSql(db)),
      sm,
      transport: { send: () => {} },
      bootstrap: { voters: ['a', 'b', 'c'], learners: [] },
    });
    expect(d.status()).toMatchObject({ commit: 4, applied: 4, lastIndex: 5 });
  });
});
