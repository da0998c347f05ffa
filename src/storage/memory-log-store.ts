import type { LogStore } from '../driver/interfaces.ts';
import type { ConfState, Entry, HardState, Index, Snapshot, SnapshotMeta, Term } from '../raft/index.ts';

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/**
 * The log store of the simulator and of unit tests: everything lives in
 * arrays, and every `persist` is durable the moment it returns, so a
 * simulated crash keeps exactly what a Ready made durable.
 * Invariant: entries[i].index === snapshot.meta.index + 1 + i.
 */
export class MemoryLogStore implements LogStore {
  private hard: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, conf: EMPTY_CONF }, data: new Uint8Array(0) };
  private log: Entry[] = [];

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.hard, conf: this.snap.meta.conf };
  }

  firstIndex(): Index {
    return this.snap.meta.index + 1;
  }

  lastIndex(): Index {
    return this.snap.meta.index + this.log.length;
  }

  term(i: Index): Term | undefined {
    if (i === this.snap.meta.index) return this.snap.meta.term;
    return this.log[i - this.firstIndex()]?.term;
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) throw new Error(`memory log: entries(${lo}) compacted`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - this.firstIndex()];
      if (!e) break;
      bytes += e.data.byteLength + 16;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  persist(update: {
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    hardState?: HardState | undefined;
  }): void {
    const base = update.snapshot?.meta.index ?? this.snap.meta.index;
    const last = update.snapshot ? base : this.lastIndex();
    checkAppend(update.entries, base + 1, last);
    if (update.snapshot) {
      this.snap = update.snapshot;
      this.log = [];
    }
    const first = update.entries[0];
    if (first) {
      this.log.length = first.index - this.firstIndex();
      this.log.push(...update.entries);
    }
    if (update.hardState) this.hard = update.hardState;
  }

  compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index <= this.snap.meta.index) return;
    if (meta.index > this.lastIndex()) throw new Error(`memory log: compact ${meta.index} beyond last index`);
    this.log = this.log.slice(meta.index - this.snap.meta.index);
    this.snap = { meta, data };
  }
}

/** Entries must be contiguous and start within [first, last + 1]; checked before anything is written. */
export function checkAppend(entries: readonly Entry[], first: Index, last: Index): void {
  const head = entries[0];
  if (!head) return;
  if (head.index < first) throw new Error(`log store: append at ${head.index} below first index ${first}`);
  if (head.index > last + 1) throw new Error(`log store: gap before ${head.index} (last ${last})`);
  entries.forEach((e, i) => {
    if (e.index !== head.index + i) throw new Error(`log store: entries not contiguous at ${e.index}`);
  });
}
