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
 * - never keep or hand out bytes that a caller may change later: the state
 *   machine never mutates what it passes in or gets back.
 */
import type { ConfState, Index } from '../raft/index.ts';
import type { KeyValue, RequestRecord } from './types.ts';

/** The state machine's own bookkeeping, written once per applied batch. */
export interface KvMeta {
  /** The store revision (etcd's header revision): 0 for an empty store. */
  readonly revision: number;
  /** The last applied log index: 0 for a fresh node. */
  readonly applied: Index;
  /** The membership as of `applied`, if any conf entry or snapshot was applied. */
  readonly conf: ConfState | undefined;
}

export const EMPTY_META: KvMeta = { revision: 0, applied: 0, conf: undefined };

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

  /** Removes every key and request and resets the meta to EMPTY_META. */
  clear(): void;
  /** Runs `fn` atomically (see the contract above). */
  transaction<T>(fn: () => T): T;
}
