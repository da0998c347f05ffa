import type { LogStore } from '../driver/interfaces.ts';
import {
  type ConfState,
  type Entry,
  entrySize,
  type HardState,
  type Index,
  type Snapshot,
  type SnapshotMeta,
  type Term,
} from '../raft/index.ts';
import {
  decodeSegment,
  encodeSegment,
  type Segment,
  type SegmentRow,
  segmentEnd,
  segmentOf,
  splitBatch,
} from './log-segment.ts';
import { checkAppend } from './memory-log-store.ts';
import { migrate } from './schema.ts';
import { SegmentCache } from './segment-cache.ts';
import { asNumber, asString, type Sql } from './sql.ts';

/** Decoded segments kept in memory: a few Readies of the busiest leader, far below a DO's 128 MB. */
const CACHE_BYTES_MAX = 4 * 1024 * 1024;
const CACHE_SEGMENTS_MAX = 256;
/** Rows a range read fetches at once aim at this many bytes, so a byte-limited read never pulls in the whole log. */
const PAGE_BYTES_TARGET = 1024 * 1024;
const PAGE_ROWS_MAX = 256;

const SEGMENT_COLUMNS = 'idx, n, term, type, data';

/**
 * The Raft WAL in SQLite (tables raft_state, raft_log, raft_snapshot).
 * raft_log holds one row per segment, the entries of one persist (see
 * log-segment.ts). The hard state, the log bounds and the snapshot
 * metadata are cached in memory (they are small), and so are the last few
 * segments (SegmentCache); older entries are read from SQLite, so memory does
 * not grow with the log.
 *
 * Memory follows the database only after a write's transaction returns. If
 * an enclosing transaction (the node's Ready loop) rolls back afterwards,
 * this instance is stale and must be dropped: the node resets the object.
 *
 * The snapshot's data is not stored here: on a Durable Object the state
 * machine's own tables are the snapshot, so `snapshot().data` is empty and
 * the node streams the tables when a follower needs them.
 */
export class SqliteLogStore implements LogStore {
  private readonly sql: Sql;
  private readonly cache = new SegmentCache(CACHE_BYTES_MAX, CACHE_SEGMENTS_MAX);
  private hard: HardState;
  private snap: SnapshotMeta;
  private last: Index;

  constructor(sql: Sql) {
    this.sql = sql;
    migrate(sql);
    const s = sql.exec('SELECT term, vote, commit_index FROM raft_state WHERE id = 0')[0] ?? {};
    this.hard = { term: asNumber(s.term), vote: asString(s.vote), commit: asNumber(s.commit_index) };
    const m = sql.exec('SELECT idx, term, conf FROM raft_snapshot WHERE id = 0')[0] ?? {};
    this.snap = { index: asNumber(m.idx), term: asNumber(m.term), conf: parseConf(asString(m.conf)) };
    const l = sql.exec('SELECT idx + n - 1 AS last FROM raft_log ORDER BY idx DESC LIMIT 1')[0];
    this.last = l ? asNumber(l.last) : this.snap.index;
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.hard, conf: this.snap.conf };
  }

  firstIndex(): Index {
    return this.snap.index + 1;
  }

  lastIndex(): Index {
    return this.last;
  }

  term(i: Index): Term | undefined {
    if (i === this.snap.index) return this.snap.term;
    if (i < this.snap.index || i > this.last) return undefined;
    const hit = this.cache.find(i);
    if (hit) return hit.entries[i - hit.start]?.term;
    // The row's term column answers for a one-entry row and for a segment's last entry, without reading data.
    const head = this.sql.exec('SELECT idx, n, term FROM raft_log WHERE idx <= ? ORDER BY idx DESC LIMIT 1', i)[0];
    if (!head) return undefined;
    const start = asNumber(head.idx);
    const end = start + asNumber(head.n) - 1;
    if (i > end) return undefined;
    if (i === end) return asNumber(head.term);
    return this.read(start).entries[i - start]?.term;
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) throw new Error(`sqlite log: entries(${lo}) compacted`);
    const end = Math.min(hi, this.last + 1);
    const out: Entry[] = [];
    let bytes = 0;
    for (const seg of this.segments(lo, end)) {
      const from = Math.max(lo, seg.start) - seg.start;
      const to = Math.min(end, segmentEnd(seg) + 1) - seg.start;
      for (let k = from; k < to; k++) {
        const e = seg.entries[k] as Entry;
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
    }
    return out;
  }

  snapshot(): Snapshot {
    return { meta: this.snap, data: new Uint8Array(0) };
  }

  persist(update: {
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    hardState?: HardState | undefined;
  }): void {
    const base = update.snapshot?.meta.index ?? this.snap.index;
    const lastBefore = update.snapshot ? base : this.last;
    checkAppend(update.entries, base + 1, lastBefore);
    const first = update.entries[0];
    const written = splitBatch(update.entries);
    // A new commit index alone is not written: Raft needs only term and vote durable (§5.1), and a
    // restarted node counts everything it applied as committed (CoreStorage) and learns the rest.
    const h = update.hardState;
    const writeHard = h !== undefined && (h.term !== this.hard.term || h.vote !== this.hard.vote);
    let kept: Segment | undefined;
    this.sql.transaction(() => {
      if (update.snapshot) {
        this.sql.exec('DELETE FROM raft_log');
        this.writeSnapshotMeta(update.snapshot.meta);
      }
      if (first && first.index <= lastBefore) kept = this.truncate(first.index);
      for (const seg of written) this.insert(encodeSegment(seg));
      if (h && writeHard) {
        this.sql.exec(
          'UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 0',
          h.term,
          h.vote,
          h.commit,
        );
      }
    });
    if (update.snapshot) {
      this.snap = update.snapshot.meta;
      this.cache.clear();
    }
    if (first) {
      this.cache.dropFrom(first.index);
      if (kept) this.cache.add(kept);
      for (const seg of written) this.cache.add(seg);
    }
    this.last = update.entries[update.entries.length - 1]?.index ?? lastBefore;
    if (h && writeHard) this.hard = h;
  }

  compact(meta: SnapshotMeta, _data: Uint8Array): void {
    if (meta.index <= this.snap.index) return;
    if (meta.index > this.last) throw new Error(`sqlite log: compact ${meta.index} beyond last index`);
    this.sql.transaction(() => {
      // Whole segments only: one straddling meta.index stays, its compacted prefix out of reach below firstIndex.
      this.sql.exec('DELETE FROM raft_log WHERE idx <= ? AND idx + n - 1 <= ?', meta.index, meta.index);
      this.writeSnapshotMeta(meta);
    });
    this.snap = meta;
    this.cache.dropThrough(meta.index);
  }

  /**
   * Deletes entries from `i` on. A segment holding i past its start is
   * rewritten to its prefix (one row update) and returned.
   */
  private truncate(i: Index): Segment | undefined {
    const head = this.sql.exec('SELECT idx, n FROM raft_log WHERE idx <= ? ORDER BY idx DESC LIMIT 1', i)[0];
    this.sql.exec('DELETE FROM raft_log WHERE idx >= ?', i);
    if (!head) return undefined;
    const start = asNumber(head.idx);
    if (start === i || start + asNumber(head.n) - 1 < i) return undefined;
    const prefix = segmentOf(this.read(start).entries.slice(0, i - start));
    const r = encodeSegment(prefix);
    this.sql.exec(
      `UPDATE raft_log SET n = ?, term = ?, type = ?, data = coalesce(?, X'') WHERE idx = ?`,
      r.n,
      r.term,
      r.type,
      r.data,
      r.idx,
    );
    return prefix;
  }

  private insert(r: SegmentRow): void {
    this.sql.exec(
      // coalesce: node:sqlite binds some empty arrays (TextEncoder's) as NULL; the column wants the empty blob.
      `INSERT INTO raft_log (${SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, coalesce(?, X''))`,
      r.idx,
      r.n,
      r.term,
      r.type,
      r.data,
    );
  }

  /** The segment starting at `start`, from the cache or decoded (and then cached). */
  private read(start: Index): Segment {
    const hit = this.cache.find(start);
    if (hit?.start === start) return hit;
    const row = this.sql.exec(`SELECT ${SEGMENT_COLUMNS} FROM raft_log WHERE idx = ?`, start)[0];
    if (!row) throw new Error(`sqlite log: no segment at ${start}`);
    const seg = decodeSegment(row);
    this.cache.add(seg);
    return seg;
  }

  /**
   * The segments holding [lo, hi), in order: from the cache where it has
   * them, else from SQLite a page of rows at a time, each decoded only when
   * the caller gets to it. Packed segments read here are cached; one-entry
   * rows are not (rereading one is as cheap as a cache entry, and a long
   * catch-up scan must not push out the recent segments).
   */
  private *segments(lo: Index, hi: Index): Generator<Segment> {
    let next = lo;
    let page = 4;
    while (next < hi) {
      const hit = this.cache.find(next);
      if (hit) {
        yield hit;
        next = segmentEnd(hit) + 1;
        continue;
      }
      // From the row holding `next` (it may start before it) up to hi.
      const rows = this.sql.exec(
        `SELECT ${SEGMENT_COLUMNS} FROM raft_log
         WHERE idx >= (SELECT max(idx) FROM raft_log WHERE idx <= ?) AND idx < ? ORDER BY idx LIMIT ?`,
        next,
        hi,
        page,
      );
      let pageBytes = 0;
      for (const row of rows) {
        const start = asNumber(row.idx);
        const end = start + asNumber(row.n) - 1;
        if (start > next || end < next) throw new Error(`sqlite log: segment ${start}..${end} where ${next} was due`);
        let seg = this.cache.find(start);
        if (seg?.start !== start) {
          seg = decodeSegment(row);
          if (seg.entries.length > 1) this.cache.add(seg);
        }
        pageBytes += seg.entries.reduce((sum, e) => sum + e.data.byteLength, 0);
        yield seg;
        next = end + 1;
      }
      if (rows.length < page) return;
      page = Math.max(1, Math.min(PAGE_ROWS_MAX, Math.floor(PAGE_BYTES_TARGET / Math.max(1, pageBytes / rows.length))));
    }
  }

  private writeSnapshotMeta(meta: SnapshotMeta): void {
    this.sql.exec(
      'UPDATE raft_snapshot SET idx = ?, term = ?, conf = ? WHERE id = 0',
      meta.index,
      meta.term,
      JSON.stringify(meta.conf),
    );
  }
}

function parseConf(text: string): ConfState {
  try {
    const v = JSON.parse(text) as { voters?: unknown; learners?: unknown };
    const ids = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
    return { voters: ids(v.voters), learners: ids(v.learners) };
  } catch {
    return { voters: [], learners: [] };
  }
}
