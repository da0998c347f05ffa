/**
 * etcd's Maintenance.Snapshot: the group's dump (GET /v1/snapshot, the
 * format of src/dump), streamed to the client as SnapshotResponse chunks.
 * etcdctl's `snapshot save FILE` copies the stream to FILE.part and renames
 * it once the call ends OK, so FILE is a durable-raft dump (NDJSON, not
 * etcd's bbolt file): restore it with `durable-raft snapshot restore FILE
 * --group NEW`, never with etcdutl.
 *
 * What the stream guarantees:
 * - It ends OK only once the dump has been read whole and sound (every line
 *   checked as it passes, the trailer's counts and SHA-256 at the end). A
 *   dump that breaks off, or ends with the store's `{"error":…}` line,
 *   ends the call UNAVAILABLE (DATA_LOSS if the store's bytes are not a
 *   sound dump), so etcdctl reports the error and keeps no file.
 * - etcdctl 3.5 and later take a snapshot only if its size is 32 modulo 512
 *   (etcd appends a SHA-256 to a database of whole pages). The bridge pads
 *   the trailer line with spaces before its newline to reach that size:
 *   JSON ignores them and the trailer's checksum covers only the lines
 *   before it, so the file is still a dump every reader of src/dump takes.
 * - Memory holds one chunk and at most one line of the dump: the store's
 *   answer is read only as fast as gRPC takes the chunks (a client that
 *   stops reading stops the read, and so the store's page reads).
 * - `remaining_bytes` is a lower bound (the stream's length is not known
 *   ahead): the next message's size while the dump goes on, 0 on the last.
 *   No header (etcd sends none on this stream), no `version` (etcd 3.6's,
 *   not in our 3.4 protos).
 */
import { DumpError, DumpReader, LineSplitter } from '../dump/index.ts';
import { type BridgeCall, callContext } from './context.ts';
import { internal } from './errors.ts';
import { StreamEnded } from './gateway.ts';
import { Status, type StatusObject, type WritableCall } from './grpc.ts';
import type { Bridge } from './unary.ts';

/** Bytes of dump per SnapshotResponse (etcd sends 32 KiB). */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** etcd's clients check a snapshot's size against these: `size % 512 === 32`. */
const SECTOR_BYTES = 512;
const SHA256_BYTES = 32;
const NEWLINE = 0x0a;
const SPACE = 0x20;

/** Serves one Snapshot call. */
export function snapshot(b: Bridge, call: WritableCall): void {
  const ctx = callContext(call, b.token);
  stream(b, call, ctx).then(
    () => {
      if (!ctx.signal.aborted) call.end();
    },
    (e: unknown) => {
      if (!ctx.signal.aborted) call.emit('error', statusOf(e));
      ctx.abort();
    },
  );
}

/** The spaces to put before the trailer's newline when `before` bytes of the stream come ahead of it. */
export function paddingBytes(before: number): number {
  // before + pad + 1 (the newline) ≡ 32 (mod 512)
  return (((SHA256_BYTES - 1 - before) % SECTOR_BYTES) + SECTOR_BYTES) % SECTOR_BYTES;
}

async function stream(b: Bridge, call: WritableCall, ctx: BridgeCall): Promise<void> {
  const body = await b.gateway.download('/v1/snapshot', ctx);
  const reader = body.getReader();
  // A cancelled call ends a read that waits on the store (a fetch given by a caller may not abort its body).
  const stop = (): void => void reader.cancel().catch(() => {});
  ctx.signal.addEventListener('abort', stop, { once: true });
  const out = new Chunker(call, ctx);
  const lines = new LineSplitter();
  const dump = new DumpReader();
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
        throw brokeOff(out.bytes, e);
      }
      if (next.done) break;
      const chunk = next.value;
      let trailer = false;
      for (const line of lines.push(chunk)) trailer = dump.read(line).kind === 'end' || trailer;
      if (trailer) {
        // The trailer is the last line this chunk completes: whatever follows it fails the dump below.
        const nl = chunk.lastIndexOf(NEWLINE);
        out.add(chunk.subarray(0, nl));
        out.spaces(paddingBytes(out.bytes));
        out.add(chunk.subarray(nl));
      } else out.add(chunk);
      await out.drained();
    }
    dump.finish(lines.end());
    out.finish();
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}

/**
 * Cuts the bytes into SnapshotResponse messages of SNAPSHOT_CHUNK_BYTES,
 * holding the last full one back until the next is known, so each says a
 * true lower bound of what remains and only the last says 0.
 */
class Chunker {
  /** Bytes taken so far. */
  bytes = 0;
  readonly #call: WritableCall;
  readonly #ctx: BridgeCall;
  #buf = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
  #used = 0;
  #held: Uint8Array | undefined;
  #full = false;

  constructor(call: WritableCall, ctx: BridgeCall) {
    this.#call = call;
    this.#ctx = ctx;
  }

  add(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.byteLength; ) {
      const n = Math.min(bytes.byteLength - at, SNAPSHOT_CHUNK_BYTES - this.#used);
      this.#buf.set(bytes.subarray(at, at + n), this.#used);
      this.#used += n;
      at += n;
      this.bytes += n;
      if (this.#used === SNAPSHOT_CHUNK_BYTES) this.#cut();
    }
  }

  spaces(n: number): void {
    this.add(new Uint8Array(n).fill(SPACE));
  }

  /** Settles once gRPC has room for more (at once if it has), or the call is gone. */
  drained(): Promise<void> {
    if (!this.#full || this.#ctx.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#full = false;
        this.#ctx.signal.removeEventListener('abort', done);
        resolve();
      };
      this.#call.once('drain', done);
      this.#ctx.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The dump is whole: the held message, then what is left, the last saying 0. */
  finish(): void {
    const rest = this.#buf.subarray(0, this.#used);
    if (this.#held !== undefined) this.#send(this.#held, rest.byteLength);
    if (rest.byteLength > 0 || this.#held === undefined) this.#send(rest, 0);
    this.#held = undefined;
  }

  #cut(): void {
    const full = this.#buf;
    this.#buf = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
    this.#used = 0;
    if (this.#held !== undefined) this.#send(this.#held, full.byteLength);
    this.#held = full;
  }

  #send(blob: Uint8Array, remaining: number): void {
    if (this.#ctx.signal.aborted) return;
    if (!this.#call.write({ blob, remaining_bytes: remaining })) this.#full = true;
  }
}

/** The store's answer ended by an error of the connection after `bytes` were taken. */
function brokeOff(bytes: number, e: unknown): StreamEnded {
  const why = e instanceof Error ? `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}` : String(e);
  return new StreamEnded({
    code: Status.UNAVAILABLE,
    details: `durable-raft bridge: the dump broke off after ${bytes} bytes (${why}); nothing was saved`,
  });
}

function statusOf(e: unknown): StatusObject {
  if (e instanceof StreamEnded) return e.status;
  if (!(e instanceof DumpError)) return internal(e);
  const s = e.storeError;
  if (s !== undefined)
    return {
      code: Status.UNAVAILABLE,
      details: `durable-raft: the store could not finish the dump (${s.code}: ${s.message})`,
    };
  if (e.message.startsWith('truncated'))
    return { code: Status.UNAVAILABLE, details: `durable-raft bridge: the dump broke off: ${e.message}` };
  return { code: Status.DATA_LOSS, details: `durable-raft bridge: the store's dump is not sound: ${e.message}` };
}
