export { MemoryLogStore } from './memory-log-store.ts';
export { migrate, SCHEMA_VERSION } from './schema.ts';
export {
  type Chunk,
  type ChunkCursor,
  decodeSnapshotRef,
  type ExportInfo,
  encodeSnapshotRef,
  type HistKey,
  type HistRow,
  type ImportPoint,
  type KvRow,
  type LeaseRow,
  type RequestRow,
  SnapshotTables,
  START,
  type StageResult,
} from './snapshot-tables.ts';
export { asBytes, asNumber, asString, type Sql, type SqlRow, type SqlValue } from './sql.ts';
export { SqliteKvStateMachine } from './sqlite-kv-state-machine.ts';
export { SqliteKvTable } from './sqlite-kv-table.ts';
export { SqliteLogStore } from './sqlite-log-store.ts';
