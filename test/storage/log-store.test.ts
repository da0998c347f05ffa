import { DatabaseSync } from 'node:sqlite';
import { MemoryLogStore, SqliteLogStore } from '../../src/storage/index.ts';
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
