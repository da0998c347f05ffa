/**
 * Runs one validated command against a table: etcd's apply logic for put,
 * delete range, compare, txn and leases. Pure over the table: the same
 * command on the same state gives the same result, the same writes and the
 * same events on every replica.
 */
import { rangeAt } from './history-reads.ts';
import { compareKeys, type KeyInterval, prefixEnd, resolveInterval } from './keys.ts';
import type { KvTable } from './table.ts';
import type {
  CasCommand,
  CasExpect,
  Compare,
  DeleteResult,
  KeyValue,
  KvCommand,
  KvEvent,
  KvResult,
  LeaseCommand,
  PutCommand,
  RangeQuery,
  RangeResult,
  TxnCommand,
  TxnOp,
  TxnOpResult,
} from './types.ts';

const NO_BYTES = new Uint8Array(0);

/**
 * Runs `cmd`, the command of log entry `index`, on a store at `revision`
 * whose history is kept from `compacted` on (for a txn's reads at a
 * revision, which need every earlier event in the table);
 * the result's `revision` is the store's revision after it. Each change it
 * makes is pushed onto `events`, in order. A command that fails (a lease
 * that does not exist) changes nothing.
 */
export function execute(
  table: KvTable,
  cmd: Exclude<KvCommand, { type: 'compact' }>,
  revision: number,
  events: KvEvent[] = [],
  index = 0,
  compacted = 0,
): KvResult {
  const w = new Writer(table, revision, events);
  switch (cmd.type) {
    case 'put': {
      const refused = putRefused(table, cmd);
      if (refused) return refused;
      const { prev } = w.put(cmd.key, ...kept(table, cmd));
      return { type: 'put', revision: w.revision(), ...(cmd.prevKv && prev ? { prev } : {}) };
    }
    case 'delete':
    case 'deletePrefix':
    case 'deleteRange':
      return { ...deleteOp(w, cmd), revision: w.revision() };
    case 'cas':
      return cas(table, w, cmd);
    case 'txn':
      return txn(table, w, cmd, compacted);
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'leaseCheckpoint':
      return lease(table, w, cmd, index);
  }
}

/** Why a put cannot run (its lease is missing, or it keeps the value or lease of a key that is not there). */
function putRefused(table: KvTable, op: PutCommand): KvResult | undefined {
  if (missingLease(table, op.lease)) return leaseNotFound(op.lease as number);
  if ((op.ignoreValue || op.ignoreLease) && table.get(op.key) === undefined)
    return { type: 'error', error: 'key_not_found', message: `key ${JSON.stringify(op.key)} not found` };
  return undefined;
}

/** The value and lease a put writes: its own, or with etcd's ignore flags, the key's. */
function kept(table: KvTable, op: PutCommand): [Uint8Array, number | undefined] {
  if (!op.ignoreValue && !op.ignoreLease) return [op.value, op.lease];
  const cur = table.get(op.key) as KeyValue;
  return [op.ignoreValue ? cur.value : op.value, op.ignoreLease ? cur.lease : op.lease];
}

function missingLease(table: KvTable, id: number | undefined): boolean {
  return id !== undefined && table.getLease(id) === undefined;
}

function leaseNotFound(id: number): KvResult {
  return { type: 'error', error: 'lease_not_found', message: `lease ${id} not found`, lease: id };
}

/**
 * etcd's lease commands. A grant without an id takes the entry's index (or
 * the next free id above it): unique and the same on every replica.
 */
function lease(table: KvTable, w: Writer, cmd: LeaseCommand, index: number): KvResult {
  switch (cmd.type) {
    case 'leaseGrant': {
      let id = cmd.id;
      if (id !== 0 && table.getLease(id))
        return { type: 'error', error: 'lease_exists', message: `lease ${id} already exists`, lease: id };
      if (id === 0) for (id = Math.max(1, index); table.getLease(id); ) id++;
      table.putLease({ id, ttl: cmd.ttl, remaining: 0 });
      return { type: 'leaseGrant', revision: w.revision(), id, ttl: cmd.ttl };
    }
    case 'leaseRevoke': {
      if (missingLease(table, cmd.id)) return leaseNotFound(cmd.id);
      const keys = table.leaseKeys(cmd.id);
      for (const key of keys) w.deleteKey(key);
      table.deleteLease(cmd.id);
      return { type: 'leaseRevoke', revision: w.revision(), id: cmd.id, deleted: keys.length };
    }
    case 'leaseCheckpoint':
      for (const { id, remaining } of cmd.checkpoints) {
        const l = table.getLease(id);
        if (l) table.putLease({ ...l, remaining: Math.min(remaining, l.ttl) });
      }
      return { type: 'leaseCheckpoint', revision: w.revision() };
  }
}

/** Serves a range read (also a txn's range op). */
export function readRange(table: KvTable, q: RangeQuery): RangeResult {
  const { start, end } = resolveInterval(q);
  if (end !== undefined && compareKeys(start, end) >= 0) return { kvs: [], count: 0, more: false };
  if (q.countOnly) return { kvs: [], count: table.count(start, end), more: false };
  const limit = q.limit === undefined || q.limit === 0 ? undefined : q.limit;
  const rows = table.range(start, end, limit === undefined ? undefined : limit + 1);
  const kvs = q.keysOnly ? rows.map((kv) => ({ ...kv, value: NO_BYTES })) : rows;
  if (limit === undefined || rows.length <= limit) return { kvs, count: kvs.length, more: false };
  const next = (kvs[limit] as KeyValue).key;
  return { kvs: kvs.slice(0, limit), count: table.count(start, end), more: true, next };
}

/** etcd's applyCompare: a value compare on a missing key fails; other targets read 0 for it. */
export function compareHolds(kv: KeyValue | undefined, c: Compare): boolean {
  let d: number;
  if (typeof c.value === 'number') {
    d = numberOf(kv, c.target) - c.value;
  } else {
    if (kv === undefined) return false;
    d = compareBytes(kv.value, c.value);
  }
  switch (c.op) {
    case '=':
      return d === 0;
    case '!=':
      return d !== 0;
    case '<':
      return d < 0;
    case '>':
      return d > 0;
  }
}

function numberOf(kv: KeyValue | undefined, target: Compare['target']): number {
  if (kv === undefined) return 0;
  switch (target) {
    case 'version':
      return kv.version;
    case 'createRevision':
      return kv.createRevision;
    case 'lease':
      return kv.lease ?? 0;
    default:
      return kv.modRevision;
  }
}

function cas(table: KvTable, w: Writer, cmd: CasCommand): KvResult {
  const existing = table.get(cmd.key);
  if (!expectHolds(existing, cmd.expect)) {
    return { type: 'cas', succeeded: false, revision: w.revision(), ...(existing ? { current: existing } : {}) };
  }
  if (missingLease(table, cmd.lease)) return leaseNotFound(cmd.lease as number);
  const { kv } = w.put(cmd.key, cmd.value, cmd.lease);
  return { type: 'cas', succeeded: true, revision: w.revision(), current: kv };
}

function expectHolds(kv: KeyValue | undefined, e: CasExpect): boolean {
  if ('absent' in e) return kv === undefined;
  if ('value' in e) return kv !== undefined && compareBytes(kv.value, e.value) === 0;
  if ('modRevision' in e) return (kv?.modRevision ?? 0) === e.modRevision;
  return (kv?.version ?? 0) === e.version;
}

/**
 * As etcd's applyTxn: every compare, nested txns' included, is taken on the
 * state before the txn (its path); the ops on that path are checked first
 * (refusal), and a refused one fails it whole; then the ops run, nested ones
 * along the path. A range at a revision reads the store as it was before
 * the txn, so it is read before any of the txn's writes.
 */
function txn(table: KvTable, w: Writer, cmd: TxnCommand, compacted: number): KvResult {
  const path = pathOf(table, cmd);
  const ops = [...opsOn(cmd, path)];
  const refused = refusal(table, ops, w.revision(), compacted);
  if (refused) return refused;
  const early = new Map<TxnOp, RangeResult>();
  for (const op of ops)
    if (op.type === 'range' && op.revision !== undefined)
      early.set(op, rangeAt(table, op, op.revision, Number.POSITIVE_INFINITY));
  const { succeeded, results } = runTxn(table, w, cmd, path, early);
  return { type: 'txn', succeeded, revision: w.revision(), results };
}

/** Which branch a txn takes, and the paths of the nested txns of that branch, in order. */
interface TxnPath {
  readonly succeeded: boolean;
  readonly nested: readonly TxnPath[];
}

function pathOf(table: KvTable, t: TxnCommand): TxnPath {
  const succeeded = t.compare.every((c) => compareAt(table, c));
  const ops = succeeded ? t.success : t.failure;
  return { succeeded, nested: ops.flatMap((op) => (op.type === 'txn' ? [pathOf(table, op)] : [])) };
}

/** The ops a txn runs along `path`, in order, those of its nested txns in their place. */
function* opsOn(t: TxnCommand, path: TxnPath): Generator<Exclude<TxnOp, TxnCommand>> {
  let n = 0;
  for (const op of path.succeeded ? t.success : t.failure) {
    if (op.type === 'txn') yield* opsOn(op, path.nested[n++] as TxnPath);
    else yield op;
  }
}

/**
 * Why a txn's path cannot run, checked as etcd does: every put first (a
 * missing lease, a key to keep that is not there), then every range's
 * revision against the store's (`revision`) and its compaction point.
 */
function refusal(
  table: KvTable,
  ops: readonly Exclude<TxnOp, TxnCommand>[],
  revision: number,
  compacted: number,
): KvResult | undefined {
  for (const op of ops) {
    const refused = op.type === 'put' ? putRefused(table, op) : undefined;
    if (refused) return refused;
  }
  for (const op of ops) {
    if (op.type !== 'range' || op.revision === undefined) continue;
    if (op.revision > revision)
      return {
        type: 'error',
        error: 'future_revision',
        message: `revision ${op.revision} is past the store revision ${revision}`,
        current: revision,
      };
    if (op.revision < compacted)
      return {
        type: 'error',
        error: 'compacted',
        message: `revision ${op.revision} is below the compaction point ${compacted}`,
        compacted,
      };
  }
  return undefined;
}

/** Whether a txn (in any branch, nested ones included) reads at a revision: its batch's history must be in the table first. */
export function readsAtRevision(t: TxnCommand): boolean {
  return [...t.success, ...t.failure].some((op) =>
    op.type === 'txn' ? readsAtRevision(op) : op.type === 'range' && op.revision !== undefined,
  );
}

function runTxn(
  table: KvTable,
  w: Writer,
  t: TxnCommand,
  path: TxnPath,
  early: ReadonlyMap<TxnOp, RangeResult>,
): { succeeded: boolean; results: TxnOpResult[] } {
  let n = 0;
  const results = (path.succeeded ? t.success : t.failure).map((op): TxnOpResult => {
    const read = early.get(op);
    if (read) return { type: 'range', ...read };
    if (op.type !== 'txn') return txnOp(table, w, op);
    return { type: 'txn', ...runTxn(table, w, op, path.nested[n++] as TxnPath, early) };
  });
  return { succeeded: path.succeeded, results };
}

/** A compare on its key, or (etcd's range compare) on every key of its range. */
function compareAt(table: KvTable, c: Compare): boolean {
  if (c.rangeEnd === undefined) return compareHolds(table.get(c.key), c);
  const kvs = table.range(c.key, c.rangeEnd === '\u0000' ? undefined : c.rangeEnd);
  if (kvs.length === 0) return compareHolds(undefined, c);
  return kvs.every((kv) => compareHolds(kv, c));
}

function txnOp(table: KvTable, w: Writer, op: Exclude<TxnOp, TxnCommand>): TxnOpResult {
  switch (op.type) {
    case 'get': {
      const kv = table.get(op.key);
      return kv ? { type: 'get', kv } : { type: 'get' };
    }
    case 'range':
      return { type: 'range', ...readRange(table, op) };
    case 'put': {
      const { prev } = w.put(op.key, ...kept(table, op));
      return op.prevKv && prev ? { type: 'put', prev } : { type: 'put' };
    }
    case 'delete':
    case 'deletePrefix':
    case 'deleteRange':
      return deleteOp(w, op);
  }
}

type DeleteOp = Extract<TxnOp, { type: 'delete' | 'deletePrefix' | 'deleteRange' }>;

function deleteOp(w: Writer, op: DeleteOp): Omit<DeleteResult, 'revision'> {
  if (op.type === 'delete') {
    const prev = w.deleteKey(op.key);
    return { type: 'delete', deleted: prev ? 1 : 0, ...(op.prevKv && prev ? { prev } : {}) };
  }
  const iv: KeyInterval =
    op.type === 'deletePrefix' ? { start: op.prefix, end: prefixEnd(op.prefix) } : { start: op.start, end: op.end };
  const gone = w.deleteInterval(iv);
  return { type: 'delete', deleted: gone.length, ...(op.prevKv ? { prevKvs: gone } : {}) };
}

/**
 * The writes of one command. Every write gets revision `base + 1`; the
 * store's revision moves there only if something was written, so a delete
 * that finds nothing (or a read-only txn) leaves it alone. Each write is
 * also an event, numbered in the order it was made.
 */
class Writer {
  private readonly table: KvTable;
  private readonly next: number;
  private readonly events: KvEvent[];
  private seq = 0;
  private wrote = false;

  constructor(table: KvTable, base: number, events: KvEvent[]) {
    this.table = table;
    this.next = base + 1;
    this.events = events;
  }

  private record(type: KvEvent['type'], kv: KeyValue, prev: KeyValue | undefined): void {
    this.events.push({ type, revision: this.next, seq: this.seq++, kv, ...(prev ? { prev } : {}) });
    this.wrote = true;
  }

  private tombstone(prev: KeyValue): void {
    const kv = { key: prev.key, value: NO_BYTES, createRevision: 0, modRevision: this.next, version: 0 };
    this.record('delete', kv, prev);
  }

  /** The store revision after the writes so far. */
  revision(): number {
    return this.wrote ? this.next : this.next - 1;
  }

  /** Puts `value` at `key`, attached to `lease` (or none); returns the record it replaced and the one written. */
  put(key: string, value: Uint8Array, lease: number | undefined): { prev: KeyValue | undefined; kv: KeyValue } {
    const prev = this.table.get(key);
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : this.next,
      modRevision: this.next,
      version: prev ? prev.version + 1 : 1,
      ...(lease !== undefined ? { lease } : {}),
    };
    this.table.put(kv);
    this.record('put', kv, prev);
    return { prev, kv };
  }

  /** Deletes `key`; returns the record deleted. */
  deleteKey(key: string): KeyValue | undefined {
    const prev = this.table.get(key);
    if (prev === undefined) return undefined;
    this.table.delete(key);
    this.tombstone(prev);
    return prev;
  }

  /** Deletes every key in `iv`; returns the records deleted, in key order. */
  deleteInterval(iv: KeyInterval): KeyValue[] {
    if (iv.end !== undefined && compareKeys(iv.start, iv.end) >= 0) return [];
    const gone = this.table.range(iv.start, iv.end);
    for (const kv of gone) {
      this.table.delete(kv.key);
      this.tombstone(kv);
    }
    return gone;
  }
}

/** Lexicographic byte order, as etcd compares values. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
