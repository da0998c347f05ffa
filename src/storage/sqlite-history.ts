import type { EventPosition, KvEvent } from '../kv/index.ts';
import {
  decodeEvents,
  encodeBatch,
  eventBytes,
  type HistoryRow,
  type HistorySegment,
  isAfter,
  toHistoryRow,
  wholeSegments,
} from './history-segment.ts';
import { asNumber, type Sql } from './sql.ts';

/** A page of events stops before its keys and values would pass this (never with no event). */
const PAGE_BYTES = 1024 * 1024;
/** History rows a read holds at once stay around this (or one segment, if larger). */
const READ_BYTES = 1024 * 1024;
/** Segments one read takes at most: the first read of a call takes a few (a page often needs one), later ones more. */
const FIRST_READ_SEGMENTS = 4;
const READ_SEGMENTS_MAX = 32;

/** A segment's key, (first_revision, first_seq). */
type SegmentKey = readonly [number, number];
const FIRST_SEGMENT: SegmentKey = [Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];

/**
 * The history of SqliteKvTable (KvTable's appendEvents, events and
 * compactEvents) in kv_history: one segment per appended batch, keyed by its
 * first event's position (history-segment.ts). A read seeks to the segment
 * holding its position with one descending primary-key search, then reads
 * forward a bounded number of bytes at a time and decodes only what it
 * returns (and the events before the position in that first segment).
 */
export class SqliteHistory {
  private readonly sql: Sql;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  append(events: readonly KvEvent[]): void {
    if (events.length === 0) return;
    this.sql.transaction(() => {
      // A plain INSERT: a batch that does not come after every kept event fails loudly instead of replacing one.
      for (const r of encodeBatch(events)) insertHistoryRow(this.sql, r);
    });
  }

  events(after: EventPosition, limit: number): KvEvent[] {
    const out: KvEvent[] = [];
    let bytes = 0;
    if (limit <= 0) return out;
    for (const segment of this.segmentsFrom(this.seek(after))) {
      for (const e of decodeEvents(segment)) {
        // Only the first segment read can hold events at or before `after`.
        if (!isAfter(e, after)) continue;
        const size = eventBytes(e);
        if (out.length > 0 && bytes + size > PAGE_BYTES) return out;
        out.push(e);
        bytes += size;
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  compact(revision: number): void {
    this.sql.transaction(() => {
      // Segments are ordered and disjoint, so only the last one starting below `revision` can reach past it.
      const last = this.sql.exec(
        `SELECT first_revision, first_seq, last_revision FROM kv_history WHERE first_revision < ?
         ORDER BY first_revision DESC, first_seq DESC LIMIT 1`,
        revision,
      )[0];
      if (!last) return;
      const key: SegmentKey = [asNumber(last.first_revision), asNumber(last.first_seq)];
      const straddles = asNumber(last.last_revision) >= revision;
      // Whole segments below the point: a range of the primary key, no decoding.
      this.sql.exec(
        `DELETE FROM kv_history WHERE (first_revision, first_seq) ${straddles ? '<' : '<='} (?, ?)`,
        ...key,
      );
      if (straddles) this.rewriteFrom(key, revision);
    });
  }

  clear(): void {
    this.sql.exec('DELETE FROM kv_history');
  }

  /**
   * Where a read after `after` starts: the segment holding `after` (the last
   * one starting at or before it), or the next one if that segment ends
   * before `after`'s revision (its data need not be read at all).
   */
  private seek(after: EventPosition): SegmentKey {
    const r = this.sql.exec(
      `SELECT first_revision, first_seq, last_revision FROM kv_history WHERE (first_revision, first_seq) <= (?, ?)
       ORDER BY first_revision DESC, first_seq DESC LIMIT 1`,
      after.revision,
      after.seq,
    )[0];
    if (!r) return FIRST_SEGMENT;
    const key: SegmentKey = [asNumber(r.first_revision), asNumber(r.first_seq)];
    return asNumber(r.last_revision) < after.revision ? [key[0], key[1] + 1] : key;
  }

  /**
   * The segments from `from` (a key, inclusive) on, whole and in order. Each
   * read first looks at the segments' sizes (length() reads no BLOB) and
   * then fetches about READ_BYTES of them, so memory holds one read however
   * large the rows; the caller stops reading when it has enough.
   */
  private *segmentsFrom(from: SegmentKey): Generator<HistorySegment> {
    let start = from;
    for (let segments = FIRST_READ_SEGMENTS; ; segments = Math.min(2 * segments, READ_SEGMENTS_MAX)) {
      const heads = this.sql.exec(
        `SELECT first_revision, first_seq, sum(length(data)) AS size FROM kv_history
         WHERE (first_revision, first_seq) >= (?, ?)
         GROUP BY first_revision, first_seq ORDER BY first_revision, first_seq LIMIT ?`,
        ...start,
        segments,
      );
      const take = prefixWithin(
        heads.map((h) => asNumber(h.size)),
        READ_BYTES,
      );
      const end = heads[take - 1];
      if (!end) return;
      const endKey: SegmentKey = [asNumber(end.first_revision), asNumber(end.first_seq)];
      const rows = this.sql
        .exec(
          `SELECT * FROM kv_history WHERE (first_revision, first_seq) >= (?, ?) AND (first_revision, first_seq) <= (?, ?)
           ORDER BY first_revision, first_seq, part`,
          ...start,
          ...endKey,
        )
        .map(toHistoryRow);
      yield* wholeSegments(rows);
      if (take === heads.length && heads.length < segments) return;
      start = [endKey[0], endKey[1] + 1];
    }
  }

  /** Replaces the segment at `key` with the same events less those below `revision` (a compaction point inside it). */
  private rewriteFrom(key: SegmentKey, revision: number): void {
    const rows = this.sql
      .exec('SELECT * FROM kv_history WHERE first_revision = ? AND first_seq = ? ORDER BY part', ...key)
      .map(toHistoryRow);
    const kept: KvEvent[] = [];
    for (const s of wholeSegments(rows)) for (const e of decodeEvents(s)) if (e.revision >= revision) kept.push(e);
    this.sql.exec('DELETE FROM kv_history WHERE first_revision = ? AND first_seq = ?', ...key);
    for (const r of encodeBatch(kept)) insertHistoryRow(this.sql, r);
  }
}

/** How many of `sizes`, from the first, fit in `max` bytes: at least one, if there is one. */
function prefixWithin(sizes: readonly number[], max: number): number {
  let n = 0;
  for (let bytes = 0; n < sizes.length; n++) {
    bytes += sizes[n] as number;
    if (n > 0 && bytes > max) break;
  }
  return n;
}

function insertHistoryRow(sql: Sql, r: HistoryRow): void {
  sql.exec(
    'INSERT INTO kv_history (first_revision, first_seq, part, last_revision, data) VALUES (?, ?, ?, ?, ?)',
    r.firstRevision,
    r.firstSeq,
    r.part,
    r.lastRevision,
    r.data,
  );
}
