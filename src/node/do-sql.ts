import type { Sql, SqlRow, SqlValue } from '../storage/index.ts';

/**
 * The Sql interface over a Durable Object's SQLite storage. Nested
 * `transaction` calls join the outermost `transactionSync`, which is what
 * makes one Ready (persist, apply, applied index) a single atomic write.
 */
export function durableObjectSql(storage: DurableObjectStorage): Sql {
  let depth = 0;
  return {
    exec(query: string, ...params: SqlValue[]): SqlRow[] {
      return storage.sql.exec(query, ...params).toArray() as SqlRow[];
    },
    transaction<T>(fn: () => T): T {
      if (depth > 0) return fn();
      depth++;
      try {
        return storage.transactionSync(fn);
      } finally {
        depth--;
      }
    },
  };
}
