/**
 * Strict readers for decoded msgpack: each checks one field's type and
 * bounds and throws KvDecodeError naming the field. Shared by the command
 * and snapshot codecs.
 */
import { isWellFormed, utf8Length } from './keys.ts';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './types.ts';

/** Bytes or a value that is not a valid command, snapshot or query; nothing was applied. */
export class KvDecodeError extends Error {
  override readonly name: string = 'KvDecodeError';
}

/** A txn branch writes one key twice (etcd's ErrGRPCDuplicateKey). */
export class DuplicateKeyError extends KvDecodeError {
  override readonly name = 'DuplicateKeyError';
}

export function record(v: unknown, at: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array || v instanceof Map) {
    throw new KvDecodeError(`${at}: expected a map`);
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new KvDecodeError(`${at}: unknown field ${JSON.stringify(k)}`);
  }
  return o;
}

export function array(v: unknown, at: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new KvDecodeError(`${at}: expected an array`);
  if (v.length > max) throw new KvDecodeError(`${at}: more than ${max} items`);
  return v;
}

/** Any well-formed string (a range bound may be empty). */
export function str(v: unknown, at: string, maxBytes = MAX_KEY_BYTES): string {
  if (typeof v !== 'string') throw new KvDecodeError(`${at}: expected a string`);
  if (!isWellFormed(v)) throw new KvDecodeError(`${at}: not well-formed UTF-16 (lone surrogate)`);
  if (utf8Length(v) > maxBytes) throw new KvDecodeError(`${at}: longer than ${maxBytes} bytes`);
  return v;
}

export function optStr(v: unknown, at: string): string | undefined {
  return v === undefined ? undefined : str(v, at);
}

/** A key: a non-empty, well-formed string of at most MAX_KEY_BYTES UTF-8 bytes. */
export function key(v: unknown, at: string): string {
  const s = str(v, at);
  if (s === '') throw new KvDecodeError(`${at}: expected a non-empty key`);
  return s;
}

export function bytes(v: unknown, at: string, maxBytes = MAX_VALUE_BYTES): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new KvDecodeError(`${at}: expected bytes`);
  if (v.byteLength > maxBytes) throw new KvDecodeError(`${at}: larger than ${maxBytes} bytes`);
  return v;
}

export function nat(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new KvDecodeError(`${at}: expected a non-negative integer`);
  return v;
}

/** A lease id: a positive safe integer. */
export function leaseId(v: unknown, at: string): number {
  const n = nat(v, at);
  if (n === 0) throw new KvDecodeError(`${at}: expected a positive lease id`);
  return n;
}

export function bool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new KvDecodeError(`${at}: expected a boolean`);
  return v;
}

/** An optional flag, canonically `true` or absent. */
export function flag(v: unknown, at: string): true | undefined {
  return v === undefined ? undefined : bool(v, at) || undefined;
}

export function oneOf<T extends string>(v: unknown, at: string, options: readonly T[]): T {
  if (typeof v !== 'string' || !(options as readonly string[]).includes(v)) {
    throw new KvDecodeError(`${at}: expected one of ${options.join(', ')}`);
  }
  return v as T;
}
