import { DatabaseSync } from 'node:sqlite';
import type { Sql, SqlValue } from '../../src/storage/index.ts';

/** The Sql interface over node:sqlite, so storage tests also run in plain Node. */
export function nodeSql(db = new DatabaseSync(':memory:')): Sql & { db: DatabaseSync } {
  let depth = 0;
  return {
    db,
    exec(query: string, ...params: SqlValue[]) {
      const stmt = db.prepare(query);
      if (/^\s*(select|with|pragma)/i.test(query) || /returning/i.test(query)) {
        return stmt.all(...(params as never[])) as Record<string, SqlValue>[];
      }
      stmt.run(...(params as never[]));
      return [];
    },
    transaction<T>(fn: () => T): T {
      const sp = `sp${depth}`;
      db.exec(`SAVEPOINT ${sp}`);
      depth++;
      try {
        const out = fn();
        depth--;
        db.exec(`RELEASE ${sp}`);
        return out;
      } catch (e) {
        depth--;
        db.exec(`ROLLBACK TO ${sp}`);
        db.exec(`RELEASE ${sp}`);
        throw e;
      }
    },
  };
}
