/**
 * The vocabulary of the key-value state machine: stored records, their
 * history of changes, the commands that go through the Raft log, and their
 * results. The semantics follow etcd v3 (mvccpb.KeyValue, mvccpb.Event, Put,
 * DeleteRange, Txn, Compact, LeaseGrant, LeaseRevoke, LeaseCheckpoint).
 */
import type { Index } from '../raft/index.ts';

/**
 * One stored key (etcd's mvccpb.KeyValue). The store-wide `revision` starts
 * at 0 and grows by one for every applied command that changes something; a
 * txn's writes share one revision.
 */
export interface KeyValue {
  readonly key: string;
  /** Treat as immutable: the table may hand out the bytes it stores. */
  readonly value: Uint8Array;
  /** The revision that created the key since its last deletion. */
  readonly createRevision: number;
  /** The revision of its last put. */
  readonly modRevision: number;
  /** 1 on create, +1 per put; a delete ends the key's life. */
  readonly version: number;
  /**
   * The lease the key is attached to (etcd's lease field): set by the put
   * that wrote it; absent for none. Revoking the lease deletes the key.
   */
  readonly lease?: number | undefined;
}

/**
 * A lease as the replicated state knows it (etcd's lease record). Its
 * deadline is not here: only the leader's clock measures time (see
 * src/node/lessor.ts), so the state holds what a new leader needs to start
 * its clock: the granted TTL and the last checkpointed remaining TTL.
 */
export interface Lease {
  /** A positive safe integer (etcd's int64 LeaseID, within what JSON numbers carry exactly). */
  readonly id: number;
  /** The TTL granted, in seconds. */
  readonly ttl: number;
  /** The TTL left at the last checkpoint, in seconds; 0: no checkpoint (a new leader starts from `ttl`). */
  readonly remaining: number;
}

/** The largest lease TTL in seconds (etcd's MaxLeaseTTL). */
export const MAX_LEASE_TTL = 9_000_000_000;
/** The most leases one checkpoint command carries (etcd's maxLeaseCheckpointBatchSize). */
export const MAX_LEASE_CHECKPOINTS = 1000;

/**
 * One change of one key (etcd's mvccpb.Event), kept in the history. All
 * changes of one command share its revision and are numbered by `seq` from 0
 * in the order the command made them (etcd's sub-revision).
 */
export interface KvEvent {
  readonly type: 'put' | 'delete';
  readonly revision: number;
  readonly seq: number;
  /**
   * put: the record as written. delete: the key with `modRevision` the
   * delete's revision, an empty value, and createRevision and version 0.
   */
  readonly kv: KeyValue;
  /** The record before the change; absent if the key did not exist. */
  readonly prev?: KeyValue | undefined;
}

/** A place in the history: just after the event (revision, seq). */
export interface EventPosition {
  readonly revision: number;
  readonly seq: number;
}

/** The position just before the first event of `revision`. */
export function beforeRevision(revision: number): EventPosition {
  return { revision: revision - 1, seq: Number.MAX_SAFE_INTEGER };
}

/** The largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4096;
/** The largest value: below SQLite's 2 MB row limit, so a committed put always fits its row. */
export const MAX_VALUE_BYTES = 1024 * 1024;
/** The most compares, and the most ops per branch, in one txn (etcd's --max-txn-ops default). */
export const MAX_TXN_OPS = 128;
/** The longest idempotency key, in UTF-16 code units. */
export const MAX_REQUEST_ID_LENGTH = 256;

/**
 * Create or replace `key`; `prevKv` asks for the record it replaced. With
 * `lease` the key is attached to that lease (which must exist, or the
 * command fails with `lease_not_found`); without, it is attached to none.
 */
export interface PutCommand {
  readonly type: 'put';
  readonly key: string;
  readonly value: Uint8Array;
  readonly lease?: number | undefined;
  readonly prevKv?: boolean | undefined;
  /** etcd's ignore_value: keep the key's value (`value` must be empty; the key must exist, else `key_not_found`). */
  readonly ignoreValue?: boolean | undefined;
  /** etcd's ignore_lease: keep the key's lease (`lease` must be absent; the key must exist). */
  readonly ignoreLease?: boolean | undefined;
}

/** Delete one key; `prevKv` asks for the record deleted. */
export interface DeleteCommand {
  readonly type: 'delete';
  readonly key: string;
  readonly prevKv?: boolean | undefined;
}

/** Delete every key that starts with `prefix` (non-empty, so no command wipes the store by accident). */
export interface DeletePrefixCommand {
  readonly type: 'deletePrefix';
  readonly prefix: string;
  readonly prevKv?: boolean | undefined;
}

/** Delete every key in [start, end) (etcd's DeleteRange with a range end); no end: every key from start on. */
export interface DeleteRangeCommand {
  readonly type: 'deleteRange';
  readonly start: string;
  readonly end?: string | undefined;
  readonly prevKv?: boolean | undefined;
}

/**
 * What a compare-and-swap expects of the key. As in etcd, a missing key has
 * modRevision 0 and version 0, and never matches an expected value.
 */
export type CasExpect =
  | { readonly value: Uint8Array }
  | { readonly modRevision: number }
  | { readonly version: number }
  | { readonly absent: true };

/** Put `value` at `key` (attached to `lease`, if given) if the key is as `expect` says. */
export interface CasCommand {
  readonly type: 'cas';
  readonly key: string;
  readonly expect: CasExpect;
  readonly value: Uint8Array;
  readonly lease?: number | undefined;
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

/**
 * One txn guard (etcd's Compare): `target` of `key` `op` `value`. A value
 * compare takes bytes (compared lexicographically) and fails whatever the
 * op if the key is missing; the other targets take numbers and read 0 for a
 * missing key (and `lease` reads 0 for a key without one).
 */
export interface Compare {
  readonly key: string;
  /**
   * etcd's range compare: every key in [key, rangeEnd) must meet it ("\0":
   * every key from `key` on); with no key there, it holds as for a missing
   * key (a value compare fails).
   */
  readonly rangeEnd?: string | undefined;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  readonly value: Uint8Array | number;
}

/**
 * A range read: [start, end), narrowed to the keys starting with `prefix` if
 * given (see `resolveInterval`). No start means from the first key, no end
 * (and no prefix) means to the last. `limit` 0 or absent means no limit.
 */
export interface RangeQuery {
  readonly start?: string | undefined;
  readonly end?: string | undefined;
  readonly prefix?: string | undefined;
  readonly limit?: number | undefined;
  /** Return keys and metadata with empty values. */
  readonly keysOnly?: boolean | undefined;
  /** Return only the count. */
  readonly countOnly?: boolean | undefined;
}

export interface GetOp {
  readonly type: 'get';
  readonly key: string;
}

export interface RangeOp extends RangeQuery {
  readonly type: 'range';
  /**
   * Read the store as of this revision (etcd's RangeRequest.revision): at
   * most the store's revision before the txn, and not below its compaction
   * point, or the txn fails whole. It sees none of the txn's own writes.
   */
  readonly revision?: number | undefined;
}

/**
 * One operation of a txn branch, run in order; reads see the branch's
 * earlier writes. A nested txn (etcd's request_txn) compares and runs there
 * too, its writes in the same revision.
 */
export type TxnOp =
  | GetOp
  | RangeOp
  | PutCommand
  | DeleteCommand
  | DeletePrefixCommand
  | DeleteRangeCommand
  | TxnCommand;

/**
 * etcd's Txn: if every compare holds, run `success`, else `failure`. A branch
 * may not write one key twice (two puts, or a put inside a delete's range),
 * as in etcd.
 */
export interface TxnCommand {
  readonly type: 'txn';
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

/**
 * Drop the history below `revision` (etcd's Compact): afterwards reads and
 * watches at a revision below it are refused as compacted. It goes through
 * the log so every replica compacts at the same point; it writes no revision.
 */
export interface CompactCommand {
  readonly type: 'compact';
  readonly revision: number;
}

/**
 * Grant a lease of `ttl` seconds (etcd's LeaseGrant). `id` 0 lets the store
 * choose: the entry's log index, or the next free id above it. A chosen id
 * that exists fails with `lease_exists`. Writes no revision.
 */
export interface LeaseGrantCommand {
  readonly type: 'leaseGrant';
  readonly id: number;
  readonly ttl: number;
}

/** Revoke a lease: delete it and every key attached to it, in one revision (etcd's LeaseRevoke). */
export interface LeaseRevokeCommand {
  readonly type: 'leaseRevoke';
  readonly id: number;
}

/**
 * The leader's record of the TTLs its leases have left (etcd's
 * LeaseCheckpoint), so a new leader does not restart them from full.
 * `remaining` 0 clears a checkpoint (after a keepalive). Leases that no
 * longer exist are skipped. Writes no revision.
 */
export interface LeaseCheckpointCommand {
  readonly type: 'leaseCheckpoint';
  readonly checkpoints: readonly { readonly id: number; readonly remaining: number }[];
}

export type LeaseCommand = LeaseGrantCommand | LeaseRevokeCommand | LeaseCheckpointCommand;

export type KvCommand =
  | PutCommand
  | DeleteCommand
  | DeletePrefixCommand
  | DeleteRangeCommand
  | CasCommand
  | TxnCommand
  | CompactCommand
  | LeaseCommand;
export type KvCommandType = KvCommand['type'];

/**
 * What a proposal carries. A command with a `requestId` applies at most once
 * while its record is kept (see KvStateMachineOptions): a retry gets the
 * first result (Raft thesis §6.3).
 */
export interface CommandEnvelope {
  readonly requestId?: string | undefined;
  readonly cmd: KvCommand;
}

export interface PutResult {
  readonly type: 'put';
  /** The store revision after the command (the key's new modRevision). */
  readonly revision: number;
  readonly prev?: KeyValue | undefined;
}

/** The result of delete, deletePrefix and deleteRange. */
export interface DeleteResult {
  readonly type: 'delete';
  /** The store revision after the command (unchanged if nothing was deleted). */
  readonly revision: number;
  readonly deleted: number;
  /** delete with `prevKv`: the record deleted, if there was one. */
  readonly prev?: KeyValue | undefined;
  /** deletePrefix / deleteRange with `prevKv`: the records deleted, in key order. */
  readonly prevKvs?: readonly KeyValue[] | undefined;
}

export interface CasResult {
  readonly type: 'cas';
  readonly succeeded: boolean;
  readonly revision: number;
  /** The key after a success; the existing key (or none) after a failure. */
  readonly current?: KeyValue | undefined;
}

export interface CompactResult {
  readonly type: 'compact';
  /** The store revision (unchanged: a compaction writes no revision). */
  readonly revision: number;
  /** The compaction point after the command. */
  readonly compacted: number;
}

export interface LeaseGrantResult {
  readonly type: 'leaseGrant';
  readonly revision: number;
  readonly id: number;
  readonly ttl: number;
}

export interface LeaseRevokeResult {
  readonly type: 'leaseRevoke';
  /** The store revision after the command (unchanged if the lease held no key). */
  readonly revision: number;
  readonly id: number;
  /** How many keys the revocation deleted. */
  readonly deleted: number;
}

export interface LeaseCheckpointResult {
  readonly type: 'leaseCheckpoint';
  readonly revision: number;
}

/** A range read's answer. */
export interface RangeResult {
  /** In key order; empty for `countOnly`. */
  readonly kvs: readonly KeyValue[];
  /** How many keys the whole range holds, regardless of `limit`. */
  readonly count: number;
  /** True if `limit` cut the answer short. */
  readonly more: boolean;
  /** With `more`: the first key not returned, the `start` of the next page. */
  readonly next?: string | undefined;
}

export type TxnOpResult =
  | { readonly type: 'get'; readonly kv?: KeyValue | undefined }
  | { readonly type: 'txn'; readonly succeeded: boolean; readonly results: readonly TxnOpResult[] }
  | ({ readonly type: 'range' } & RangeResult)
  | { readonly type: 'put'; readonly prev?: KeyValue | undefined }
  | {
      readonly type: 'delete';
      readonly deleted: number;
      readonly prev?: KeyValue | undefined;
      readonly prevKvs?: readonly KeyValue[] | undefined;
    };

export interface TxnResult {
  readonly type: 'txn';
  readonly succeeded: boolean;
  /** The store revision after the txn (unchanged if it wrote nothing). */
  readonly revision: number;
  /** One per op of the branch that ran. */
  readonly results: readonly TxnOpResult[];
}

/**
 * A command that did nothing:
 * - `bad_command`: the entry failed validation (the same on every replica);
 * - `request_id_reused`: its requestId was applied before with another command;
 * - `result_unavailable`: a retry of an applied request whose result was too large to keep;
 * - `stale_entry`: the entry's index was applied already (never applied twice);
 * - `compacted`: a compact at or below the compaction point (etcd's ErrCompacted);
 * - `future_revision`: a compact above the store revision (etcd's ErrFutureRev);
 * - `lease_not_found`: a revoke, or a put (also in cas or the txn branch that ran), names no existing lease;
 * - `lease_exists`: a grant chose an id in use (etcd's ErrLeaseExists);
 * - `key_not_found`: a put with ignoreValue or ignoreLease found no key (etcd's ErrKeyNotFound).
 */
export interface ErrorResult {
  readonly type: 'error';
  readonly error:
    | 'bad_command'
    | 'request_id_reused'
    | 'result_unavailable'
    | 'stale_entry'
    | 'compacted'
    | 'future_revision'
    | 'lease_not_found'
    | 'lease_exists'
    | 'key_not_found';
  readonly message: string;
  /** With `compacted`: the compaction point. */
  readonly compacted?: number | undefined;
  /** With `future_revision`: the store revision. */
  readonly current?: number | undefined;
  /** With `lease_not_found` and `lease_exists`: the lease. */
  readonly lease?: number | undefined;
}

export type KvResult =
  | PutResult
  | DeleteResult
  | CasResult
  | TxnResult
  | CompactResult
  | LeaseGrantResult
  | LeaseRevokeResult
  | LeaseCheckpointResult
  | ErrorResult;

/** A kept idempotency record: the first result of request `id`, applied at log `index`. */
export interface RequestRecord {
  readonly id: string;
  readonly index: Index;
  /** The store revision right after it applied; drives eviction by distance. */
  readonly revision: number;
  /** A hash of the canonical command, to tell a retry from a reused id. */
  readonly fingerprint: number;
  /** The encoded KvResult, or empty if it was too large to keep. */
  readonly result: Uint8Array;
}
