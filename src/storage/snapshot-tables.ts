import { decode, encode } from '@msgpack/msgpack';
import type { HistKey, HistRow, KvRow, LeaseRow, RequestRow } from '../kv/index.ts';
import type { ConfState, Index, Term } from '../raft/index.ts';
import { migrate, NO_LEASE } from './schema.ts';
import { asBytes, asNumber, asString, type Sql, type SqlRow } from './sql.ts';

/**
 * Snapshots of the kv tables that never pass through memory whole (schema v3,
 * history since v5, leases since v6).
 *
 * The leader copies kv, kv_request, kv_history, kv_lease and the kv meta row
 * into export tables in one statement each (SQLite does the copying), at the
 * index the state machine has applied; it then reads the export in key order,
 * a bounded chunk at a time: kv rows, then requests, then history rows, then
 * leases. A follower stages each chunk in import tables and, when the
 * snapshot installs, swaps the import in for kv in the same transaction as
 * the Raft log's reset: atomic, and bounded in memory by one chunk.
 */

// The rows a snapshot travels in are the state machine's snapshot format (src/kv/snapshot.ts).
export type { HistKey, HistRow, KvRow, LeaseRow, RequestRow };

export interface ExportInfo {
  /** Bumped by every export, so a stream can tell its rows were replaced under it. */
  readonly generation: number;
  readonly index: Index;
  readonly term: Term;
  /** The membership as of `index`. */
  readonly conf: ConfState;
  /** The kv meta row (revision, applied, conf, compacted) as of `index`, as stored. */
  readonly meta: Uint8Array;
}

/**
 * Where a stream is: in the kv rows after `afterKey`, the requests after
 * `afterIdx`, the history rows after `after`, the leases after `afterId`, or
 * done.
 */
export type ChunkCursor =
  | { readonly phase: 'kv'; readonly afterKey: Uint8Array | undefined }
  | { readonly phase: 'req'; readonly afterIdx: number }
  | { readonly phase: 'hist'; readonly after: HistKey }
  | { readonly phase: 'lease'; readonly afterId: number }
  | { readonly phase: 'done' };

export const START: ChunkCursor = { phase: 'kv', afterKey: undefined };
const HIST_START: ChunkCursor = {
  phase: 'hist',
  after: [Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
};

const LEASE_START: ChunkCursor = { phase: 'lease', afterId: 0 };

export interface Chunk {
  readonly kv: KvRow[];
  readonly req: RequestRow[];
  readonly hist: HistRow[];
  readonly lease: LeaseRow[];
}

export interface ImportPoint {
  readonly index: Index;
  readonly term: Term;
  readonly meta: Uint8Array;
}

/** The outcome of staging a chunk: taken (or already taken), or out of order (the sender restarts). */
export type StageResult = 'ok' | 'restart';

const ROWS_PER_QUERY = 128;
/** Bytes a row costs on the wire beyond its key and value or data (msgpack headers and integers, generously). */
const ROW_OVERHEAD = 40;

const HIST_COLUMNS = 'first_revision, first_seq, part, last_revision, data';
/** Named, not `*`: a column added by ALTER TABLE comes last, so the twins' column order is not a contract. */
const KV_COLUMNS = 'key, value, create_revision, mod_revision, version, lease';
const LEASE_COLUMNS = 'id, ttl, remaining';

/** Counts a chunk's bytes as rows are added: a row fits if the chunk stays in its bound, or if it is the first. */
class ChunkBudget {
  private bytes = 0;
  private rows = 0;
  private readonly maxBytes: number;
  full = false;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** How many of the rows of `sizes` (in order) fit; takes them. Sets `full` if one did not. */
  take(sizes: readonly number[]): number {
    let n = 0;
    for (const size of sizes) {
      if (this.bytes + size > this.maxBytes && this.rows > 0) {
        this.full = true;
        break;
      }
      this.bytes += size;
      this.rows++;
      n++;
    }
    return n;
  }
}

export class SnapshotTables {
  private readonly sql: Sql;

  constructor(sql: Sql) {
    this.sql = sql;
    migrate(sql);
  }

  exportInfo(): ExportInfo | undefined {
    const r = this.sql.exec('SELECT * FROM snapshot_export WHERE id = 0')[0];
    if (!r) return undefined;
    return {
      generation: asNumber(r.generation),
      index: asNumber(r.idx),
      term: asNumber(r.term),
      conf: JSON.parse(asString(r.conf)) as ConfState,
      meta: asBytes(r.meta),
    };
  }

  /** Copies the kv tables as they are now, which must be the state as of log index `index` (of `term`). */
  exportNow(index: Index, term: Term, conf: ConfState): ExportInfo {
    const meta = asBytes(this.sql.exec(`SELECT value FROM kv_meta WHERE name = 'state'`)[0]?.value);
    const generation = (this.exportInfo()?.generation ?? 0) + 1;
    this.sql.transaction(() => {
      this.sql.exec('DELETE FROM kv_export');
      this.sql.exec('DELETE FROM kv_export_request');
      this.sql.exec('DELETE FROM kv_export_history');
      this.sql.exec('DELETE FROM kv_export_lease');
      this.sql.exec(`INSERT INTO kv_export (${KV_COLUMNS}) SELECT ${KV_COLUMNS} FROM kv`);
      this.sql.exec('INSERT INTO kv_export_request SELECT * FROM kv_request');
      this.sql.exec(`INSERT INTO kv_export_history (${HIST_COLUMNS}) SELECT ${HIST_COLUMNS} FROM kv_history`);
      this.sql.exec(`INSERT INTO kv_export_lease (${LEASE_COLUMNS}) SELECT ${LEASE_COLUMNS} FROM kv_lease`);
      this.sql.exec(
        `INSERT OR REPLACE INTO snapshot_export (id, generation, idx, term, conf, meta) VALUES (0, ?, ?, ?, ?, coalesce(?, X''))`,
        generation,
        index,
        term,
        JSON.stringify(conf),
        meta,
      );
    });
    return { generation, index, term, conf, meta };
  }

  /**
   * The export's rows from `cursor` on, as many as fit in `maxBytes` (but at
   * least one, so a single large row still travels), and where to go on.
   * Each read looks at the rows' sizes first (length() reads no BLOB) and
   * fetches only those that fit, so memory holds one chunk however large
   * the rows.
   */
  readChunk(cursor: ChunkCursor, maxBytes: number): { chunk: Chunk; next: ChunkCursor } {
    const chunk: Chunk = { kv: [], req: [], hist: [], lease: [] };
    const budget = new ChunkBudget(maxBytes);
    let at = cursor;
    while (!budget.full && at.phase !== 'done') {
      if (at.phase === 'kv') at = this.readKv(at.afterKey, budget, chunk.kv);
      else if (at.phase === 'req') at = this.readRequests(at.afterIdx, budget, chunk.req);
      else if (at.phase === 'hist') at = this.readHistory(at.after, budget, chunk.hist);
      else at = this.readLeases(at.afterId, budget, chunk.lease);
    }
    return { chunk, next: at };
  }

  private readKv(after: Uint8Array | undefined, budget: ChunkBudget, out: KvRow[]): ChunkCursor {
    // An empty key may bind as NULL: write it as a literal.
    const where = after === undefined ? '' : after.byteLength === 0 ? `WHERE key > X''` : 'WHERE key > ?';
    const params = after === undefined || after.byteLength === 0 ? [] : [after];
    const sizes = this.sql
      .exec(
        `SELECT length(key) + length(value) AS size FROM kv_export ${where} ORDER BY key LIMIT ?`,
        ...params,
        ROWS_PER_QUERY,
      )
      .map((r) => asNumber(r.size) + ROW_OVERHEAD);
    const n = budget.take(sizes);
    const rows =
      n === 0
        ? []
        : this.sql.exec(`SELECT ${KV_COLUMNS} FROM kv_export ${where} ORDER BY key LIMIT ?`, ...params, n).map(toKvRow);
    out.push(...rows);
    // A short page read to its end means the kv rows are exhausted.
    if (!budget.full && sizes.length < ROWS_PER_QUERY) return { phase: 'req', afterIdx: 0 };
    return { phase: 'kv', afterKey: rows[rows.length - 1]?.[0] ?? after };
  }

  private readRequests(after: number, budget: ChunkBudget, out: RequestRow[]): ChunkCursor {
    const rows = this.sql
      .exec('SELECT * FROM kv_export_request WHERE idx > ? ORDER BY idx LIMIT ?', after, ROWS_PER_QUERY)
      .map(toRequestRow);
    const n = budget.take(rows.map((r) => r[0].length * 3 + r[4].byteLength + ROW_OVERHEAD));
    out.push(...rows.slice(0, n));
    if (!budget.full && rows.length < ROWS_PER_QUERY) return HIST_START;
    return { phase: 'req', afterIdx: rows[n - 1]?.[1] ?? after };
  }

  private readHistory(after: HistKey, budget: ChunkBudget, out: HistRow[]): ChunkCursor {
    const where = 'WHERE (first_revision, first_seq, part) > (?, ?, ?) ORDER BY first_revision, first_seq, part';
    const sizes = this.sql
      .exec(`SELECT length(data) AS size FROM kv_export_history ${where} LIMIT ?`, ...after, ROWS_PER_QUERY)
      .map((r) => asNumber(r.size) + ROW_OVERHEAD);
    const n = budget.take(sizes);
    const rows =
      n === 0
        ? []
        : this.sql.exec(`SELECT ${HIST_COLUMNS} FROM kv_export_history ${where} LIMIT ?`, ...after, n).map(toHistRow);
    out.push(...rows);
    if (!budget.full && sizes.length < ROWS_PER_QUERY) return LEASE_START;
    const last = rows[rows.length - 1];
    return { phase: 'hist', after: last ? [last[0], last[1], last[2]] : after };
  }

  private readLeases(after: number, budget: ChunkBudget, out: LeaseRow[]): ChunkCursor {
    const rows = this.sql
      .exec(`SELECT ${LEASE_COLUMNS} FROM kv_export_lease WHERE id > ? ORDER BY id LIMIT ?`, after, ROWS_PER_QUERY)
      .map(toLeaseRow);
    const n = budget.take(rows.map(() => ROW_OVERHEAD));
    out.push(...rows.slice(0, n));
    if (!budget.full && rows.length < ROWS_PER_QUERY) return { phase: 'done' };
    return { phase: 'lease', afterId: rows[n - 1]?.[0] ?? after };
  }

  /**
   * Stages chunk `seq` of `session`. Chunk 0 starts a new import (dropping any
   * other); a repeated chunk is acknowledged again; a gap asks for a restart.
   * With `point`, this is the last chunk and the import is complete.
   */
  stage(session: string, seq: number, chunk: Chunk, point?: ImportPoint): StageResult {
    return this.sql.transaction(() => {
      if (seq === 0) this.resetImport(session);
      const cur = this.sql.exec('SELECT session, next_seq FROM snapshot_import WHERE id = 0')[0];
      if (!cur || asString(cur.session) !== session) return 'restart';
      const next = asNumber(cur.next_seq);
      if (seq < next) return 'ok';
      if (seq > next) return 'restart';
      for (const [key, value, create, mod, version, lease] of chunk.kv) {
        this.sql.exec(
          `INSERT OR REPLACE INTO kv_import (${KV_COLUMNS}) VALUES (?, coalesce(?, X''), ?, ?, ?, ?)`,
          key,
          value,
          create,
          mod,
          version,
          lease ?? NO_LEASE,
        );
      }
      for (const [id, idx, revision, fingerprint, result] of chunk.req) {
        this.sql.exec(
          `INSERT OR REPLACE INTO kv_import_request (id, idx, revision, fingerprint, result) VALUES (?, ?, ?, ?, coalesce(?, X''))`,
          id,
          idx,
          revision,
          fingerprint,
          result,
        );
      }
      for (const [firstRevision, firstSeq, part, lastRevision, data] of chunk.hist) {
        this.sql.exec(
          `INSERT OR REPLACE INTO kv_import_history (${HIST_COLUMNS}) VALUES (?, ?, ?, ?, coalesce(?, X''))`,
          firstRevision,
          firstSeq,
          part,
          lastRevision,
          data,
        );
      }
      for (const [id, ttl, remaining] of chunk.lease) {
        this.sql.exec(`INSERT OR REPLACE INTO kv_import_lease (${LEASE_COLUMNS}) VALUES (?, ?, ?)`, id, ttl, remaining);
      }
      if (point) {
        this.sql.exec(
          `UPDATE snapshot_import SET next_seq = ?, complete = 1, idx = ?, term = ?, meta = coalesce(?, X'') WHERE id = 0`,
          seq + 1,
          point.index,
          point.term,
          point.meta,
        );
      } else {
        this.sql.exec('UPDATE snapshot_import SET next_seq = ? WHERE id = 0', seq + 1);
      }
      return 'ok';
    });
  }

  /** The complete import of `session`, if there is one. */
  completeImport(session: string): ImportPoint | undefined {
    const r = this.sql.exec('SELECT * FROM snapshot_import WHERE id = 0 AND complete = 1')[0];
    if (!r || asString(r.session) !== session) return undefined;
    return { index: asNumber(r.idx), term: asNumber(r.term), meta: asBytes(r.meta) };
  }

  /**
   * Replaces kv, kv_request, kv_history, kv_lease and the kv meta row with
   * the complete import of `session`. Throws if there is none.
   */
  install(session: string): ImportPoint {
    const point = this.completeImport(session);
    if (!point) throw new Error(`snapshot: no complete import for session ${session}`);
    this.sql.transaction(() => {
      this.sql.exec('DELETE FROM kv');
      this.sql.exec('DELETE FROM kv_request');
      this.sql.exec(`INSERT INTO kv (${KV_COLUMNS}) SELECT ${KV_COLUMNS} FROM kv_import`);
      this.sql.exec('INSERT INTO kv_request SELECT * FROM kv_import_request');
      this.sql.exec('DELETE FROM kv_history');
      this.sql.exec(`INSERT INTO kv_history (${HIST_COLUMNS}) SELECT ${HIST_COLUMNS} FROM kv_import_history`);
      this.sql.exec('DELETE FROM kv_lease');
      this.sql.exec(`INSERT INTO kv_lease (${LEASE_COLUMNS}) SELECT ${LEASE_COLUMNS} FROM kv_import_lease`);
      this.sql.exec(`INSERT OR REPLACE INTO kv_meta (name, value) VALUES ('state', coalesce(?, X''))`, point.meta);
      this.resetImport(undefined);
    });
    return point;
  }

  private resetImport(session: string | undefined): void {
    this.sql.exec('DELETE FROM kv_import');
    this.sql.exec('DELETE FROM kv_import_request');
    this.sql.exec('DELETE FROM kv_import_history');
    this.sql.exec('DELETE FROM kv_import_lease');
    this.sql.exec('DELETE FROM snapshot_import');
    if (session !== undefined) {
      this.sql.exec(
        `INSERT INTO snapshot_import (id, session, next_seq, complete, idx, term, meta) VALUES (0, ?, 0, 0, 0, 0, X'')`,
        session,
      );
    }
  }
}

function toKvRow(r: SqlRow): KvRow {
  const row: KvRow = [
    asBytes(r.key),
    asBytes(r.value),
    asNumber(r.create_revision),
    asNumber(r.mod_revision),
    asNumber(r.version),
  ];
  const lease = asNumber(r.lease);
  if (lease !== NO_LEASE) row.push(lease);
  return row;
}

function toLeaseRow(r: SqlRow): LeaseRow {
  return [asNumber(r.id), asNumber(r.ttl), asNumber(r.remaining)];
}

function toRequestRow(r: SqlRow): RequestRow {
  return [asString(r.id), asNumber(r.idx), asNumber(r.revision), asNumber(r.fingerprint), asBytes(r.result)];
}

function toHistRow(r: SqlRow): HistRow {
  return [
    asNumber(r.first_revision),
    asNumber(r.first_seq),
    asNumber(r.part),
    asNumber(r.last_revision),
    asBytes(r.data),
  ];
}

/** A snapshot's data on a Durable Object: not the state, but which staged import holds it. */
export function encodeSnapshotRef(session: string): Uint8Array {
  return encode({ session });
}

export function decodeSnapshotRef(data: Uint8Array): string | undefined {
  try {
    const v = decode(data) as { session?: unknown } | null;
    return v && typeof v.session === 'string' ? v.session : undefined;
  } catch {
    return undefined;
  }
}
