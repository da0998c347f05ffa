/**
 * The txn the CLI reads from stdin, in the API's JSON (snake_case,
 * `value_base64`, `delete_prefix`) or the client's (camelCase), turned into
 * the client's TxnRequest. Only its shape is checked here; the store checks
 * the rest (a bad key or value is its 400).
 */
import type { Compare, TxnOp, TxnRequest } from '../client/index.ts';
import { UsageError } from './args.ts';

const OPS = new Set(['get', 'range', 'put', 'delete', 'deletePrefix', 'deleteRange']);
const BRANCHES = new Set(['compare', 'success', 'failure']);

/** `{compare, success, failure}` from parsed JSON, or a UsageError saying what is wrong with it. */
export function txnRequestOf(json: unknown): TxnRequest {
  const o = objectOf(json, 'the txn');
  for (const k of Object.keys(o))
    if (!BRANCHES.has(k)) throw new UsageError(`the txn has an unknown field ${JSON.stringify(k)}`);
  return {
    compare: listOf(o.compare, 'compare').map((c, i) => compareOf(c, i)),
    success: listOf(o.success, 'success').map((op, i) => opOf(op, `success[${i}]`)),
    failure: listOf(o.failure, 'failure').map((op, i) => opOf(op, `failure[${i}]`)),
  };
}

function compareOf(json: unknown, i: number): Compare {
  const c = camel(objectOf(json, `compare[${i}]`));
  if (c.value === undefined) throw new UsageError(`compare[${i}] needs a value`);
  return c as unknown as Compare;
}

function opOf(json: unknown, where: string): TxnOp {
  const op = camel(objectOf(json, where));
  const names = Object.keys(op);
  if (names.length !== 1 || !OPS.has(names[0] as string))
    throw new UsageError(`${where} must be one of get, range, put, delete, delete_prefix, delete_range`);
  return op as unknown as TxnOp;
}

/** snake_case names to camelCase, and `value_base64` to the value's bytes, all the way down. */
function camel(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'value_base64' || k === 'valueBase64') {
      out.value = bytesOf(v);
      continue;
    }
    const name = k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    out[name] = typeof v === 'object' && v !== null && !Array.isArray(v) ? camel(v as Record<string, unknown>) : v;
  }
  if (typeof out.target === 'string') out.target = out.target.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return out;
}

function bytesOf(v: unknown): Uint8Array {
  if (typeof v !== 'string') throw new UsageError('value_base64 must be a string');
  let bin: string;
  try {
    bin = atob(v);
  } catch {
    throw new UsageError('value_base64 is not base64');
  }
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

function objectOf(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

function listOf(v: unknown, what: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new UsageError(`${what} must be a JSON array`);
  return v;
}
