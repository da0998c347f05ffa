/** Reading and checking what a client sent: keys, bodies, query strings, JSON. */
import { isWellFormed, type KeyValue, MAX_KEY_BYTES, utf8Length } from '../kv/index.ts';
import { ApiError, badRequest } from './errors.ts';
import { invalidUtf8 } from './request.ts';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** C0 and C1 control characters and DEL. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** A key: 1..4096 UTF-8 bytes, well-formed, no control characters. */
export function checkKey(k: unknown, field: string): string {
  if (typeof k !== 'string') throw badRequest(field, 'expected a string');
  if (k === '') throw badRequest(field, 'expected a non-empty key');
  if (!isWellFormed(k)) throw badRequest(field, 'not well-formed UTF-8');
  if (hasControl(k)) throw badRequest(field, 'control characters are not allowed in keys');
  if (utf8Length(k) > MAX_KEY_BYTES) throw badRequest(field, `longer than ${MAX_KEY_BYTES} bytes`);
  return k;
}

/** A range bound or prefix: like a key, but may be empty where `allowEmpty`. */
export function checkBound(k: unknown, field: string, allowEmpty: boolean): string {
  if (allowEmpty && k === '') return '';
  return checkKey(k, field);
}

/** Reads the body, refusing it (413) past `max` bytes: by Content-Length before reading, else while streaming. */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const len = req.headers.get('content-length');
  if (len !== null) {
    if (!/^\d+$/.test(len)) throw badRequest('Content-Length', 'expected a number');
    if (Number(len) > max) throw tooLarge(max);
  }
  if (!req.body) return new Uint8Array(0);
  if (len !== null) {
    // Framed by its declared length, already checked: read it whole (a stream reader costs a promise per chunk).
    const whole = new Uint8Array(await req.arrayBuffer());
    if (whole.byteLength > max) throw tooLarge(max);
    return whole;
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(max);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export function tooLarge(max: number, what = 'body'): ApiError {
  return new ApiError(413, 'too_large', `${what} larger than ${max} bytes`);
}

/**
 * Parses a JSON object body (400 for malformed JSON). The media type is not
 * enforced: curl's `-d` says application/x-www-form-urlencoded.
 */
export async function readJson(req: Request, max: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, max);
  let text: string;
  try {
    text = strictUtf8.decode(body);
  } catch {
    throw invalidUtf8('body');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    // The parser's message is not ours to show; say what is wrong with the request.
    throw badRequest('body', 'malformed JSON');
  }
  return obj(v, 'body');
}

export function obj(v: unknown, field: string, allowed?: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(field, 'expected an object');
  const o = v as Record<string, unknown>;
  if (allowed)
    for (const k of Object.keys(o)) if (!allowed.includes(k)) throw badRequest(`${field}.${k}`, 'unknown field');
  return o;
}

export function nat(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw badRequest(field, 'expected a non-negative integer');
  return v;
}

export function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw badRequest(field, 'expected a boolean');
  return v;
}

export function optBool(v: unknown, field: string): boolean | undefined {
  return v === undefined ? undefined : bool(v, field);
}

const enc = new TextEncoder();

/** A value given as `value` (UTF-8 text) or `value_base64`: exactly one. */
export function valueField(
  o: Record<string, unknown>,
  field: string,
  max: number,
  required = true,
): Uint8Array | undefined {
  const text = o.value;
  const b64 = o.value_base64;
  if (text !== undefined && b64 !== undefined) throw badRequest(field, 'give value or value_base64, not both');
  let bytes: Uint8Array;
  if (text !== undefined) {
    if (typeof text !== 'string') throw badRequest(`${field}.value`, 'expected a string');
    if (!isWellFormed(text)) throw badRequest(`${field}.value`, 'not well-formed UTF-16');
    bytes = enc.encode(text);
  } else if (b64 !== undefined) {
    if (typeof b64 !== 'string') throw badRequest(`${field}.value_base64`, 'expected a base64 string');
    bytes = fromBase64(b64, `${field}.value_base64`);
  } else {
    if (required) throw badRequest(`${field}.value`, 'required (or value_base64)');
    return undefined;
  }
  if (bytes.byteLength > max) throw tooLarge(max, `${field}.value`);
  return bytes;
}

export function fromBase64(s: string, field: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw badRequest(field, 'expected base64');
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

/** A record as JSON: `value` as text if it is UTF-8, else `value_base64`. */
export function kvJson(kv: KeyValue, keysOnly = false): Record<string, unknown> {
  const out: Record<string, unknown> = {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
  };
  if (kv.lease !== undefined) out.lease = String(kv.lease);
  if (keysOnly) return out;
  try {
    out.value = strictUtf8.decode(kv.value);
  } catch {
    out.value_base64 = toBase64(kv.value);
  }
  return out;
}

/**
 * A lease id as JSON gives it: a decimal string (as the API answers it; etcd's
 * int64 does not fit a JSON number) or a number, positive and at most 2^53-1.
 * 0 (or "0") is no lease, as in etcd.
 */
export function leaseIdOf(v: unknown, field: string): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\d{1,16}$/.test(v)) n = Number(v);
  else throw badRequest(field, 'expected a lease id: a decimal string or a non-negative integer');
  if (!Number.isSafeInteger(n) || n < 0) throw badRequest(field, 'expected a lease id below 2^53');
  return n === 0 ? undefined : n;
}

export function queryBool(q: Map<string, string>, name: string): boolean {
  const v = q.get(name);
  if (v === undefined) return false;
  if (v === 'true' || v === '1' || v === '') return true;
  if (v === 'false' || v === '0') return false;
  throw badRequest(name, 'expected true or false');
}

export function queryInt(q: Map<string, string>, name: string, min: number, max: number): number | undefined {
  const v = q.get(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw badRequest(name, `expected an integer ${min}..${max}`);
  const n = Number(v);
  if (n < min || n > max) throw badRequest(name, `expected an integer ${min}..${max}`);
  return n;
}
