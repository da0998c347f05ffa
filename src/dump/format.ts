/**
 * A group's dump (GET /v1/snapshot, POST /v1/groups/{name}/restore): JSON
 * lines (NDJSON), each ended by a newline, in this order:
 *
 *   {"format":"durable-raft-dump","version":1,"group":G,"revision":N,"taken_at":ISO}
 *   {"lease":{"id":"7","ttl":30,"remaining":12}}       (before the first key that names it)
 *   {"kv":{"key":…,"value"|"value_base64":…,"create_revision":…,"mod_revision":…,"version":…,"lease"?:…}}
 *   …
 *   {"end":{"keys":K,"leases":L,"sha256":"<hex of every byte before this line>"}}
 *
 * A dump cut short by the store ends with `{"error":{"code","message"}}`
 * instead of the trailer. This file checks the framing only (order, counts,
 * checksum); what a lease or a key line holds is the reader's to check.
 * No I/O and no platform API: the Worker, the client and the CLI share it.
 */
import { Sha256 } from './sha256.ts';

export const DUMP_FORMAT = 'durable-raft-dump';
export const DUMP_VERSION = 1;
/**
 * The longest line read, in bytes: a 1 MiB value written as JSON text is at
 * most 6 MiB (`\u0001` for every byte), its key at most 24 KiB.
 */
export const MAX_DUMP_LINE_BYTES = 8 * 1024 * 1024;

export interface DumpHeader {
  readonly format: typeof DUMP_FORMAT;
  readonly version: number;
  /** The group dumped. */
  readonly group: string;
  /** The revision the dump is the store as of. */
  readonly revision: number;
  /** When the dump began (ISO 8601). */
  readonly taken_at: string;
}

/**
 * A lease as the dump gives it: its granted TTL and the whole seconds it had
 * left by the leader's clock when the dump read it (leases are not
 * versioned). A lease already gone then is `ttl` 0, `remaining` 0.
 */
export interface DumpLease {
  readonly id: string;
  readonly ttl: number;
  readonly remaining: number;
}

export interface DumpEnd {
  readonly keys: number;
  readonly leases: number;
  readonly sha256: string;
}

/** One line of a dump, as read. */
export type DumpLine =
  | { readonly kind: 'header'; readonly header: DumpHeader }
  | { readonly kind: 'lease'; readonly lease: Readonly<Record<string, unknown>> }
  | { readonly kind: 'kv'; readonly kv: Readonly<Record<string, unknown>> }
  | { readonly kind: 'end'; readonly end: DumpEnd };

/** A dump that is not whole and sound: truncated, corrupted, of another format, or ended by the store's error. */
export class DumpError extends Error {
  override readonly name = 'DumpError';
  /** The store's error, when the dump ends with an `error` line instead of its trailer. */
  readonly storeError: { readonly code: string; readonly message: string } | undefined;

  constructor(message: string, storeError?: { code: string; message: string }) {
    super(message);
    this.storeError = storeError;
  }
}

const NEWLINE = 0x0a;
const NEWLINE_BYTES = new Uint8Array([NEWLINE]);
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Cuts a byte stream into lines without their newlines. Memory holds at most
 * one line (MAX_DUMP_LINE_BYTES): a longer one is refused.
 */
export class LineSplitter {
  private readonly maxLineBytes: number;
  private parts: Uint8Array[] = [];
  private partBytes = 0;
  /** Lines cut so far (for messages). */
  lines = 0;

  constructor(maxLineBytes = MAX_DUMP_LINE_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  /** The lines `chunk` completes, in order. They may share `chunk`'s memory: use them before the next push. */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, nl);
      this.checkLength(this.partBytes + piece.byteLength);
      out.push(this.parts.length === 0 ? piece : this.joined(piece));
      this.lines++;
      start = nl + 1;
    }
    if (start < chunk.byteLength) {
      const rest = chunk.slice(start);
      this.checkLength(this.partBytes + rest.byteLength);
      this.parts.push(rest);
      this.partBytes += rest.byteLength;
    }
    return out;
  }

  /** At the end of the stream: the bytes after the last newline (a line cut short), if any. */
  end(): Uint8Array | undefined {
    if (this.partBytes === 0) return undefined;
    return this.joined(new Uint8Array(0));
  }

  private joined(last: Uint8Array): Uint8Array {
    const out = new Uint8Array(this.partBytes + last.byteLength);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    out.set(last, at);
    this.parts = [];
    this.partBytes = 0;
    return out;
  }

  private checkLength(n: number): void {
    if (n > this.maxLineBytes)
      throw new DumpError(`line ${this.lines + 1} is longer than ${this.maxLineBytes} bytes: not a dump`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Reads a dump a line at a time: checks its header, its order, and at its
 * trailer the counts and the checksum of every byte before it. Each method
 * throws a DumpError naming the line when the dump is not sound there.
 */
export class DumpReader {
  private readonly hash = new Sha256();
  /** Lines read so far: the number of the last one. */
  line = 0;
  keys = 0;
  leases = 0;
  header: DumpHeader | undefined;
  end: DumpEnd | undefined;

  /** Reads one line (without its newline). */
  read(bytes: Uint8Array): DumpLine {
    this.line++;
    if (this.end) throw this.error('more lines after the trailer');
    let v: unknown;
    try {
      v = JSON.parse(strictUtf8.decode(bytes));
    } catch {
      throw this.error(this.line === 1 ? 'not JSON: not a durable-raft dump' : 'not a line of JSON (corrupted)');
    }
    if (!isObject(v)) throw this.error('expected a JSON object');
    if (this.line === 1) {
      this.header = headerOf(v, (m) => this.error(m));
      this.take(bytes);
      return { kind: 'header', header: this.header };
    }
    const names = Object.keys(v);
    const name = names[0];
    const body = name === undefined ? undefined : v[name];
    if (names.length !== 1 || !isObject(body)) throw this.error('expected one of {"lease":…}, {"kv":…}, {"end":…}');
    if (name === 'lease') {
      this.leases++;
      this.take(bytes);
      return { kind: 'lease', lease: body };
    }
    if (name === 'kv') {
      this.keys++;
      this.take(bytes);
      return { kind: 'kv', kv: body };
    }
    if (name === 'end') {
      this.end = this.checkEnd(body);
      return { kind: 'end', end: this.end };
    }
    if (name === 'error') {
      const code = typeof body.code === 'string' ? body.code : 'error';
      const message = typeof body.message === 'string' ? body.message : '';
      throw new DumpError(`the dump ends with the store's error (${code}: ${message}): it is incomplete`, {
        code,
        message,
      });
    }
    throw this.error('expected one of {"lease":…}, {"kv":…}, {"end":…}');
  }

  /** Once the stream has ended (`rest`: bytes after its last newline): the header and trailer of a whole dump. */
  finish(rest?: Uint8Array): { header: DumpHeader; end: DumpEnd } {
    if (rest !== undefined && rest.byteLength > 0)
      throw new DumpError(`truncated: line ${this.line + 1} is cut short (no newline at its end)`);
    if (!this.header) throw new DumpError('empty: not a durable-raft dump');
    if (!this.end) throw new DumpError(`truncated: no trailer after line ${this.line} (the dump was cut short)`);
    return { header: this.header, end: this.end };
  }

  private take(bytes: Uint8Array): void {
    this.hash.update(bytes).update(NEWLINE_BYTES);
  }

  private checkEnd(body: Record<string, unknown>): DumpEnd {
    for (const k of Object.keys(body))
      if (k !== 'keys' && k !== 'leases' && k !== 'sha256') throw this.error(`trailer: unknown field ${k}`);
    const { keys, leases, sha256 } = body;
    if (!isCount(keys) || !isCount(leases) || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256))
      throw this.error('trailer: expected {"keys":K,"leases":L,"sha256":"<64 hex digits>"}');
    if (keys !== this.keys) throw this.error(`trailer: it counts ${keys} keys, the dump holds ${this.keys}`);
    if (leases !== this.leases) throw this.error(`trailer: it counts ${leases} leases, the dump holds ${this.leases}`);
    if (sha256 !== this.hash.hex()) throw this.error('trailer: the checksum does not match (corrupted)');
    return { keys, leases, sha256 };
  }

  private error(message: string): DumpError {
    return new DumpError(`line ${this.line}: ${message}`);
  }
}

function headerOf(v: Record<string, unknown>, error: (m: string) => DumpError): DumpHeader {
  if (v.format !== DUMP_FORMAT) throw error(`not a durable-raft dump (format ${JSON.stringify(v.format)})`);
  if (v.version !== DUMP_VERSION)
    throw error(`dump version ${JSON.stringify(v.version)}: this store reads version ${DUMP_VERSION}`);
  for (const k of Object.keys(v))
    if (!['format', 'version', 'group', 'revision', 'taken_at'].includes(k)) throw error(`header: unknown field ${k}`);
  if (typeof v.group !== 'string' || !isCount(v.revision) || typeof v.taken_at !== 'string')
    throw error('header: expected group (a name), revision (a number) and taken_at (a time)');
  return { format: DUMP_FORMAT, version: DUMP_VERSION, group: v.group, revision: v.revision, taken_at: v.taken_at };
}

/** The bytes of an async source of chunks, a ReadableStream's included. */
export async function* chunksOf(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!(source instanceof ReadableStream)) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * The lines of a dump, each checked as it comes; after the last, the trailer
 * is checked too (`reader` has the header and trailer then). Throws a
 * DumpError where the dump is not sound, so a consumer that acts on each
 * line must be ready to undo what it did.
 */
export async function* readDump(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  reader = new DumpReader(),
  maxLineBytes = MAX_DUMP_LINE_BYTES,
): AsyncGenerator<DumpLine, void, undefined> {
  const lines = new LineSplitter(maxLineBytes);
  for await (const chunk of chunksOf(source)) for (const line of lines.push(chunk)) yield reader.read(line);
  reader.finish(lines.end());
}

/** Writes a dump's lines, counting them and hashing every byte for the trailer. */
export class DumpWriter {
  private readonly hash = new Sha256();
  keys = 0;
  leases = 0;
  /** Bytes written so far. */
  bytes = 0;

  header(h: Omit<DumpHeader, 'format' | 'version'>): Uint8Array {
    return this.lines([
      { format: DUMP_FORMAT, version: DUMP_VERSION, group: h.group, revision: h.revision, taken_at: h.taken_at },
    ]);
  }

  /** Lease lines, then key lines (each key a record as the API writes it), as one chunk. */
  page(leases: readonly DumpLease[], kvs: readonly Record<string, unknown>[]): Uint8Array {
    this.leases += leases.length;
    this.keys += kvs.length;
    return this.lines([...leases.map((lease) => ({ lease })), ...kvs.map((kv) => ({ kv }))]);
  }

  /** The trailer: nothing may follow it. */
  end(): Uint8Array {
    const end: DumpEnd = { keys: this.keys, leases: this.leases, sha256: this.hash.hex() };
    return utf8.encode(`${JSON.stringify({ end })}\n`);
  }

  private lines(objects: readonly unknown[]): Uint8Array {
    let text = '';
    for (const o of objects) text += `${JSON.stringify(o)}\n`;
    const bytes = utf8.encode(text);
    this.hash.update(bytes);
    this.bytes += bytes.byteLength;
    return bytes;
  }
}

/** The line that ends a dump the store could not finish, in place of its trailer. */
export function dumpErrorLine(code: string, message: string): Uint8Array {
  return utf8.encode(`${JSON.stringify({ error: { code, message } })}\n`);
}
