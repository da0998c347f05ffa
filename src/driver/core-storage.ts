import type { ConfState, Entry, HardState, Index, Snapshot, Storage, Term } from '../raft/index.ts';
import type { LogStore } from './interfaces.ts';

/**
 * The core's view of a LogStore. The membership lives with the state
 * machine (it changes when conf entries are applied), so it is taken from
 * there, or from the bootstrap configuration of a fresh node.
 */
export class CoreStorage implements Storage {
  private readonly log: LogStore;
  private readonly conf: ConfState | undefined;

  private readonly applied: Index;

  constructor(log: LogStore, conf: ConfState | undefined, applied: Index) {
    this.log = log;
    this.conf = conf;
    this.applied = applied;
  }

  /** The commit index is at least the applied one: a store may not write a new commit index alone (SqliteLogStore). */
  initialState(): { hardState: HardState; conf: ConfState } {
    const s = this.log.initialState();
    const commit = Math.max(s.hardState.commit, this.applied);
    return { hardState: { ...s.hardState, commit }, conf: this.conf ?? s.conf };
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  term(i: Index): Term | undefined {
    return this.log.term(i);
  }

  firstIndex(): Index {
    return this.log.firstIndex();
  }

  lastIndex(): Index {
    return this.log.lastIndex();
  }

  snapshot(): Snapshot {
    return this.log.snapshot();
  }
}
