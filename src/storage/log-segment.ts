import { pack, unpack } from '../codec/msgpack.ts';
import type { Entry, EntryType, Index } from '../raft/index.ts';
import { asBytes, asNumber, type SqlRow } from './sql.ts';

/**
 * How raft_log holds entries (schema v4): one row per segment, a run of
 * consecutive entries that one `persist` wrote. Durable Objects bill rows
 * written, so a Ready of B entries costs one insert now and one delete at
 * compaction, instead of B of each.
 *
 * A row (idx, n, term, type, data):
 * - n = 1: one entry exactly as schema v1-v3 stored it (its term, type code
 *   and raw data), so every row older code wrote is a valid segment;
 * - n > 1: entries idx .. idx+n-1, `data` is msgpack {t: terms, k: type
 *   codes, d: datas}; `term` holds the last entry's term (term() of a
 *   segment's end, the common prevIndex, needs no decoding) and `type` is 0,
 *   unused.
 */

/** A run of consecutive entries. Invariant: entries is non-empty and entries[k].index === start + k. */
export interface Segment {
  readonly start: Index;
  readonly entries: readonly Entry[];
}

/** The row values of one segment, in the column order of raft_log. */
export interface SegmentRow {
  readonly idx: Index;
  readonly n: number;
  readonly term: number;
  readonly type: number;
  readonly data: Uint8Array;
}

/** A packed segment's data stays under this; a larger entry gets a row of its own (DO SQLite caps a row at 2 MB). */
export const SEGMENT_BYTES_MAX = 256 * 1024;

/** What an entry adds to a packed segment beyond its data: msgpack headers of its term, type and length, rounded up. */
const PACKED_OVERHEAD_BYTES = 16;

const TYPE_CODE: Record<EntryType, number> = { normal: 0, conf: 1 };

export function segmentEnd(s: Segment): Index {
  return s.start + s.entries.length - 1;
}

/** Cuts one persisted batch into segments whose data stays under SEGMENT_BYTES_MAX. */
export function splitBatch(entries: readonly Entry[]): Segment[] {
  const out: Segment[] = [];
  let run: Entry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const cost = e.data.byteLength + PACKED_OVERHEAD_BYTES;
    if (run.length > 0 && bytes + cost > SEGMENT_BYTES_MAX) {
      out.push(segmentOf(run));
      run = [];
      bytes = 0;
    }
    run.push(e);
    bytes += cost;
  }
  if (run.length > 0) out.push(segmentOf(run));
  return out;
}

export function segmentOf(entries: readonly Entry[]): Segment {
  const first = entries[0];
  if (!first) throw new Error('log segment: empty');
  return { start: first.index, entries };
}

export function encodeSegment(s: Segment): SegmentRow {
  const [first] = s.entries;
  const last = s.entries[s.entries.length - 1];
  if (!first || !last) throw new Error('log segment: empty');
  // One entry: the legacy row, no packing (cheaper, and what v1-v3 wrote).
  if (s.entries.length === 1)
    return { idx: s.start, n: 1, term: first.term, type: TYPE_CODE[first.type], data: first.data };
  const data = pack({
    t: s.entries.map((e) => e.term),
    k: s.entries.map((e) => TYPE_CODE[e.type]),
    d: s.entries.map((e) => e.data),
  });
  return { idx: s.start, n: s.entries.length, term: last.term, type: 0, data };
}

/** Decodes a raft_log row (idx, n, term, type, data); the entries' data are views into the row's buffer. */
export function decodeSegment(row: SqlRow): Segment {
  const start = asNumber(row.idx);
  const n = asNumber(row.n);
  if (n === 1)
    return {
      start,
      entries: [{ index: start, term: asNumber(row.term), type: typeOf(row.type), data: asBytes(row.data) }],
    };
  const v = unpack(asBytes(row.data)) as { t?: unknown; k?: unknown; d?: unknown };
  const { t, k, d } = v ?? {};
  if (!Array.isArray(t) || !Array.isArray(k) || !Array.isArray(d) || t.length !== n || k.length !== n || d.length !== n)
    throw new Error(`log segment at ${start}: malformed (expected ${n} entries)`);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const data = d[i];
    if (!(data instanceof Uint8Array) || typeof t[i] !== 'number')
      throw new Error(`log segment at ${start}: malformed entry ${start + i}`);
    entries.push({ index: start + i, term: t[i] as number, type: typeOf(k[i]), data });
  }
  return { start, entries };
}

function typeOf(code: unknown): EntryType {
  return code === 1 ? 'conf' : 'normal';
}
