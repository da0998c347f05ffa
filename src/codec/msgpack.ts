import { Decoder, Encoder } from '@msgpack/msgpack';

/**
 * MessagePack with reused coders, for the hot paths (every envelope,
 * command, log segment and meta row). The library's `encode()` and
 * `decode()` build a new coder per call, and `encode()` a 2 KiB buffer
 * that its result keeps alive: on a busy node that was a few percent of
 * the thread. The coders here are safe to reenter (the library clones a
 * busy one), and their results own their bytes; decoded binary fields are
 * views into the input, as with `decode()`.
 *
 * An encoder's buffer grows to its largest output and stays: after a large
 * one (a catch-up append, a big value) it is replaced, so a node keeps at
 * most RETAIN_BYTES per coder.
 */
const RETAIN_BYTES = 256 * 1024;

let plain = new Encoder();
let compact = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();

/** `encode(value)`: undefined properties are written as nil. */
export function pack(value: unknown): Uint8Array {
  const out = plain.encode(value);
  if (out.byteLength > RETAIN_BYTES) plain = new Encoder();
  return out;
}

/** `encode(value, { ignoreUndefined: true })`: undefined properties are left out. */
export function packCompact(value: unknown): Uint8Array {
  const out = compact.encode(value);
  if (out.byteLength > RETAIN_BYTES) compact = new Encoder({ ignoreUndefined: true });
  return out;
}

/** `decode(bytes)`: throws on malformed or trailing input, as `decode()` does. */
export function unpack(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}
