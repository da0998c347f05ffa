import type { ConfState, Index, Snapshot } from '../raft/index.ts';

/**
 * What the driver needs of a replicated state machine. It lives with the
 * state machine layer so that src/kv depends on nothing but src/raft, and the
 * driver (which may import kv) runs any implementation of it.
 */

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
