/**
 * etcd's TxnRequest as a state machine txn: compares and request ops, with
 * etcd's limits and the revision offset applied to compared revisions.
 */
import { type Compare, MAX_TXN_OPS, type TxnCommand, type TxnOp } from '../../kv/index.ts';
import { ETCD, EtcdError } from './etcd-errors.ts';
import { bytesField, enumField, intField, keyOf, listField, messageField, NotAnInteger } from './etcd-json.ts';
import { type EtcdRange, intervalOf, needsAll, readRevision, reorderedLimit } from './range.ts';
import { deleteOf, putOf, rangeOf } from './requests.ts';

const RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const;
const TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;
const OP: Record<(typeof RESULTS)[number], Compare['op']> = { EQUAL: '=', GREATER: '>', LESS: '<', NOT_EQUAL: '!=' };
/** A revision no key reaches: `x != NEVER` always holds. */
export const NEVER = Number.MAX_SAFE_INTEGER;

export function txnOf(m: Record<string, unknown>): TxnCommand {
  const compares = listField(m, 'compare');
  const success = listField(m, 'success');
  const failure = listField(m, 'failure');
  if (compares.length > MAX_TXN_OPS || success.length > MAX_TXN_OPS || failure.length > MAX_TXN_OPS)
    throw ETCD.tooManyOps();
  return {
    type: 'txn',
    compare: compares.map((c) => compareOf(asMessage(c))),
    success: success.map((op) => opOf(asMessage(op))),
    failure: failure.map((op) => opOf(asMessage(op))),
  };
}

function asMessage(v: unknown): Record<string, unknown> {
  // A number with a fraction or an exponent is a NotAnInteger object here (see parseMessage): no message either.
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof NotAnInteger)
    throw EtcdError.badJson('expected an object');
  return v as Record<string, unknown>;
}

/**
 * An etcd Compare. Compared create and mod revisions are etcd's, one more
 * than the store's for a key that exists, and 0 for one that does not (as
 * in the store): so `x op v` becomes `x op v-1` for v >= 2, and the few
 * values below that, which only a missing key (or none) can meet, become
 * compares with the same truth.
 */
function compareOf(c: Record<string, unknown>): Compare {
  const key = keyOf(bytesField(c, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const end = bytesField(c, 'range_end');
  const over = end.byteLength === 0 ? {} : { rangeEnd: keyOf(end, 'range_end') };
  const op = OP[enumField(c, 'result', RESULTS)];
  const target = enumField(c, 'target', TARGETS);
  const compare = ((): Compare => {
    switch (target) {
      case 'VALUE':
        return { key, target: 'value', op, value: bytesField(c, 'value') };
      case 'VERSION':
        return numeric(key, 'version', op, intField(c, 'version'));
      case 'LEASE':
        return numeric(key, 'lease', op, intField(c, 'lease'));
      case 'CREATE':
        return revisionCompare(key, 'createRevision', op, intField(c, 'create_revision'));
      case 'MOD':
        return revisionCompare(key, 'modRevision', op, intField(c, 'mod_revision'));
    }
  })();
  return { ...compare, ...over };
}

/** `x op v` for a count that is never negative: a negative v is always or never met. */
function numeric(key: string, target: Compare['target'], op: Compare['op'], v: number): Compare {
  if (v >= 0) return { key, target, op, value: v };
  const always = op === '!=' || op === '>';
  return always ? { key, target, op: '!=', value: NEVER } : { key, target, op: '<', value: 0 };
}

function revisionCompare(key: string, target: Compare['target'], op: Compare['op'], v: number): Compare {
  if (v >= 2) return { key, target, op, value: v - 1 };
  if (v === 0) return { key, target, op, value: 0 };
  if (v < 0) return numeric(key, target, op, v);
  // v = 1: an existing key is at 2 or more, a missing one at 0.
  switch (op) {
    case '=':
      return { key, target, op: '<', value: 0 };
    case '!=':
      return { key, target, op: '!=', value: NEVER };
    case '<':
      return { key, target, op: '=', value: 0 };
    case '>':
      return { key, target, op: '>', value: 0 };
  }
}

/**
 * The range ops of a txn that sort or filter (etcd's concurrency.Mutex asks
 * for the oldest waiter, sorted by create revision, limit 1): the op reads
 * the whole interval, and its answer is shaped (range.ts) by the request
 * kept here, as /v3/kv/range shapes a plain range.
 */
const SHAPED = new WeakMap<TxnOp, EtcdRange>();

/** The etcd range request a txn's range op is to be shaped by, if it sorts or filters. */
export function shapeOf(op: TxnOp): EtcdRange | undefined {
  return SHAPED.get(op);
}

/** An etcd RequestOp: one of request_range, request_put, request_delete_range, request_txn. */
function opOf(o: Record<string, unknown>): TxnOp {
  if (Object.hasOwn(o, 'request_range')) {
    const r = messageField(o, 'request_range');
    const range = rangeOf(r);
    const { start, end } = intervalOf(range);
    const at = readRevision(range);
    const revision = at === undefined ? {} : { revision: at };
    if (!range.countOnly && needsAll(range)) {
      // A sort or a revision filter: the state machine reads every record of the interval, shaped as it is answered.
      const op: TxnOp = { type: 'range', start, end, ...revision };
      SHAPED.set(op, range);
      return op;
    }
    const limit = reorderedLimit(range) ?? range.limit;
    const op: TxnOp = {
      type: 'range',
      start,
      end,
      ...(limit > 0 && !range.countOnly ? { limit } : {}),
      ...(range.keysOnly && range.sortTarget !== 'VALUE' ? { keysOnly: true } : {}),
      ...(range.countOnly ? { countOnly: true } : {}),
      ...revision,
    };
    // A sort target without an order: the limit's records and one more, sorted ascending by it, cut as answered.
    if (!range.countOnly && range.sortTarget !== 'KEY') SHAPED.set(op, range);
    return op;
  }
  if (Object.hasOwn(o, 'request_put')) return putOf(messageField(o, 'request_put'));
  if (Object.hasOwn(o, 'request_delete_range')) return deleteOf(messageField(o, 'request_delete_range'));
  if (Object.hasOwn(o, 'request_txn')) return txnOf(messageField(o, 'request_txn'));
  throw EtcdError.invalid('etcdserver: request op is empty');
}
