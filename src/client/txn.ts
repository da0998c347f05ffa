/**
 * POST /v1/txn, etcd's transaction: if every compare holds, the `success`
 * ops run, else the `failure` ops. The client's shapes are the API's with
 * camelCase names; this file alone translates them.
 */
import type { Transport } from './http.ts';
import { type KeyValue, type KeyValueJson, kvOf, type Value, valueJson } from './types.ts';

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';

export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly op: '=' | '!=' | '<' | '>';
  /** A value for target `value`; a lease id (decimal string) or number for `lease`; a number otherwise. */
  readonly value: Value | number;
}

export type TxnOp =
  | { readonly get: { readonly key: string } }
  | {
      readonly range: {
        readonly prefix?: string;
        readonly start?: string;
        readonly end?: string;
        readonly limit?: number;
        readonly keysOnly?: boolean;
        readonly countOnly?: boolean;
      };
    }
  | {
      readonly put: { readonly key: string; readonly value: Value; readonly lease?: string; readonly prevKv?: boolean };
    }
  | { readonly delete: { readonly key: string; readonly prevKv?: boolean } }
  | { readonly deletePrefix: { readonly prefix: string; readonly prevKv?: boolean } }
  | { readonly deleteRange: { readonly start: string; readonly end: string; readonly prevKv?: boolean } };

export interface TxnRequest {
  readonly compare?: readonly Compare[];
  readonly success?: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export type TxnOpResult =
  | { readonly type: 'get'; readonly kv: KeyValue | undefined }
  | { readonly type: 'range'; readonly kvs: KeyValue[]; readonly count: number; readonly more: boolean }
  | { readonly type: 'put'; readonly prevKv?: KeyValue }
  | { readonly type: 'delete'; readonly deleted: number; readonly prevKv?: KeyValue; readonly prevKvs?: KeyValue[] }
  | { readonly type: 'txn'; readonly succeeded: boolean; readonly results: TxnOpResult[] };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  readonly results: TxnOpResult[];
}

/** A txn, sent with an Idempotency-Key (the route takes one) and retried like any write. */
export async function txn(t: Transport, r: TxnRequest): Promise<TxnResult> {
  const a = await t.request({
    method: 'POST',
    path: '/v1/txn',
    json: {
      compare: (r.compare ?? []).map(compareJson),
      success: (r.success ?? []).map(opJson),
      failure: (r.failure ?? []).map(opJson),
    },
    retry: 'keyed',
  });
  const b = a.body as { succeeded: boolean; revision: number; results: ResultJson[] };
  return { succeeded: b.succeeded, revision: b.revision, results: b.results.map(resultOf) };
}

const TARGET_JSON = new Map<CompareTarget, string>([
  ['value', 'value'],
  ['version', 'version'],
  ['createRevision', 'create_revision'],
  ['modRevision', 'mod_revision'],
  ['lease', 'lease'],
]);

function compareJson(c: Compare): Record<string, unknown> {
  const target = TARGET_JSON.get(c.target);
  if (target === undefined) throw new TypeError(`unknown compare target ${String(c.target)}`);
  const value = typeof c.value === 'number' ? { value: c.value } : valueJson(c.value);
  return { key: c.key, target, op: c.op, ...value };
}

function opJson(op: TxnOp): Record<string, unknown> {
  if (Object.hasOwn(op, 'get')) return { get: (op as { get: { key: string } }).get };
  if (Object.hasOwn(op, 'range')) {
    const r = (op as Extract<TxnOp, { range: unknown }>).range;
    return {
      range: defined({
        prefix: r.prefix,
        start: r.start,
        end: r.end,
        limit: r.limit,
        keys_only: r.keysOnly,
        count_only: r.countOnly,
      }),
    };
  }
  if (Object.hasOwn(op, 'put')) {
    const p = (op as Extract<TxnOp, { put: unknown }>).put;
    return { put: defined({ key: p.key, ...valueJson(p.value), lease: p.lease, prev_kv: p.prevKv }) };
  }
  if (Object.hasOwn(op, 'delete')) {
    const d = (op as Extract<TxnOp, { delete: unknown }>).delete;
    return { delete: defined({ key: d.key, prev_kv: d.prevKv }) };
  }
  if (Object.hasOwn(op, 'deletePrefix')) {
    const d = (op as Extract<TxnOp, { deletePrefix: unknown }>).deletePrefix;
    return { delete_prefix: defined({ prefix: d.prefix, prev_kv: d.prevKv }) };
  }
  if (Object.hasOwn(op, 'deleteRange')) {
    const d = (op as Extract<TxnOp, { deleteRange: unknown }>).deleteRange;
    return { delete_range: defined({ start: d.start, end: d.end, prev_kv: d.prevKv }) };
  }
  throw new TypeError('a txn op must be one of get, range, put, delete, deletePrefix, deleteRange');
}

interface ResultJson {
  type: string;
  kv?: KeyValueJson | null;
  kvs?: KeyValueJson[];
  count?: number;
  more?: boolean;
  prev_kv?: KeyValueJson;
  prev_kvs?: KeyValueJson[];
  deleted?: number;
  succeeded?: boolean;
  results?: ResultJson[];
}

function resultOf(r: ResultJson): TxnOpResult {
  switch (r.type) {
    case 'get':
      return { type: 'get', kv: r.kv ? kvOf(r.kv) : undefined };
    case 'range':
      return { type: 'range', kvs: (r.kvs ?? []).map(kvOf), count: r.count ?? 0, more: r.more ?? false };
    case 'put':
      return { type: 'put', ...(r.prev_kv ? { prevKv: kvOf(r.prev_kv) } : {}) };
    case 'delete':
      return {
        type: 'delete',
        deleted: r.deleted ?? 0,
        ...(r.prev_kv ? { prevKv: kvOf(r.prev_kv) } : {}),
        ...(r.prev_kvs ? { prevKvs: r.prev_kvs.map(kvOf) } : {}),
      };
    default:
      return { type: 'txn', succeeded: r.succeeded ?? false, results: (r.results ?? []).map(resultOf) };
  }
}

/** The object without its undefined fields (the API refuses nothing for them, but keeps bodies small). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
