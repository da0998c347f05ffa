import { decode, encode } from '@msgpack/msgpack';
import type { HistRow, KvRow, LeaseRow, RequestRow } from '../kv/index.ts';
import type { NodeId, Term } from '../raft/index.ts';
import { bool, bytes, EnvelopeError, list, nat, pos, record, str } from './validate.ts';

/**
 * The messages of a streamed snapshot (route /internal/snapshot): the leader
 * sends chunk `seq` of a session, the follower acknowledges it, and each ack
 * is a fresh event on the leader that sends the next chunk. The last chunk
 * carries the point (index, term, kv meta) the export was taken at. A chunk
 * holds kv rows, then request rows, then history rows (kv_history segments,
 * src/storage/history-segment.ts), then leases, in the order the export is
 * read. Fields added since version 1 (hist, lease, a kv row's lease) are
 * left out by older leaders and read as none.
 */
export const STREAM_VERSION = 1;
export const SNAPSHOT_PATH = '/internal/snapshot';
/** Larger bodies are refused before decoding: chunks stay under 1 MiB but for one max-size row. */
export const MAX_STREAM_BYTES = 4 * 1024 * 1024;
const MAX_ROWS = 100_000;
const MAX_KEY = 4096;
const MAX_VALUE = 2 * 1024 * 1024;

export interface ChunkMsg {
  readonly kind: 'chunk';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  readonly session: string;
  readonly seq: number;
  readonly kv: KvRow[];
  readonly req: RequestRow[];
  readonly hist: HistRow[];
  readonly lease: LeaseRow[];
  readonly point?: { readonly index: number; readonly term: Term; readonly meta: Uint8Array };
}

export interface AckMsg {
  readonly kind: 'ack';
  readonly from: NodeId;
  readonly to: NodeId;
  readonly session: string;
  readonly seq: number;
  /** False: the chunk did not follow on from what is staged; start the session over. */
  readonly ok: boolean;
}

export type StreamMsg = ChunkMsg | AckMsg;

export function encodeStreamMsg(m: StreamMsg): Uint8Array {
  return encode({ v: STREAM_VERSION, ...m }, { ignoreUndefined: true });
}

/** Decodes and validates every field; throws EnvelopeError on anything malformed or oversized. */
export function decodeStreamMsg(body: Uint8Array): StreamMsg {
  if (body.byteLength > MAX_STREAM_BYTES) throw new EnvelopeError(`body of ${body.byteLength} bytes is too large`);
  let raw: unknown;
  try {
    raw = decode(body);
  } catch (e) {
    throw new EnvelopeError(`not msgpack: ${(e as Error).message}`);
  }
  const o = record(raw, 'message');
  if (o.v !== STREAM_VERSION) throw new EnvelopeError(`unsupported stream version ${String(o.v)}`);
  const base = {
    from: str(o.from, 'from'),
    to: str(o.to, 'to'),
    session: str(o.session, 'session'),
    seq: nat(o.seq, 'seq'),
  };
  if (o.kind === 'ack') return { kind: 'ack', ...base, ok: bool(o.ok, 'ok') };
  if (o.kind !== 'chunk') throw new EnvelopeError(`unknown kind ${String(o.kind)}`);
  const kv = list(o.kv, 'kv', MAX_ROWS).map(kvRow);
  const req = list(o.req, 'req', MAX_ROWS).map((r, i): RequestRow => {
    const a = list(r, `req[${i}]`, 5);
    if (a.length !== 5) throw new EnvelopeError(`req[${i}]: expected 5 fields`);
    return [
      str(a[0], `req[${i}].id`),
      nat(a[1], `req[${i}].index`),
      nat(a[2], `req[${i}].revision`),
      nat(a[3], `req[${i}].fingerprint`),
      bytes(a[4], `req[${i}].result`, MAX_VALUE),
    ];
  });
  // Absent in chunks from code older than the history (schema v5): such a leader has no history to send.
  const hist = o.hist === undefined ? [] : list(o.hist, 'hist', MAX_ROWS).map(histRow);
  // Absent in chunks from code older than leases (schema v6).
  const lease = o.lease === undefined ? [] : list(o.lease, 'lease', MAX_ROWS).map(leaseRow);
  let point: ChunkMsg['point'];
  if (o.point !== undefined) {
    const p = record(o.point, 'point');
    point = {
      index: nat(p.index, 'point.index'),
      term: nat(p.term, 'point.term'),
      meta: bytes(p.meta, 'point.meta', 64 * 1024),
    };
  }
  return { kind: 'chunk', ...base, term: nat(o.term, 'term'), kv, req, hist, lease, ...(point ? { point } : {}) };
}

/** A kv row, with a sixth field if it has a lease. */
function kvRow(r: unknown, i: number): KvRow {
  const a = list(r, `kv[${i}]`, 6);
  if (a.length !== 5 && a.length !== 6) throw new EnvelopeError(`kv[${i}]: expected 5 or 6 fields`);
  const row: KvRow = [
    bytes(a[0], `kv[${i}].key`, MAX_KEY),
    bytes(a[1], `kv[${i}].value`, MAX_VALUE),
    nat(a[2], `kv[${i}].create`),
    nat(a[3], `kv[${i}].mod`),
    nat(a[4], `kv[${i}].version`),
  ];
  if (a.length === 6) row.push(leaseId(a[5], `kv[${i}].lease`));
  return row;
}

function leaseRow(r: unknown, i: number): LeaseRow {
  const a = list(r, `lease[${i}]`, 3);
  if (a.length !== 3) throw new EnvelopeError(`lease[${i}]: expected 3 fields`);
  const row: LeaseRow = [
    leaseId(a[0], `lease[${i}].id`),
    pos(a[1], `lease[${i}].ttl`),
    nat(a[2], `lease[${i}].remaining`),
  ];
  if (row[2] > row[1]) throw new EnvelopeError(`lease[${i}]: remaining above ttl`);
  return row;
}

/** A lease id: any positive safe integer (ids are not bounded like terms and indexes, see MAX_NAT). */
function leaseId(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
    throw new EnvelopeError(`${at}: expected a positive safe integer`);
  return v;
}

function histRow(r: unknown, i: number): HistRow {
  const a = list(r, `hist[${i}]`, 5);
  if (a.length !== 5) throw new EnvelopeError(`hist[${i}]: expected 5 fields`);
  const row: HistRow = [
    nat(a[0], `hist[${i}].firstRevision`),
    nat(a[1], `hist[${i}].firstSeq`),
    nat(a[2], `hist[${i}].part`),
    nat(a[3], `hist[${i}].lastRevision`),
    bytes(a[4], `hist[${i}].data`, MAX_VALUE),
  ];
  if (row[3] < row[0]) throw new EnvelopeError(`hist[${i}]: lastRevision before firstRevision`);
  if (row[4].byteLength === 0) throw new EnvelopeError(`hist[${i}].data: empty`);
  return row;
}
