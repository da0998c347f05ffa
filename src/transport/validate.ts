/** Strict field checks shared by the wire codecs: each throws EnvelopeError naming the field. */

/** A body that is not a valid message: the route answers 400 and nothing reaches the node. */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

export function record(v: unknown, at: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new EnvelopeError(`${at}: expected a map`);
  }
  return v as Record<string, unknown>;
}

export function str(v: unknown, at: string, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v === '') || v.length > 256)
    throw new EnvelopeError(`${at}: expected a string`);
  return v;
}

/**
 * The largest term or index accepted: far beyond any real cluster (2^48
 * elections at one a millisecond take 8,900 years), and far enough below
 * 2^53 that a peer sending an absurd term cannot push a cluster to the end
 * of exact integers, where it could never elect again.
 */
export const MAX_NAT = 2 ** 48;

export function nat(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_NAT)
    throw new EnvelopeError(`${at}: expected an integer in [0, 2^48]`);
  return v;
}

export function pos(v: unknown, at: string): number {
  const n = nat(v, at);
  if (n === 0) throw new EnvelopeError(`${at}: expected a positive integer`);
  return n;
}

export function bool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') throw new EnvelopeError(`${at}: expected a boolean`);
  return v;
}

export function bytes(v: unknown, at: string, max: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength > max) throw new EnvelopeError(`${at}: expected at most ${max} bytes`);
  return v;
}

export function list(v: unknown, at: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) throw new EnvelopeError(`${at}: expected an array of at most ${max}`);
  return v;
}
