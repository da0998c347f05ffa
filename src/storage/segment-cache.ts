import type { Index } from '../raft/index.ts';
import { type Segment, segmentEnd } from './log-segment.ts';

/** Per-entry bytes counted beyond the data: the Entry object and its array slot. */
const ENTRY_OVERHEAD_BYTES = 64;

interface Held {
  readonly seg: Segment;
  readonly bytes: number;
  used: number;
}

/**
 * The segments most recently written or decoded, so that the leader's reads
 * of recent entries (term(prevIndex) and entries(next, last + 1) on every
 * append) skip SQLite and msgpack. Bounded by bytes and by count; the least
 * recently used goes first.
 *
 * Invariant: held segments never overlap, sorted by start. The store keeps
 * them equal to the rows: it drops what a truncation, compaction or
 * snapshot replaced before adding what it wrote.
 */
export class SegmentCache {
  private readonly maxBytes: number;
  private readonly maxSegments: number;
  private held: Held[] = [];
  private bytes = 0;
  private clock = 0;

  constructor(maxBytes: number, maxSegments: number) {
    this.maxBytes = maxBytes;
    this.maxSegments = maxSegments;
  }

  /** The segment holding entry `i`, if held. */
  find(i: Index): Segment | undefined {
    // The last held segment starting at or before i.
    const h = this.held[this.insertionPoint(i) - 1];
    if (!h || segmentEnd(h.seg) < i) return undefined;
    h.used = ++this.clock;
    return h.seg;
  }

  add(seg: Segment): void {
    const bytes = seg.entries.reduce((sum, e) => sum + e.data.byteLength + ENTRY_OVERHEAD_BYTES, 0);
    if (bytes > this.maxBytes) return;
    // Overlaps would break find(); the store never adds one, but a stale copy must not win.
    const end = segmentEnd(seg);
    const apart = (h: Held) => segmentEnd(h.seg) < seg.start || h.seg.start > end;
    let at = this.insertionPoint(seg.start);
    // Sorted and apart, so only the neighbours of the insertion point can overlap.
    const before = this.held[at - 1];
    const after = this.held[at];
    if ((before && !apart(before)) || (after && !apart(after))) {
      this.keep(apart);
      at = this.insertionPoint(seg.start);
    }
    this.held.splice(at, 0, { seg, bytes, used: ++this.clock });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes || this.held.length > this.maxSegments) this.evictOne();
  }

  /** Where a segment starting at `start` goes: after every held one starting at or before it. */
  private insertionPoint(start: Index): number {
    let lo = 0;
    let hi = this.held.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.held[mid] as Held).seg.start <= start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Forgets every segment holding entry `i` or later (a truncation at i). */
  dropFrom(i: Index): void {
    const last = this.held[this.held.length - 1];
    if (last && segmentEnd(last.seg) >= i) this.keep((h) => segmentEnd(h.seg) < i);
  }

  /** Forgets segments that end at or below `i` (a compaction to i); one straddling i stays. */
  dropThrough(i: Index): void {
    const first = this.held[0];
    if (first && segmentEnd(first.seg) <= i) this.keep((h) => segmentEnd(h.seg) > i);
  }

  clear(): void {
    this.held = [];
    this.bytes = 0;
  }

  private keep(pred: (h: Held) => boolean): void {
    this.held = this.held.filter(pred);
    this.bytes = this.held.reduce((sum, h) => sum + h.bytes, 0);
  }

  private evictOne(): void {
    let lru = 0;
    this.held.forEach((h, k) => {
      if (h.used < (this.held[lru] as Held).used) lru = k;
    });
    const [gone] = this.held.splice(lru, 1);
    if (gone) this.bytes -= gone.bytes;
  }
}
