/**
 * The records the API answers with, as the client hands them out (camelCase,
 * values as bytes and as text), and the one place that decodes them from the
 * API's JSON (snake_case, `value` for UTF-8 text or `value_base64`).
 */

/** A value to write: text (sent as UTF-8) or bytes. */
export type Value = string | Uint8Array;

/** A key's record, etcd-style. */
export interface KeyValue {
  readonly key: string;
  /** The revision that created the key (a lock key's: its fencing token). */
  readonly createRevision: number;
  /** The revision of the last write; the key's ETag. */
  readonly modRevision: number;
  /** Writes since the key was created (1 for a new key). */
  readonly version: number;
  /** The lease the key is attached to (a decimal id), if any. */
  readonly lease?: string;
  /** The value's bytes (empty for keys-only reads and deletes). */
  readonly value: Uint8Array;
  /** The value as text (lossy if it is not UTF-8). */
  readonly text: string;
}

/** A record as the API writes it. */
export interface KeyValueJson {
  key: string;
  create_revision?: number;
  mod_revision: number;
  version?: number;
  lease?: string;
  value?: string;
  value_base64?: string;
}

const utf8 = new TextEncoder();
const lossy = new TextDecoder();

export function kvOf(j: KeyValueJson): KeyValue {
  const value =
    j.value !== undefined
      ? utf8.encode(j.value)
      : j.value_base64 !== undefined
        ? fromBase64(j.value_base64)
        : new Uint8Array(0);
  const text = j.value ?? lossy.decode(value);
  return {
    key: j.key,
    createRevision: j.create_revision ?? 0,
    modRevision: j.mod_revision,
    version: j.version ?? 0,
    ...(j.lease !== undefined ? { lease: j.lease } : {}),
    value,
    text,
  };
}

/** `{value}` for text, `{value_base64}` for bytes: the two ways a JSON body carries a value. */
export function valueJson(v: Value): { value: string } | { value_base64: string } {
  return typeof v === 'string' ? { value: v } : { value_base64: toBase64(v) };
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Read consistency: `linearizable` (the default, through the leader) or `serializable` (any replica, may be stale). */
export type Consistency = 'linearizable' | 'serializable';
