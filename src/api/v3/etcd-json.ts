/**
 * etcd's v3 JSON gateway encoding (grpc-gateway over protobuf JSON): bytes
 * in base64, 64-bit integers as decimal strings, fields at their zero value
 * left out, enums by name. And the revision offset: etcd counts an empty
 * store as revision 1, ours as 0, so every revision this face shows is one
 * more than the store's (and every revision it is given, one less).
 */
import type { KeyValue } from '../../kv/index.ts';
import { fromBase64, toBase64 } from '../input.ts';
import { EtcdError } from './etcd-errors.ts';

const enc = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A store revision as etcd shows it. */
export function showRevision(storeRevision: number): string {
  return String(storeRevision + 1);
}

/** A revision etcd's client gave, as the store's (0 stays 0: "now" or "none"). */
export function storeRevision(etcdRevision: number): number {
  return etcdRevision === 0 ? 0 : etcdRevision - 1;
}

/** A key (or range end) as etcd shows it: its UTF-8 bytes in base64. */
export function showKey(key: string): string {
  return toBase64(enc.encode(key));
}

/**
 * The response header. `cluster_id` and `member_id` are stable numbers made
 * from the cluster's name and the member's; `raft_term` is the leader's term.
 */
export interface Header {
  readonly clusterId: string;
  readonly memberId: string;
  readonly raftTerm: number;
}

export function headerJson(h: Header, storeRev?: number): Record<string, string> {
  return {
    cluster_id: h.clusterId,
    member_id: h.memberId,
    ...(storeRev === undefined ? {} : { revision: showRevision(storeRev) }),
    raft_term: String(h.raftTerm),
  };
}

/** mvccpb.KeyValue: zero fields left out (a keys-only or empty value has no `value`). */
export function kvJson(kv: KeyValue, keysOnly = false): Record<string, string> {
  const out: Record<string, string> = {
    key: showKey(kv.key),
    create_revision: showRevision(kv.createRevision),
    mod_revision: showRevision(kv.modRevision),
    version: String(kv.version),
  };
  if (!keysOnly && kv.value.byteLength > 0) out.value = toBase64(kv.value);
  if (kv.lease !== undefined) out.lease = String(kv.lease);
  return out;
}

// ---- reading a request (protobuf JSON: every field optional, zero when absent) ----

/** A JSON number that is not an integer literal (`1.0`, `1e3`): no field of etcd's API takes one. */
export class NotAnInteger {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

/**
 * A request message from its JSON text (protobuf JSON: unknown fields are
 * ignored, as etcd's gateway does; `null` is the empty message).
 */
export function parseMessage(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text, integersOnly);
  } catch {
    throw EtcdError.badJson('malformed JSON request body');
  }
  if (v === null) return {};
  // A number with a fraction or an exponent comes back as a NotAnInteger (see integersOnly): no object either.
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof NotAnInteger)
    throw EtcdError.badJson('expected a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Every field of etcd's API that takes a number is an integer, and Go's
 * decoder refuses `1.0` or `1e3` there, which JSON.parse reads as integers:
 * such a number is kept as its text, so a field that wants an integer
 * refuses it (and an unknown field, ignored, may hold it).
 */
function integersOnly(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === 'number' && context?.source !== undefined && /[.eE]/.test(context.source)
    ? new NotAnInteger(context.source)
    : value;
}

/**
 * Bytes: standard base64 with its padding, as Go's decoder takes it (which
 * skips CR and LF); "" or absent for none.
 */
export function bytesField(o: Record<string, unknown>, name: string): Uint8Array {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null || v === '') return new Uint8Array(0);
  if (typeof v !== 'string') throw EtcdError.badJson(`${name}: expected base64 bytes`);
  try {
    return fromBase64(v.replace(/[\r\n]/g, ''), name);
  } catch {
    throw EtcdError.badJson(`${name}: expected base64 bytes`);
  }
}

/**
 * A key of the store from base64 bytes. Keys are UTF-8 text here (etcd takes
 * any bytes): bytes that are not UTF-8 are refused as an invalid argument.
 */
export function keyOf(bytes: Uint8Array, name: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw EtcdError.invalid(`${name} is not UTF-8 (durable-raft keys are UTF-8 text)`);
  }
}

/**
 * An int64 field: a JSON integer, or one in a string (spaces around it
 * allowed, no leading zeros, as Go's decoder reads it); 0 when absent.
 * Values beyond 2^53 are refused (etcd takes them up to 2^63).
 */
export function intField(o: Record<string, unknown>, name: string): number {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null) return 0;
  const text = typeof v === 'string' ? v.replace(/^ +| +$/g, '') : undefined;
  const n =
    text !== undefined && /^-?(0|[1-9]\d{0,18})$/.test(text) ? Number(text) : typeof v === 'number' ? v : Number.NaN;
  if (!Number.isSafeInteger(n)) throw EtcdError.badJson(`${name}: expected an integer`);
  return n;
}

export function boolField(o: Record<string, unknown>, name: string): boolean {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw EtcdError.badJson(`${name}: expected a boolean`);
  return v;
}

/** An enum field by name or number (`names[i]` has number i); the first name when absent. */
export function enumField<T extends string>(o: Record<string, unknown>, name: string, names: readonly T[]): T {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null) return names[0] as T;
  const i = typeof v === 'number' ? v : names.indexOf(v as T);
  const out = Number.isInteger(i) ? names[i] : undefined;
  if (out === undefined) throw EtcdError.badJson(`${name}: unknown value ${JSON.stringify(v)}`);
  return out;
}

/** A message field: an object, or absent ({}). */
export function messageField(o: Record<string, unknown>, name: string): Record<string, unknown> {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof NotAnInteger)
    throw EtcdError.badJson(`${name}: expected an object`);
  return v as Record<string, unknown>;
}

export function listField(o: Record<string, unknown>, name: string): unknown[] {
  const v = Object.hasOwn(o, name) ? o[name] : undefined;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw EtcdError.badJson(`${name}: expected an array`);
  return v;
}
