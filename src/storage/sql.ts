/** A value SQLite stores. */
export type SqlValue = string | number | null | ArrayBuffer | Uint8Array;

export type SqlRow = Record<string, SqlValue>;

/**
 * The small synchronous SQL surface the storage and kv layers need. A
 * Durable Object provides it with `ctx.storage.sql` and `transactionSync`
 * (see `durableObjectSql`); tests may provide it with node:sqlite.
 */
export interface Sql {
  /** Runs one statement; returns its rows. */
  exec(query: string, ...params: SqlValue[]): SqlRow[];
  /**
   * Runs `fn` atomically: all of its statements commit, or none do (and the
   * error propagates). A nested call may join the outermost transaction (a
   * Durable Object's does, see `durableObjectSql`): its error must propagate
   * out of the outermost one, which then undoes everything; caught inside,
   * it undoes nothing.
   */
  transaction<T>(fn: () => T): T;
}

/** Rows written so far, for the cost figures of the benchmark (SQLite's own count where the runtime has one). */
export interface SqlStats {
  rowsWritten(): number;
}

/** Reads a BLOB column as a Uint8Array, whatever shape the driver returns it in. */
export function asBytes(v: SqlValue | undefined): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return new Uint8Array(0);
}

export function asNumber(v: SqlValue | undefined): number {
  return typeof v === 'number' ? v : Number(v ?? 0);
}

export function asString(v: SqlValue | undefined): string {
  return typeof v === 'string' ? v : '';
}
