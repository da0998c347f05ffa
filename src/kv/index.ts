/** The key-value state machine (etcd v3 semantics) over a small synchronous table: see shared/DESIGN.md "Layers". */
export {
  COMMAND_VERSION,
  decodeCommand,
  encodeCommand,
  fingerprint,
  validateCommand,
  validateRangeQuery,
} from './codec.ts';
export type { ApplyItem, StateMachine } from './contract.ts';
export { compareBytes, compareHolds, execute, readRange } from './execute.ts';
export {
  compareKeys,
  inInterval,
  isWellFormed,
  type KeyInterval,
  prefixEnd,
  resolveInterval,
  utf8Length,
} from './keys.ts';
export { MemoryKvTable } from './memory-table.ts';
export {
  decodeResult,
  decodeSnapshot,
  encodeResult,
  encodeSnapshot,
  type HistKey,
  type HistRow,
  type KvRow,
  type KvSnapshotData,
  keyValue,
  kvTuple,
  type LeaseRow,
  type RequestRow,
  SNAPSHOT_VERSION,
} from './snapshot.ts';
export {
  DEFAULT_MAX_REQUESTS,
  DEFAULT_MAX_RESULT_BYTES,
  DEFAULT_REQUEST_REVISION_WINDOW,
  KvStateMachine,
  type KvStateMachineOptions,
  type LeaseChange,
  type RangeReadResult,
} from './state-machine.ts';
export { EMPTY_META, type KvMeta, type KvTable } from './table.ts';
export * from './types.ts';
export { DuplicateKeyError, KvDecodeError } from './validate.ts';
export { batchesFor, type WatchBatch, type WatchFilter, watches } from './watch-filter.ts';
