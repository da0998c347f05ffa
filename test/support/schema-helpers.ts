import type { Sql } from '../../src/storage/index.ts';

/** Helpers shared by the schema-upgrade tests on node:sqlite and on a Durable Object's SQLite. */

/** The user tables of a database (not SQLite's or the platform's own). */
export function userTables(sql: Sql): Set<string> {
  return new Set(
    sql
      .exec(`SELECT name FROM sqlite_master WHERE type = 'table'`)
      .map((r) => String(r.name))
      .filter((n) => !n.startsWith('sqlite_') && !n.startsWith('_cf_')),
  );
}

/** The version a database says it is at. */
export function schemaVersion(sql: Sql): number {
  return Number(sql.exec('SELECT version FROM schema_version WHERE id = 0')[0]?.version);
}
