/**
 * The typed HTTP client of durable-raft's /v1 API. Only Web APIs (fetch,
 * streams, crypto.randomUUID): it runs in Node 22+, browsers and Workers,
 * and imports nothing server-side.
 *
 * @example
 * const client = createClient({ endpoint: 'http://localhost:8787' });
 * await client.put('config/app', 'v1');
 * for await (const change of client.watch({ prefix: 'config/' })) console.log(change.revision, change.events);
 */

export {
  type DumpEnd,
  DumpError,
  type DumpHeader,
  type DumpLine,
  DumpReader,
  readDump,
} from '../dump/index.ts';
export { type ClientOptions, createClient, DurableRaftClient, type GrantOptions } from './client.ts';
export type { ClusterStatus, MemberAction, MemberStatus, Membership } from './cluster.ts';
export type { ElectionLeader, Leadership } from './elections.ts';
export {
  BadRequestError,
  CompactedError,
  ConflictError,
  DurableRaftError,
  ForbiddenError,
  NotFoundError,
  OutcomeUnknownError,
  PreconditionFailedError,
  UnauthorizedError,
  UnavailableError,
} from './errors.ts';
export { type FetchFn, groupPath } from './http.ts';
export type {
  CasExpect,
  CasResult,
  DeleteResult,
  GetResult,
  KeyRange,
  PutOptions,
  PutResult,
  RangeOptions,
  RangePage,
  ReadOptions,
  WriteConditions,
} from './kv.ts';
export { type KeepAliveOptions, Lease, type LeaseGrant, type LeaseList, type LeaseStatus } from './leases.ts';
export { LockHolder, type LockOptions } from './locks.ts';
export type { RestoreOptions, RestoreResult, Snapshot, SnapshotOptions } from './snapshot.ts';
export type { Compare, CompareTarget, TxnOp, TxnOpResult, TxnRequest, TxnResult } from './txn.ts';
export type { Consistency, KeyValue, Value } from './types.ts';
export type { WatchEvent, WatchOptions, WatchResponse, WatchTarget } from './watch.ts';
