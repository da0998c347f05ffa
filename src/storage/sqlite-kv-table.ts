import { packCompact, unpack } from '../codec/msgpack.ts';
import {
  EMPTY_META,
  type EventPosition,
  type KeyValue,
  type KvEvent,
  type KvMeta,
  type KvTable,
  type Lease,
  type RequestRecord,
} from '../kv/index.ts';
import { KvRowCache } from './kv-row-cache.ts';
import { migrate, NO_LEASE } from './schema.ts';
import { asBytes, asNumber, asString, type Sql, type SqlRow } from './sql.ts';
import { SqliteHistory } from './sqlite-history.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Rows kept in memory (KvRowCache): the hot keys of a metadata store, far below a DO's 128 MB. */
const ROW_CACHE_BYTES_MAX = 8 * 1024 * 1024;
const ROW_CACHE_ROWS_MAX = 16_384;

/**
 * The state machine's table in the node's SQLite database (tables kv,
 * kv_meta, kv_request, kv_history, kv_lease). Keys are stored as BLOBs of
 * their UTF-8 bytes, so SQLite's memcmp order is the order compareKeys
 * defines. A record's lease is its `lease` column, 0 for none. The meta row
 * is cached in memory: the state machine reads it on every call; so are the
 * hot rows (KvRowCache: every write to a key first reads it). The history
 * (kv_history) is SqliteHistory's.
 *
 * Empty byte arrays may bind as NULL (node:sqlite does for some), so empty
 * values go through coalesce(?, X'') and empty bounds are written as literals.
 */
export class SqliteKvTable implements KvTable {
  private readonly sql: Sql;
  private readonly history: SqliteHistory;
  private cachedMeta: KvMeta | undefined;
  private readonly rows = new KvRowCache(ROW_CACHE_BYTES_MAX, ROW_CACHE_ROWS_MAX);

  constructor(sql: Sql) {
    this.sql = sql;
    migrate(sql);
    this.history = new SqliteHistory(sql);
  }

  get(key: string): KeyValue | undefined {
    const hit = this.rows.get(key);
    if (hit) return hit;
    const row = this.sql.exec('SELECT * FROM kv WHERE key = ?', enc.encode(key))[0];
    if (!row) return undefined;
    const kv = toKv(row);
    this.rows.set(kv);
    return kv;
  }

  put(kv: KeyValue): void {
    this.sql.exec(
      // coalesce: node:sqlite binds some empty Uint8Arrays (e.g. TextEncoder's) as NULL.
      `INSERT OR REPLACE INTO kv (key, value, create_revision, mod_revision, version, lease)
       VALUES (?, coalesce(?, X''), ?, ?, ?, ?)`,
      enc.encode(kv.key),
      kv.value,
      kv.createRevision,
      kv.modRevision,
      kv.version,
      kv.lease ?? NO_LEASE,
    );
    this.rows.set(kv);
  }

  delete(key: string): boolean {
    this.rows.delete(key);
    return this.sql.exec('DELETE FROM kv WHERE key = ? RETURNING key', enc.encode(key)).length > 0;
  }

  range(start: string, end: string | undefined, limit?: number): KeyValue[] {
    const [where, params] = interval(start, end);
    return this.sql.exec(`SELECT * FROM kv WHERE ${where} ORDER BY key LIMIT ?`, ...params, limit ?? -1).map(toKv);
  }

  count(start: string, end: string | undefined): number {
    const [where, params] = interval(start, end);
    return asNumber(this.sql.exec(`SELECT count(*) AS n FROM kv WHERE ${where}`, ...params)[0]?.n);
  }

  meta(): KvMeta {
    if (this.cachedMeta) return this.cachedMeta;
    const row = this.sql.exec(`SELECT value FROM kv_meta WHERE name = 'state'`)[0];
    this.cachedMeta = row ? toMeta(unpack(asBytes(row.value))) : EMPTY_META;
    return this.cachedMeta;
  }

  /** Forgets what is cached (the meta row, hot rows), after something else rewrote the tables (a snapshot install). */
  reload(): void {
    this.cachedMeta = undefined;
    this.rows.clear();
  }

  setMeta(meta: KvMeta): void {
    this.sql.exec(`INSERT OR REPLACE INTO kv_meta (name, value) VALUES ('state', ?)`, packCompact({ m: meta }));
    this.cachedMeta = meta;
  }

  getRequest(id: string): RequestRecord | undefined {
    const row = this.sql.exec('SELECT * FROM kv_request WHERE id = ?', id)[0];
    return row ? toRequest(row) : undefined;
  }

  putRequest(r: RequestRecord): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO kv_request (id, idx, revision, fingerprint, result) VALUES (?, ?, ?, ?, coalesce(?, X''))`,
      r.id,
      r.index,
      r.revision,
      r.fingerprint,
      r.result,
    );
  }

  deleteRequest(id: string): void {
    this.sql.exec('DELETE FROM kv_request WHERE id = ?', id);
  }

  oldestRequest(): RequestRecord | undefined {
    const row = this.sql.exec('SELECT * FROM kv_request ORDER BY idx LIMIT 1')[0];
    return row ? toRequest(row) : undefined;
  }

  requestCount(): number {
    return asNumber(this.sql.exec('SELECT count(*) AS n FROM kv_request')[0]?.n);
  }

  requests(): RequestRecord[] {
    return this.sql.exec('SELECT * FROM kv_request ORDER BY idx').map(toRequest);
  }

  appendEvents(events: readonly KvEvent[]): void {
    this.history.append(events);
  }

  events(after: EventPosition, limit: number): KvEvent[] {
    return this.history.events(after, limit);
  }

  compactEvents(revision: number): void {
    this.history.compact(revision);
  }

  getLease(id: number): Lease | undefined {
    const row = this.sql.exec('SELECT * FROM kv_lease WHERE id = ?', id)[0];
    return row ? toLease(row) : undefined;
  }

  putLease(lease: Lease): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO kv_lease (id, ttl, remaining) VALUES (?, ?, ?)',
      lease.id,
      lease.ttl,
      lease.remaining,
    );
  }

  deleteLease(id: number): void {
    this.sql.exec('DELETE FROM kv_lease WHERE id = ?', id);
  }

  leases(after = 0, limit?: number): Lease[] {
    return this.sql.exec('SELECT * FROM kv_lease WHERE id > ? ORDER BY id LIMIT ?', after, limit ?? -1).map(toLease);
  }

  leaseKeys(id: number, limit?: number): string[] {
    // `lease != 0` repeats the partial index's condition, so the planner may use it (it cannot tell that ? != 0).
    return this.sql
      .exec('SELECT key FROM kv WHERE lease = ? AND lease != 0 ORDER BY key LIMIT ?', id, limit ?? -1)
      .map((row) => dec.decode(asBytes(row.key)));
  }

  clear(): void {
    this.sql.exec('DELETE FROM kv');
    this.sql.exec('DELETE FROM kv_request');
    this.sql.exec('DELETE FROM kv_lease');
    this.history.clear();
    this.sql.exec(`DELETE FROM kv_meta WHERE name = 'state'`);
    this.cachedMeta = EMPTY_META;
    this.rows.clear();
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.sql.transaction(fn);
    } catch (e) {
      // A rolled-back transaction may have cached meta and rows that are no longer stored.
      this.reload();
      throw e;
    }
  }
}

/**
 * The stored meta row. Rows written before schema v5 have no compaction
 * point: their store kept no history, so it begins after their revision
 * (reads and watches at an older revision answer `compacted`, never a
 * made-up past).
 */
function toMeta(raw: unknown): KvMeta {
  const { m } = raw as { m: Partial<KvMeta> };
  const revision = m.revision ?? 0;
  return {
    revision,
    applied: m.applied ?? 0,
    conf: m.conf ?? undefined,
    compacted: m.compacted ?? revision + 1,
  };
}

/** SQL for start <= key < end; an empty bound is written as a literal, since an empty Uint8Array may bind as NULL. */
function interval(start: string, end: string | undefined): [string, Uint8Array[]] {
  const lower = start === '' ? `key >= X''` : 'key >= ?';
  const upper = end === undefined ? '' : end === '' ? ` AND key < X''` : ' AND key < ?';
  const params = [start, end].filter((k): k is string => k !== undefined && k !== '').map((k) => enc.encode(k));
  return [lower + upper, params];
}

function toKv(row: SqlRow): KeyValue {
  const lease = asNumber(row.lease);
  return {
    key: dec.decode(asBytes(row.key)),
    value: asBytes(row.value),
    createRevision: asNumber(row.create_revision),
    modRevision: asNumber(row.mod_revision),
    version: asNumber(row.version),
    ...(lease === NO_LEASE ? {} : { lease }),
  };
}

function toLease(row: SqlRow): Lease {
  return { id: asNumber(row.id), ttl: asNumber(row.ttl), remaining: asNumber(row.remaining) };
}

function toRequest(row: SqlRow): RequestRecord {
  return {
    id: asString(row.id),
    index: asNumber(row.idx),
    revision: asNumber(row.revision),
    fingerprint: asNumber(row.fingerprint),
    result: asBytes(row.result),
  };
}
