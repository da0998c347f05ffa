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

  constructor(log: LogStore, conf: ConfState | undefined) {
    this.log = log;
    this.conf = conf;
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    const s = this.log.initialState();
    return { hardState: s.hardState, conf: this.conf ?? s.conf };
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
