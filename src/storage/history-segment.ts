import { decodeMulti, Encoder } from '@msgpack/msgpack';
import type { EventPosition, KeyValue, KvEvent } from '../kv/index.ts';
import { asBytes, asNumber, type SqlRow } from './sql.ts';

/**
 * How kv_history holds the events (schema v5): one segment per appended
 * batch, the events of one apply, so a batch of B changes costs one row
 * written now and one deleted at compaction instead of B of each (Durable
 * Objects bill rows written, index rows included; the table is WITHOUT ROWID,
 * one b-tree, no secondary index).
 *
 * A segment is keyed by the position of its first event (first_revision,
 * first_seq); `last_revision` is the revision of its last event, so
 * compaction finds whole segments below a point without decoding them. Its
 * `data` is a msgpack stream, one compact array per event (see `encodeEvent`),
 * so a reader decodes events one by one and stops when it has enough.
 *
 * Sizes: a segment is closed before its data passes SEGMENT_BYTES, so it
 * holds many events or a single large one. An event carries its value and
 * its prev record's value (each up to 1 MiB), so a single event can reach
 * ~2 MiB, past a Durable Object's 2 MB row: the data is then cut into parts
 * of at most PART_BYTES, rows (first_revision, first_seq, part 0, 1, ...)
 * whose data, joined in part order, is the segment's.
 */

/** A segment is closed before its data would pass this (unless it is empty: one event of any size). */
export const SEGMENT_BYTES = 1024 * 1024;
/** A row's data never passes this: well under the 2 MB row limit; a max-size event (value + prev) takes two rows. */
export const PART_BYTES = 1536 * 1024;

/** One kv_history row. */
export interface HistoryRow {
  readonly firstRevision: number;
  readonly firstSeq: number;
  readonly part: number;
  readonly lastRevision: number;
  readonly data: Uint8Array;
}

/** A whole segment: its key and its parts' data joined. */
export interface HistorySegment {
  readonly firstRevision: number;
  readonly firstSeq: number;
  readonly lastRevision: number;
  readonly data: Uint8Array;
}

const encoder = new Encoder();
const TYPE_CODE = { put: 0, delete: 1 } as const;
/** Set in an event's type code when the event ends with its records' leases (see encodeEvent). */
const WITH_LEASES = 2;
/** A lease field of a record attached to no lease. */
const NO_LEASE = 0;

/**
 * The rows of one appended batch: its events cut into segments, each cut
 * into parts. Rows come as each segment closes, so a large batch is never
 * held encoded whole.
 */
export function* encodeBatch(events: readonly KvEvent[]): Generator<HistoryRow> {
  let run: { event: KvEvent; bytes: Uint8Array }[] = [];
  let size = 0;
  for (const event of events) {
    const bytes = encoder.encode(encodeEvent(event));
    if (run.length > 0 && size + bytes.byteLength > SEGMENT_BYTES) {
      yield* segmentRows(run);
      run = [];
      size = 0;
    }
    run.push({ event, bytes });
    size += bytes.byteLength;
  }
  if (run.length > 0) yield* segmentRows(run);
}

function segmentRows(run: readonly { event: KvEvent; bytes: Uint8Array }[]): HistoryRow[] {
  const first = run[0]?.event;
  const last = run[run.length - 1]?.event;
  if (!first || !last) throw new Error('history segment: empty');
  const data = join(run.map((r) => r.bytes));
  const rows: HistoryRow[] = [];
  for (let at = 0, part = 0; at < data.byteLength; at += PART_BYTES, part++) {
    rows.push({
      firstRevision: first.revision,
      firstSeq: first.seq,
      part,
      lastRevision: last.revision,
      // A single part is the whole (fresh) buffer; cuts are copied, so no driver sees a view at an offset.
      data: data.byteLength <= PART_BYTES ? data : data.slice(at, at + PART_BYTES),
    });
  }
  return rows;
}

/** Concatenates byte arrays into a fresh buffer. */
function join(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Groups rows read in key order into whole segments (a segment's parts joined in order). */
export function* wholeSegments(rows: readonly HistoryRow[]): Generator<HistorySegment> {
  for (let i = 0; i < rows.length; ) {
    const first = rows[i] as HistoryRow;
    const parts: Uint8Array[] = [];
    for (; i < rows.length; i++) {
      const r = rows[i] as HistoryRow;
      if (r.firstRevision !== first.firstRevision || r.firstSeq !== first.firstSeq) break;
      if (r.part !== parts.length)
        throw new Error(`history segment at ${first.firstRevision}.${first.firstSeq}: part ${parts.length} missing`);
      parts.push(r.data);
    }
    yield {
      firstRevision: first.firstRevision,
      firstSeq: first.firstSeq,
      lastRevision: first.lastRevision,
      data: join(parts),
    };
  }
}

/**
 * One event as a flat array: [type, revision, seq, key, value, create, mod,
 * version], then, if it has a prev record, [value, create, mod, version] of
 * it, and the prev's key only if it differs from the event's (it never does
 * for the state machine's events, but the table hands back what it got).
 * If the record or the prev record has a lease, the type code has
 * WITH_LEASES set and the array ends with [lease, prev's lease] (0: none);
 * an event without one is written as before leases existed.
 */
function encodeEvent(e: KvEvent): unknown[] {
  const { kv, prev } = e;
  // A segment that does not decode would fail every later read of the history: refuse it before it is written.
  const known = e.type === 'put' || e.type === 'delete';
  if (
    !known ||
    !Number.isSafeInteger(e.revision) ||
    !Number.isSafeInteger(e.seq) ||
    !isRecord(kv) ||
    (prev && !isRecord(prev))
  )
    throw new Error(`history: malformed event at ${String(e.revision)}.${String(e.seq)}`);
  const leased = kv.lease !== undefined || prev?.lease !== undefined;
  const out: unknown[] = [
    TYPE_CODE[e.type] | (leased ? WITH_LEASES : 0),
    e.revision,
    e.seq,
    kv.key,
    kv.value,
    kv.createRevision,
    kv.modRevision,
    kv.version,
  ];
  if (prev) {
    out.push(prev.value, prev.createRevision, prev.modRevision, prev.version);
    if (prev.key !== kv.key) out.push(prev.key);
  }
  if (leased) out.push(kv.lease ?? NO_LEASE, prev?.lease ?? NO_LEASE);
  return out;
}

function isRecord(r: KeyValue): boolean {
  return (
    typeof r.key === 'string' &&
    r.value instanceof Uint8Array &&
    typeof r.createRevision === 'number' &&
    typeof r.modRevision === 'number' &&
    typeof r.version === 'number' &&
    (r.lease === undefined || isLeaseId(r.lease))
  );
}

const isLeaseId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * The events of a segment's data, decoded one at a time. Values are copied
 * out of the row's buffer, so an event kept by a caller (a watcher's backlog)
 * does not pin a whole segment in memory.
 */
export function* decodeEvents(s: HistorySegment): Generator<KvEvent> {
  for (const raw of decodeMulti(s.data)) yield decodeEvent(raw, s);
}

function decodeEvent(raw: unknown, s: HistorySegment): KvEvent {
  const bad = () => new Error(`history segment at ${s.firstRevision}.${s.firstSeq}: malformed event`);
  if (!Array.isArray(raw) || ![0, 1, 2, 3].includes(raw[0])) throw bad();
  const code = raw[0] as number;
  const type = code & ~WITH_LEASES;
  const leased = code !== type;
  // The leases, if any, are the last two fields: what comes before is laid out as without them.
  const fields: unknown[] = leased ? raw.slice(0, -2) : raw;
  const [lease, prevLease] = leased ? raw.slice(-2).map((l) => leaseField(l, bad)) : [];
  if (fields.length !== 8 && fields.length !== 12 && fields.length !== 13) throw bad();
  const [, revision, seq, key] = fields;
  if (typeof revision !== 'number' || typeof seq !== 'number' || typeof key !== 'string') throw bad();
  const kv = record(key, fields, 4, lease, bad);
  if (fields.length === 8) {
    // A prev lease without a prev record: not something encodeEvent writes.
    if (prevLease !== undefined) throw bad();
    return { type: type === 0 ? 'put' : 'delete', revision, seq, kv };
  }
  const prevKey = fields.length === 13 ? fields[12] : key;
  if (typeof prevKey !== 'string') throw bad();
  return { type: type === 0 ? 'put' : 'delete', revision, seq, kv, prev: record(prevKey, fields, 8, prevLease, bad) };
}

/** A lease field: a lease id, or 0 for none (undefined). */
function leaseField(raw: unknown, bad: () => Error): number | undefined {
  if (raw === NO_LEASE) return undefined;
  if (!isLeaseId(raw)) throw bad();
  return raw;
}

/** The record whose value, create, mod and version sit at raw[at..at+3], with `lease` (undefined: none). */
function record(key: string, raw: unknown[], at: number, lease: number | undefined, bad: () => Error): KeyValue {
  const [value, createRevision, modRevision, version] = raw.slice(at, at + 4);
  if (
    !(value instanceof Uint8Array) ||
    typeof createRevision !== 'number' ||
    typeof modRevision !== 'number' ||
    typeof version !== 'number'
  )
    throw bad();
  return { key, value: value.slice(), createRevision, modRevision, version, ...(lease === undefined ? {} : { lease }) };
}

/** True if the event at (revision, seq) comes after `p`. */
export function isAfter(e: EventPosition, p: EventPosition): boolean {
  return e.revision > p.revision || (e.revision === p.revision && e.seq > p.seq);
}

/** What an event weighs in a page: its key and values (the bytes a reader holds). */
export function eventBytes(e: KvEvent): number {
  return e.kv.key.length + e.kv.value.byteLength + (e.prev?.value.byteLength ?? 0);
}

/** A kv_history row (any of the kv_history, export and import tables) as read. */
export function toHistoryRow(r: SqlRow): HistoryRow {
  return {
    firstRevision: asNumber(r.first_revision),
    firstSeq: asNumber(r.first_seq),
    part: asNumber(r.part),
    lastRevision: asNumber(r.last_revision),
    data: asBytes(r.data),
  };
}
