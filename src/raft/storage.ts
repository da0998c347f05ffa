import type { ConfState, Entry, HardState, Index, Snapshot, Term } from './types.ts';

/**
 * What the core reads of the durable log. Implementations hold every entry
 * from `firstIndex()` to `lastIndex()` that a Ready has asked them to persist;
 * entries before `firstIndex()` are compacted into `snapshot()`.
 *
 * To ensure correctness:
 * - `term(firstIndex() - 1)` must answer (the snapshot's term), so the log
 *   matching check works right after compaction;
 * - nothing returned may change later unless a Ready overwrote it.
 */
export interface Storage {
  /** The persisted hard state and the membership as of the last applied index. */
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries in [lo, hi), at most `maxBytes` of data (always at least one). Requires firstIndex() <= lo. */
  entries(lo: Index, hi: Index, maxBytes: number): Entry[];
  /** The term of entry `i`, or undefined when `i` is compacted (below firstIndex() - 1) or beyond lastIndex(). */
  term(i: Index): Term | undefined;
  /** The first index still in the log (snapshot index + 1). */
  firstIndex(): Index;
  /** The last index persisted (the snapshot index when the log is empty). */
  lastIndex(): Index;
  /** The latest snapshot. */
  snapshot(): Snapshot;
}
