import { decode, encode } from '@msgpack/msgpack';
import { asBytes, asNumber, type Sql } from '../storage/index.ts';

/** The deadlines (ms since the epoch) of a leader's leases, as it saved them when it went quiet in `term`. */
export interface SavedClock {
  readonly term: number;
  readonly deadlines: ReadonlyMap<number, number>;
}

/**
 * Where a quiet leader keeps its lease deadlines (table lease_clock, one
 * row, this node's own: never replicated). A Durable Object may lose its
 * memory while the cluster sleeps; the alarm at the next expiry then wakes a
 * fresh instance, which may reuse these deadlines instead of restarting every
 * lease from its TTL (see LeaseKeeper.promote for when that is safe).
 */
export class LeaseClockStore {
  private readonly sql: Sql;
  private saved: boolean | undefined;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  load(): SavedClock | undefined {
    const row = this.sql.exec('SELECT term, data FROM lease_clock WHERE id = 0')[0];
    if (!row) return undefined;
    try {
      const pairs = decode(asBytes(row.data)) as [number, number][];
      if (!Array.isArray(pairs)) return undefined;
      const deadlines = new Map<number, number>();
      for (const p of pairs) {
        if (!Array.isArray(p) || typeof p[0] !== 'number' || typeof p[1] !== 'number') return undefined;
        deadlines.set(p[0], p[1]);
      }
      return { term: asNumber(row.term), deadlines };
    } catch {
      // Unreadable: as if nothing was saved (every lease then restarts from its TTL, which is never early).
      return undefined;
    }
  }

  save(term: number, deadlines: readonly (readonly [number, number])[]): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO lease_clock (id, term, data) VALUES (0, ?, ?)',
      term,
      encode(deadlines.map(([id, at]) => [id, at])),
    );
    this.saved = true;
  }

  /** Forgets the saved deadlines: from now on this leader may renew leases past them. Writes only if a row may exist. */
  clear(): void {
    if (this.saved === false) return;
    this.sql.exec('DELETE FROM lease_clock');
    this.saved = false;
  }
}
