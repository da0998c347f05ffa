/** JSON request bodies (snake_case, etcd-shaped) to state machine commands, and results back to JSON. */
import type { CasExpect, Compare, KvCommand, RangeResult, TxnCommand, TxnOp, TxnOpResult } from '../kv/index.ts';
import { MAX_TXN_OPS, prefixEnd } from '../kv/index.ts';
import { hasRole, intervalAllowed, keyAllowed, type Principal } from './auth.ts';
import { ApiError, badRequest } from './errors.ts';
import { checkBound, checkKey, kvJson, leaseIdOf, nat, obj, optBool, valueField } from './input.ts';

export function forbidden(message: string): ApiError {
  return new ApiError(403, 'forbidden', message);
}

export function needKey(p: Principal, key: string, field: string): void {
  if (!keyAllowed(p, key)) throw forbidden(`${field}: key outside the token's prefixes`);
}

/** Every key of a lease (revoking deletes them all, as etcd's auth sees it). */
export function needKeys(p: Principal, keys: readonly string[]): void {
  for (const k of keys) needKey(p, k, 'lease keys');
}

export function needInterval(p: Principal, start: string, end: string | undefined, field: string): void {
  if (!intervalAllowed(p, start, end)) throw forbidden(`${field}: range outside the token's prefixes`);
}

export function needRole(p: Principal, role: 'read' | 'write' | 'admin'): void {
  if (!hasRole(p, role)) throw forbidden(`this needs the ${role} role`);
}

/**
 * POST /v1/cas: `{ key, value | value_base64, expect: { value | value_base64
 * | mod_revision | version | absent }, lease? }`.
 */
export function casCommand(body: Record<string, unknown>, p: Principal, maxValue: number): KvCommand {
  const o = obj(body, 'body', ['key', 'value', 'value_base64', 'expect', 'lease']);
  const key = checkKey(o.key, 'key');
  needKey(p, key, 'key');
  const value = valueField(o, 'body', maxValue) as Uint8Array;
  const e = obj(o.expect, 'expect', ['value', 'value_base64', 'mod_revision', 'version', 'absent']);
  const given = Object.keys(e).filter((k) => e[k] !== undefined);
  if (given.length !== 1)
    throw badRequest('expect', 'expected exactly one of value, value_base64, mod_revision, version, absent');
  let expect: CasExpect;
  if (e.mod_revision !== undefined) expect = { modRevision: nat(e.mod_revision, 'expect.mod_revision') };
  else if (e.version !== undefined) expect = { version: nat(e.version, 'expect.version') };
  else if (e.absent !== undefined) {
    if (e.absent !== true) throw badRequest('expect.absent', 'expected true');
    expect = { absent: true };
  } else expect = { value: valueField(e, 'expect', maxValue) as Uint8Array };
  const lease = o.lease === undefined ? undefined : leaseIdOf(o.lease, 'lease');
  return { type: 'cas', key, expect, value, lease };
}

/** Compare targets and ops by their JSON names (Maps: inherited names like toString select nothing). */
const TARGETS = new Map<string, Compare['target']>([
  ['value', 'value'],
  ['version', 'version'],
  ['create_revision', 'createRevision'],
  ['mod_revision', 'modRevision'],
  ['lease', 'lease'],
]);
const OPS = new Set<string>(['=', '!=', '<', '>']);

/** POST /v1/txn: etcd's Txn in JSON. */
export function txnCommand(
  body: Record<string, unknown>,
  p: Principal,
  maxValue: number,
): { cmd: TxnCommand; writes: boolean } {
  const o = obj(body, 'body', ['compare', 'success', 'failure']);
  const compare = list(o.compare, 'compare').map((c, i) => compareOf(c, `compare[${i}]`, p, maxValue));
  let writes = false;
  const branch = (v: unknown, at: string): TxnOp[] =>
    list(v, at).map((op, i) => {
      const r = txnOp(op, `${at}[${i}]`, p, maxValue);
      if (r.type !== 'get' && r.type !== 'range') writes = true;
      return r;
    });
  const success = branch(o.success, 'success');
  const failure = branch(o.failure, 'failure');
  return { cmd: { type: 'txn', compare, success, failure }, writes };
}

function list(v: unknown, field: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw badRequest(field, 'expected an array');
  if (v.length > MAX_TXN_OPS) throw badRequest(field, `more than ${MAX_TXN_OPS} items`);
  return v;
}

function compareOf(v: unknown, at: string, p: Principal, maxValue: number): Compare {
  const o = obj(v, at, ['key', 'target', 'op', 'value', 'value_base64']);
  const key = checkKey(o.key, `${at}.key`);
  needKey(p, key, `${at}.key`);
  const target = typeof o.target === 'string' ? TARGETS.get(o.target) : undefined;
  if (target === undefined) throw badRequest(`${at}.target`, `expected one of ${[...TARGETS.keys()].join(', ')}`);
  if (typeof o.op !== 'string' || !OPS.has(o.op))
    throw badRequest(`${at}.op`, `expected one of ${[...OPS].join(', ')}`);
  const op = o.op as Compare['op'];
  if (target === 'value') return { key, target, op, value: valueField(o, at, maxValue) as Uint8Array };
  if (o.value_base64 !== undefined) throw badRequest(`${at}.value_base64`, 'only for target value');
  if (target === 'lease') return { key, target, op, value: leaseIdOf(o.value, `${at}.value`) ?? 0 };
  return { key, target, op, value: nat(o.value, `${at}.value`) };
}

const OP_NAMES = ['get', 'range', 'put', 'delete', 'delete_prefix', 'delete_range'] as const;
const OP_NAME_SET: ReadonlySet<string> = new Set(OP_NAMES);

function txnOp(v: unknown, at: string, p: Principal, maxValue: number): TxnOp {
  const wrapper = obj(v, at);
  const names = Object.keys(wrapper);
  const name = names[0];
  if (names.length !== 1 || name === undefined || !OP_NAME_SET.has(name))
    throw badRequest(at, `expected an object with exactly one of ${OP_NAMES.join(', ')}`);
  const f = `${at}.${name}`;
  switch (name as (typeof OP_NAMES)[number]) {
    case 'get': {
      const o = obj(wrapper[name], f, ['key']);
      const key = checkKey(o.key, `${f}.key`);
      needKey(p, key, `${f}.key`);
      return { type: 'get', key };
    }
    case 'range': {
      const o = obj(wrapper[name], f, ['prefix', 'start', 'end', 'limit', 'keys_only', 'count_only']);
      const q = rangeBounds(o, f, p);
      const limit = o.limit === undefined ? undefined : nat(o.limit, `${f}.limit`);
      return {
        type: 'range',
        ...q,
        limit: limit === 0 ? undefined : limit,
        keysOnly: optBool(o.keys_only, `${f}.keys_only`),
        countOnly: optBool(o.count_only, `${f}.count_only`),
      };
    }
    case 'put': {
      const o = obj(wrapper[name], f, ['key', 'value', 'value_base64', 'lease', 'prev_kv']);
      const key = checkKey(o.key, `${f}.key`);
      needKey(p, key, `${f}.key`);
      return {
        type: 'put',
        key,
        value: valueField(o, f, maxValue) as Uint8Array,
        lease: o.lease === undefined ? undefined : leaseIdOf(o.lease, `${f}.lease`),
        prevKv: optBool(o.prev_kv, `${f}.prev_kv`),
      };
    }
    case 'delete': {
      const o = obj(wrapper[name], f, ['key', 'prev_kv']);
      const key = checkKey(o.key, `${f}.key`);
      needKey(p, key, `${f}.key`);
      return { type: 'delete', key, prevKv: optBool(o.prev_kv, `${f}.prev_kv`) };
    }
    case 'delete_prefix': {
      const o = obj(wrapper[name], f, ['prefix', 'prev_kv']);
      const prefix = checkKey(o.prefix, `${f}.prefix`);
      needInterval(p, prefix, prefixEnd(prefix), `${f}.prefix`);
      return { type: 'deletePrefix', prefix, prevKv: optBool(o.prev_kv, `${f}.prev_kv`) };
    }
    case 'delete_range': {
      const o = obj(wrapper[name], f, ['start', 'end', 'prev_kv']);
      const start = checkBound(o.start, `${f}.start`, true);
      const end = checkBound(o.end, `${f}.end`, true);
      needInterval(p, start, end, `${f}`);
      return { type: 'deleteRange', start, end, prevKv: optBool(o.prev_kv, `${f}.prev_kv`) };
    }
  }
}

/** `prefix` or `start`/`end` (or neither: every key), checked against the principal. */
export function rangeBounds(
  o: Record<string, unknown>,
  at: string,
  p: Principal,
): { prefix?: string; start?: string; end?: string } {
  if (o.prefix !== undefined && (o.start !== undefined || o.end !== undefined))
    throw badRequest(`${at}.prefix`, 'give prefix or start/end, not both');
  if (o.prefix !== undefined) {
    const prefix = checkKey(o.prefix, `${at}.prefix`);
    needInterval(p, prefix, prefixEnd(prefix), `${at}.prefix`);
    return { prefix };
  }
  const start = o.start === undefined ? undefined : checkBound(o.start, `${at}.start`, true);
  const end = o.end === undefined ? undefined : checkBound(o.end, `${at}.end`, false);
  needInterval(p, start ?? '', end, at);
  return { start, end };
}

export function rangeJson(r: RangeResult, keysOnly: boolean): Record<string, unknown> {
  return { kvs: r.kvs.map((kv) => kvJson(kv, keysOnly)), count: r.count, more: r.more };
}

export function txnResultJson(r: TxnOpResult): Record<string, unknown> {
  switch (r.type) {
    case 'txn':
      return { type: 'txn', succeeded: r.succeeded, results: r.results.map(txnResultJson) };
    case 'get':
      return { type: 'get', kv: r.kv ? kvJson(r.kv) : null };
    case 'range':
      return { type: 'range', ...rangeJson(r, false), ...(r.next !== undefined ? { next: r.next } : {}) };
    case 'put':
      return { type: 'put', ...(r.prev ? { prev_kv: kvJson(r.prev) } : {}) };
    case 'delete':
      return {
        type: 'delete',
        deleted: r.deleted,
        ...(r.prev ? { prev_kv: kvJson(r.prev) } : {}),
        ...(r.prevKvs ? { prev_kvs: r.prevKvs.map((kv) => kvJson(kv)) } : {}),
      };
  }
}
