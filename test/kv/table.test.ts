import { MemoryKvTable } from '../../src/kv/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';
import { kvTableSuite } from './table-suite.ts';

kvTableSuite('memory', () => new MemoryKvTable());
kvTableSuite('sqlite reference (node:sqlite)', () => new SqliteKvTable(nodeSql()));
