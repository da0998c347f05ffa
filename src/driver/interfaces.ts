import type { Storage } from '../raft/storage.ts';
import type { Entry, HardState, Message, Snapshot, SnapshotMeta } from '../raft/types.ts';

/**
 * The durable log: what the core reads (Storage) plus what the driver writes.
 * One implementation per runtime (memory for the simulator, SQLite for the
 * Durable Object); both pass test/support/log-store-suite.ts.
 */
export interface LogStore extends Storage {
  /**
   * Make one Ready's durable part durable, atomically: a snapshot first (it
   * replaces the whole log), then the entries (an entry at an existing index
   * truncates that index and everything after it), then the hard state. A
   * store may leave out a hard state whose term and vote did not change (a
   * new commit index alone): the driver takes the applied index as committed
   * at restart, and the leader tells the rest.
   */
  persist(update: {
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    hardState?: HardState | undefined;
  }): void;
  /** Record a snapshot of the applied state at `meta.index` and drop the entries up to it. */
  compact(meta: SnapshotMeta, data: Uint8Array): void;
}

export type { ApplyItem, StateMachine } from '../kv/contract.ts';

/** Sends Raft messages; never blocks and never throws (a lost message is Raft's business). */
export interface Transport {
  send(messages: readonly Message[]): void;
}
