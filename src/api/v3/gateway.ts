/**
 * What every /v3 route shares: reading the request message, proposing a
 * command and reading the store with etcd's answers for each outcome, and
 * the response header.
 */
import {
  DuplicateKeyError,
  encodeCommand,
  type KvCommand,
  KvDecodeError,
  type KvResult,
  type RangeQuery,
} from '../../kv/index.ts';
import type { ClusterClient, RangeRead } from '../cluster.ts';
import type { C } from '../env.ts';
import { ApiError } from '../errors.ts';
import { readBody } from '../input.ts';
import { MAX_COMMAND_BYTES } from '../outcomes.ts';
import { ETCD, EtcdError, GRPC } from './etcd-errors.ts';
import { type Header, headerJson, parseMessage } from './etcd-json.ts';
import { id64, memberId } from './ids.ts';

/** etcd's default --max-request-bytes (1.5 MiB) plus room for the JSON around base64. */
const MAX_BODY_BYTES = 2 * 1024 * 1024 + 64 * 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The request message: a JSON object (protobuf JSON: unknown fields are ignored, as etcd's gateway does). */
export async function readMessage(c: C): Promise<Record<string, unknown>> {
  let bytes: Uint8Array;
  try {
    bytes = await readBody(c.req.raw, MAX_BODY_BYTES);
  } catch (e) {
    if (e instanceof ApiError && e.status === 413) throw ETCD.requestTooLarge();
    throw e;
  }
  if (bytes.byteLength === 0) return {};
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw EtcdError.badJson('malformed JSON request body');
  }
  return parseMessage(text);
}

/** Proposes `cmd` and returns its result with the term it committed in; etcd's error for anything else. */
export async function propose(c: C, cmd: KvCommand): Promise<{ result: KvResult; term: number; member: string }> {
  let bytes: Uint8Array;
  try {
    bytes = encodeCommand({ cmd });
  } catch (e) {
    if (e instanceof DuplicateKeyError) throw ETCD.duplicateKey();
    if (e instanceof KvDecodeError) throw EtcdError.invalid(e.message);
    throw e;
  }
  if (bytes.byteLength > MAX_COMMAND_BYTES) throw ETCD.requestTooLarge();
  const out = await c.get('client').propose(bytes, false);
  switch (out.kind) {
    case 'applied':
      return { result: out.result, term: out.term, member: out.member };
    case 'unknown':
      throw ETCD.unknownOutcome();
    case 'unavailable':
      throw ETCD.noLeader();
    case 'rejected':
      throw new EtcdError(GRPC.internal, out.detail);
  }
}

/** A range of the store (linearizable unless `serializable`), or etcd's error. */
export async function readRange(
  client: ClusterClient,
  query: RangeQuery,
  serializable: boolean,
  revision: number | undefined,
): Promise<RangeRead> {
  const r = await client.range(query, serializable ? 'serializable' : 'linearizable', revision);
  if (r.kind === 'ok') return r;
  if (r.kind === 'compacted') throw ETCD.compacted();
  if (r.kind === 'futureRevision') throw ETCD.futureRev();
  throw ETCD.noLeader();
}

/** The header for an answer from `member` in `term` at store revision `revision`. */
export function header(c: C, member: string, term: number, revision?: number): Record<string, string> {
  return headerJson(headerOf(c, member, term), revision);
}

/** The cluster id etcd's answers carry: stable, from the cluster's name and its initial members. */
export function clusterIdOf(c: C): string {
  const config = c.get('config');
  return id64(
    `${config.clusterPrefix}|${config.members
      .map((m) => m.id)
      .sort()
      .join(',')}`,
  );
}

function headerOf(c: C, member: string, term: number): Header {
  const config = c.get('config');
  return {
    clusterId: clusterIdOf(c),
    memberId: memberId(config.clusterPrefix, member),
    raftTerm: term,
  };
}

/** An ApiError raised by the shared middleware (auth, input decoding), as etcd's error. */
export function asEtcdError(e: ApiError): EtcdError {
  const code: Record<number, number> = {
    400: GRPC.invalidArgument,
    401: GRPC.unauthenticated,
    403: GRPC.permissionDenied,
    404: GRPC.notFound,
    413: GRPC.invalidArgument,
    503: GRPC.unavailable,
    504: GRPC.deadlineExceeded,
  };
  if (e.status === 401) return ETCD.invalidToken();
  if (e.code === 'lease_not_found') return ETCD.leaseNotFound();
  if (e.status === 403) return ETCD.permissionDenied();
  return new EtcdError(code[e.status] ?? GRPC.internal, e.message);
}

/**
 * A streamed answer, left uncompressed: a compressor would hold the lines back
 * until it has enough to compress, and a watcher waits for each line.
 */
export function streamed(body: ReadableStream<Uint8Array> | string): Response {
  return new Response(body, {
    status: 200,
    headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'identity', 'Cache-Control': 'no-transform' },
    encodeBody: 'manual',
  } as ResponseInit);
}
