/**
 * The synchronous storage the key-value state machine runs on. Two
 * implementations: MemoryKvTable (the simulator and unit tests) and a SQLite
 * one in the Durable Object. Both must pass test/kv/table-suite.ts.
 *
 * To ensure correctness, an implementation must:
 * - order keys as their UTF-8 bytes compare (`compareKeys`); in SQLite, store
 *   the key as a BLOB of its UTF-8 bytes (memcmp order), or as TEXT with a
 *   BINARY collation over a UTF-8 database, never with NOCASE or a locale;
 * - make `transaction` all-or-nothing: if `fn` throws, every change made
 *   inside it is undone and the error propagates; a nested call joins the
 *   outer transaction or acts as a savepoint (either is fine);
 * - keep requests in the order of their `index`, so `oldestRequest` is the
 *   smallest index;
 * - keep events in (revision, seq) order and hand them back exactly as
 *   appended (with their prev records), however they are stored;
 * - keep each record's `lease` (absent: none) and answer `leaseKeys` from
 *   the records as they are (an index on the lease column, in SQLite one
 *   that leaves out records without a lease, so a plain put writes no more);
 * - never keep or hand out bytes that a caller may change later: the state
 *   machine never mutates what it passes in or gets back.
 */
import type { ConfState, Index } from '../raft/index.ts';
import type { EventPosition, KeyValue, KvEvent, Lease, RequestRecord } from './types.ts';

/** The state machine's own bookkeeping, written once per applied batch. */
export interface KvMeta {
  /** The store revision (etcd's header revision): 0 for an empty store. */
  readonly revision: number;
  /** The last applied log index: 0 for a fresh node. */
  readonly applied: Index;
  /** The membership as of `applied`, if any conf entry or snapshot was applied. */
  readonly conf: ConfState | undefined;
  /**
   * The compaction point: the history holds every event with a revision at
   * or above it (0: nothing compacted). Reads and watches at a revision below
   * it are refused.
   */
  readonly compacted: number;
}

export const EMPTY_META: KvMeta = { revision: 0, applied: 0, conf: undefined, compacted: 0 };

export interface KvTable {
  get(key: string): KeyValue | undefined;
  /** Inserts or replaces the record of `kv.key`. */
  put(kv: KeyValue): void;
  /** Removes `key`; true if it was there. */
  delete(key: string): boolean;
  /**
   * The records with `start <= key < end` in key order (`end` undefined:
   * no upper bound), at most `limit` of them (undefined: all). Empty if
   * `start >= end`.
   */
  range(start: string, end: string | undefined, limit?: number): KeyValue[];
  /** How many keys `range(start, end)` holds. */
  count(start: string, end: string | undefined): number;

  meta(): KvMeta;
  setMeta(meta: KvMeta): void;

  getRequest(id: string): RequestRecord | undefined;
  /** Records a request; its index is larger than every kept record's. */
  putRequest(record: RequestRecord): void;
  deleteRequest(id: string): void;
  /** The kept record with the smallest index. */
  oldestRequest(): RequestRecord | undefined;
  requestCount(): number;
  /** Every kept record in index order (for a snapshot). */
  requests(): RequestRecord[];

  /**
   * Appends the events of one applied batch, in (revision, seq) order; each
   * comes after every event kept. Written in the same transaction as the
   * batch's records, so history and state never disagree.
   */
  appendEvents(events: readonly KvEvent[]): void;
  /**
   * The kept events after `after`, in (revision, seq) order: at most
   * `limit`, and an implementation may end a page early once it holds a lot
   * of bytes (never with no event while more exist).
   */
  events(after: EventPosition, limit: number): KvEvent[];
  /** Drops every event with a revision below `revision`. */
  compactEvents(revision: number): void;

  getLease(id: number): Lease | undefined;
  /** Inserts or replaces the lease `lease.id`. */
  putLease(lease: Lease): void;
  deleteLease(id: number): void;
  /** Every lease, in id order, at most `limit` of them after id `after` (0: from the first). */
  leases(after?: number, limit?: number): Lease[];
  /** The keys attached to lease `id`, in key order (at most `limit`). */
  leaseKeys(id: number, limit?: number): string[];

  /** Removes every key, request, event and lease and resets the meta to EMPTY_META. */
  clear(): void;
  /** Runs `fn` atomically (see the contract above). */
  transaction<T>(fn: () => T): T;
}
