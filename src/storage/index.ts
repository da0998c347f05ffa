export { MemoryLogStore } from './memory-log-store.ts';
export { migrate, SCHEMA_VERSION } from './schema.ts';
export { asBytes, asNumber, asString, type Sql, type SqlRow, type SqlValue } from './sql.ts';
export { SqliteKvTable } from './sqlite-kv-table.ts';
export { SqliteLogStore } from './sqlite-log-store.ts';
