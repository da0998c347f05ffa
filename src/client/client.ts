/**
 * DurableRaftClient: one object with a method per /v1 route, grouped as the
 * README groups them (keys at the top; leases, elections and cluster in
 * their own objects). Each method is a thin call into the file of its
 * resource; the Transport does the requests, deadlines and retries.
 */
import {
  type ClusterStatus,
  changeMembers,
  clusterStatus,
  type MemberAction,
  type Membership,
  transferLeader,
} from './cluster.ts';
import {
  campaign,
  type ElectionLeader,
  electionLeader,
  type Leadership,
  observe,
  proclaim,
  resign,
} from './elections.ts';
import { Transport, type TransportOptions } from './http.ts';
import {
  type CasExpect,
  type CasResult,
  cas,
  compact,
  count,
  type DeleteResult,
  del,
  deleteRange,
  type GetResult,
  get,
  type KeyRange,
  type PutOptions,
  type PutResult,
  put,
  type RangeOptions,
  type RangePage,
  type ReadOptions,
  rangeAll,
  rangePage,
  rangePages,
  type WriteConditions,
} from './kv.ts';
import {
  grantLease,
  type KeepAliveOptions,
  keepAliveOnce,
  Lease,
  type LeaseList,
  type LeaseStatus,
  leaseStatus,
  listLeases,
  revokeLease,
} from './leases.ts';
import { type LockHolder, type LockOptions, lock } from './locks.ts';
import {
  type RestoreOptions,
  type RestoreResult,
  restore,
  type Snapshot,
  type SnapshotOptions,
  snapshot,
} from './snapshot.ts';
import { type TxnRequest, type TxnResult, txn } from './txn.ts';
import type { KeyValue, Value } from './types.ts';
import { type WatchOptions, type WatchResponse, watch } from './watch.ts';

export type ClientOptions = TransportOptions;

export interface GrantOptions {
  /** Ask for this id (a decimal string); default: the store picks one. */
  readonly id?: string;
  /** Start the keepalive loop at once (true, or its options). */
  readonly keepAlive?: boolean | KeepAliveOptions;
}

export class DurableRaftClient {
  private readonly t: Transport;

  /** Leases: grant (with an optional keepalive loop), keepalive, timeToLive, list, revoke. */
  readonly leases: {
    grant(ttlSeconds: number, o?: GrantOptions): Promise<Lease>;
    keepAliveOnce(id: string): Promise<{ id: string; ttl: number }>;
    timeToLive(id: string, o?: { keys?: boolean }): Promise<LeaseStatus>;
    list(o?: { after?: string; limit?: number }): Promise<LeaseList>;
    revoke(id: string): Promise<{ id: string; deleted: number; revision: number }>;
  };

  /** Elections: campaign, proclaim, resign, leader, observe. */
  readonly elections: {
    campaign(name: string, o: { lease: string; value: Value; waitMs?: number }): Promise<Leadership>;
    proclaim(name: string, leader: Leadership, value: Value): Promise<Leadership>;
    resign(name: string, leader: Leadership): Promise<{ resigned: boolean }>;
    leader(name: string): Promise<ElectionLeader | undefined>;
    observe(name: string, o?: { signal?: AbortSignal }): AsyncGenerator<ElectionLeader, void, undefined>;
  };

  /** Cluster administration (admin role). */
  readonly cluster: {
    status(): Promise<ClusterStatus>;
    addLearner(node: string): Promise<Membership>;
    promote(node: string): Promise<Membership>;
    remove(node: string): Promise<Membership>;
    transferLeader(to: string): Promise<{ leader: string; term: number }>;
  };

  constructor(o: ClientOptions) {
    const t = new Transport(o);
    this.t = t;
    this.leases = {
      async grant(ttlSeconds, go = {}) {
        const g = await grantLease(t, ttlSeconds, go.id);
        const lease = new Lease(t, g);
        if (go.keepAlive) lease.keepAlive(go.keepAlive === true ? {} : go.keepAlive);
        return lease;
      },
      keepAliveOnce: (id) => keepAliveOnce(t, id),
      timeToLive: (id, lo) => leaseStatus(t, id, lo),
      list: (lo) => listLeases(t, lo),
      revoke: (id) => revokeLease(t, id),
    };
    this.elections = {
      campaign: (name, co) => campaign(t, name, co),
      proclaim: (name, leader, value) => proclaim(t, name, leader, value),
      resign: (name, leader) => resign(t, name, leader),
      leader: (name) => electionLeader(t, name),
      observe: (name, oo) => observe(t, name, oo),
    };
    const members = (action: MemberAction) => (node: string) => changeMembers(t, action, node);
    this.cluster = {
      status: () => clusterStatus(t),
      addLearner: members('add_learner'),
      promote: members('promote'),
      remove: members('remove'),
      transferLeader: (to) => transferLeader(t, to),
    };
  }

  /** The endpoint this client talks to. */
  get endpoint(): string {
    return this.t.endpoint;
  }

  /** Reads a key (`kv` undefined if it does not exist). */
  get(key: string, o?: ReadOptions): Promise<GetResult> {
    return get(this.t, key, o);
  }

  /** Writes a key; `ifMatch` / `ifNoneMatch` make it conditional (PreconditionFailedError if they fail). */
  put(key: string, value: Value, o?: PutOptions): Promise<PutResult> {
    return put(this.t, key, value, o);
  }

  /** Deletes a key (`deleted: 0` if it did not exist). */
  delete(key: string, o?: WriteConditions): Promise<DeleteResult> {
    return del(this.t, key, o);
  }

  /** Deletes every key under a prefix, or in `[start, end)`. */
  deleteRange(r: { prefix: string } | { start: string; end: string }): Promise<DeleteResult> {
    return deleteRange(this.t, r);
  }

  /** One page of a range (from `cursor`, the previous page's). */
  range(o: RangeOptions, cursor?: string): Promise<RangePage> {
    return rangePage(this.t, o, cursor);
  }

  /** Every page of a range, following the cursor, all read at the first page's revision. */
  rangePages(o: RangeOptions): AsyncGenerator<RangePage, void, undefined> {
    return rangePages(this.t, o);
  }

  /** Every key of a range at once (all its pages). */
  rangeAll(o: RangeOptions): Promise<{ kvs: KeyValue[]; revision: number }> {
    return rangeAll(this.t, o);
  }

  /** How many keys a range holds. */
  count(o: KeyRange & ReadOptions): Promise<{ count: number; revision: number }> {
    return count(this.t, o);
  }

  /** Puts `value` only if the key matches `expect`. */
  cas(key: string, expect: CasExpect, value: Value, o?: { lease?: string }): Promise<CasResult> {
    return cas(this.t, key, expect, value, o);
  }

  /** etcd's transaction. */
  txn(r: TxnRequest): Promise<TxnResult> {
    return txn(this.t, r);
  }

  /** Drops the history below `revision` (admin). */
  compact(revision: number): Promise<{ revision: number; compactRevision: number }> {
    return compact(this.t, revision);
  }

  /** Every change of a key, interval or prefix, resuming by itself after a disconnect. */
  watch(o: WatchOptions): AsyncGenerator<WatchResponse, void, undefined> {
    return watch(this.t, o);
  }

  /** Acquires a lock; the holder carries its fencing token (`revision`) and `unlock()`. */
  lock(name: string, o?: LockOptions): Promise<LockHolder> {
    return lock(this.t, name, o);
  }

  /** The group's dump as of a revision (admin), streamed: check it with `readDump` as it is read. */
  snapshot(o?: SnapshotOptions): Promise<Snapshot> {
    return snapshot(this.t, o);
  }

  /**
   * Creates group `name` from a dump (admin, a token not limited to groups),
   * streamed up as it is read; a refused or failed restore leaves no group.
   */
  restore(
    name: string,
    dump: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array,
    o?: RestoreOptions,
  ): Promise<RestoreResult> {
    return restore(this.t, name, dump, o);
  }
}

/** A client for the store at `endpoint` (e.g. `https://raft.example.workers.dev`). */
export function createClient(o: ClientOptions): DurableRaftClient {
  return new DurableRaftClient(o);
}
