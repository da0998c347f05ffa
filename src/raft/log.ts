import type { Storage } from './storage.ts';
import type { Entry, Index, Snapshot, Term } from './types.ts';

/** Bytes an entry counts for in size limits (its data plus a small header). */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 16;
}

/**
 * The node's view of the log: the durable part in `storage`, and an
 * in-memory tail (`unstable`) that a Ready has not yet made durable.
 *
 * Invariants:
 * - unstable entries are contiguous from `offset`; an unstable snapshot, if
 *   any, ends at `offset - 1`;
 * - applied <= applying <= committed <= lastIndex();
 * - entries at or below `committed` never change (Log Matching, §5.3).
 */
export class RaftLog {
  private unstableEntries: Entry[] = [];
  private unstableSnapshot: Snapshot | undefined;
  private offset: Index;
  committed: Index;
  /** The last index handed to the application in a Ready. */
  applying: Index;
  /** The last index the application has applied (advanced). */
  applied: Index;

  readonly storage: Storage;

  constructor(storage: Storage, commit: Index, applied: Index) {
    this.storage = storage;
    this.offset = storage.lastIndex() + 1;
    const first = storage.firstIndex() - 1;
    this.committed = Math.max(commit, first);
    this.applied = Math.max(applied, first);
    this.applying = this.applied;
    if (this.applied > this.committed) throw new Error(`log: applied ${applied} beyond commit ${commit}`);
  }

  /** How many entries are held in memory (not yet durable): the log's only in-memory entries. */
  unstableCount(): number {
    return this.unstableEntries.length;
  }

  firstIndex(): Index {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): Index {
    if (this.unstableEntries.length > 0) return this.offset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  lastTerm(): Term {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of entry `i`, or undefined when compacted or beyond the last index. */
  term(i: Index): Term | undefined {
    if (i >= this.offset) {
      const e = this.unstableEntries[i - this.offset];
      return e?.term;
    }
    if (this.unstableSnapshot) {
      return i === this.unstableSnapshot.meta.index ? this.unstableSnapshot.meta.term : undefined;
    }
    if (i === 0) return 0;
    return this.storage.term(i);
  }

  matchTerm(i: Index, t: Term): boolean {
    return this.term(i) === t;
  }

  /** Whether a log ending at (index, term) is strictly newer than ours (§5.4.1's order). */
  isNewer(index: Index, term: Term): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index > this.lastIndex());
  }

  /** Raft's up-to-date check (§5.4.1): is a log ending at (index, term) at least as new as ours? */
  isUpToDate(index: Index, term: Term): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /** Entries in [lo, hi), at most `maxBytes` (at least one). Requires firstIndex() <= lo. */
  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new Error(`log: entries(${lo}) compacted`);
    const out: Entry[] = [];
    let bytes = 0;
    const stableHi = Math.min(hi, this.offset);
    if (lo < stableHi) {
      for (const e of this.storage.entries(lo, stableHi, maxBytes)) {
        bytes += entrySize(e);
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(e);
      }
      if (out.length < stableHi - lo) return out; // storage hit the byte limit
    }
    for (let i = Math.max(lo, this.offset); i < hi; i++) {
      const e = this.unstableEntries[i - this.offset];
      if (!e) break;
      bytes += entrySize(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** The leader appends its own entries (already numbered from lastIndex()+1). */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0] as Entry;
    if (first.index <= this.committed)
      throw new Error(`log: append at ${first.index} would overwrite commit ${this.committed}`);
    this.truncateAndAppend(ents);
  }

  /**
   * A follower's AppendEntries consistency check and append (§5.3, Figure 2
   * "Receiver implementation" 2-5). Returns the index of the last new entry,
   * or undefined when the log does not contain (prevIndex, prevTerm).
   */
  maybeAppend(prevIndex: Index, prevTerm: Term, commit: Index, ents: readonly Entry[]): Index | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed)
        throw new Error(`log: entry ${conflict} conflicts with committed ${this.committed}`);
      this.truncateAndAppend(ents.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** The first entry of `ents` that is missing or has another term here, or 0. */
  private findConflict(ents: readonly Entry[]): Index {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (or the first
   * unknown one): where a leader whose log has `term` at `index` should probe
   * next. Used on both sides of the conflict hint.
   */
  findConflictByTerm(index: Index, term: Term): Index {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) return i;
    }
    return 0;
  }

  private truncateAndAppend(ents: readonly Entry[]): void {
    const after = (ents[0] as Entry).index;
    const end = this.offset + this.unstableEntries.length;
    if (after === end) {
      this.unstableEntries.push(...ents);
    } else if (after <= this.offset) {
      // Replaces part of the stable log: the Ready's first entry tells the store to truncate.
      this.offset = after;
      this.unstableEntries = [...ents];
    } else {
      this.unstableEntries = [...this.unstableEntries.slice(0, after - this.offset), ...ents];
    }
  }

  commitTo(index: Index): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw new Error(`log: commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Install a snapshot received from the leader: the whole log is replaced by it. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.applying = snapshot.meta.index;
    this.offset = snapshot.meta.index + 1;
    this.unstableEntries = [];
    this.unstableSnapshot = snapshot;
  }

  /** The latest snapshot: the pending one, or the store's. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  unstable(): { entries: readonly Entry[]; snapshot: Snapshot | undefined } {
    return { entries: this.unstableEntries, snapshot: this.unstableSnapshot };
  }

  hasUnstable(): boolean {
    return this.unstableEntries.length > 0 || this.unstableSnapshot !== undefined;
  }

  /** The entries up to (index, term) are now durable. A stale call (the entry was replaced) is ignored. */
  stableTo(index: Index, term: Term): void {
    if (index < this.offset || this.term(index) !== term) return;
    this.unstableEntries = this.unstableEntries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: Index): void {
    if (this.unstableSnapshot?.meta.index === index) this.unstableSnapshot = undefined;
  }

  /** Committed entries not yet handed to the application, at most `maxBytes` (at least one). */
  nextCommitted(maxBytes: number): Entry[] {
    if (this.unstableSnapshot) return []; // the snapshot goes first
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    return lo < hi ? this.entries(lo, hi, maxBytes) : [];
  }

  hasNextCommitted(): boolean {
    return this.unstableSnapshot === undefined && this.committed > this.applying;
  }
}
