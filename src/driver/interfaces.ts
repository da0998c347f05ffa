import type { Storage } from '../raft/storage.ts';
import type { ConfState, Entry, HardState, Index, Message, Snapshot, SnapshotMeta } from '../raft/types.ts';

/**
 * The durable log: what the core reads (Storage) plus what the driver writes.
 * One implementation per runtime (memory for the simulator, SQLite for the
 * Durable Object); both pass test/support/log-store-suite.ts.
 */
export interface LogStore extends Storage {
  /**
   * Make one Ready's durable part durable, atomically: a snapshot first (it
   * replaces the whole log), then the entries (an entry at an existing index
   * truncates that index and everything after it), then the hard state.
   */
  persist(update: { snapshot?: Snapshot | undefined; entries: readonly Entry[]; hardState?: HardState | undefined }): void;
  /** Record a snapshot of the applied state at `meta.index` and drop the entries up to it. */
  compact(meta: SnapshotMeta, data: Uint8Array): void;
}

/** One item of a batch to apply, in log order. */
export type ApplyItem =
  | { readonly index: Index; readonly kind: 'command'; readonly data: Uint8Array }
  | { readonly index: Index; readonly kind: 'noop' }
  | { readonly index: Index; readonly kind: 'conf'; readonly conf: ConfState };

/**
 * The replicated state machine. `apply` must make the batch, the new applied
 * index and the latest conf state durable in one atomic step, so that every
 * entry applies exactly once across crashes.
 */
export interface StateMachine<R = unknown> {
  /** The index of the last entry applied (0 for a fresh node). */
  applied(): Index;
  /** The membership as of applied(), or undefined if no conf item or snapshot was ever applied. */
  conf(): ConfState | undefined;
  /** Apply a batch; returns one result per `command` item, in order. */
  apply(items: readonly ApplyItem[]): R[];
  /** The state as of applied(), for a snapshot. */
  snapshot(): Uint8Array;
  /** Replace the whole state with a snapshot's, setting applied() to its index. */
  restore(snapshot: Snapshot): void;
}

/** Sends Raft messages; never blocks and never throws (a lost message is Raft's business). */
export interface Transport {
  send(messages: readonly Message[]): void;
}
