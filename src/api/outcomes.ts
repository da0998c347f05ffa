/**
 * From a node's answer to an HTTP outcome: proposing a command and settling
 * what came back (503 when nothing was applied, 504 when the outcome is
 * unknown, never a guess), and the errors every route shares.
 */
import { encodeCommand, type KvCommand, KvDecodeError, type KvResult } from '../kv/index.ts';
import type { WriteOutcome } from './cluster.ts';
import type { C } from './env.ts';
import { ApiError, badRequest, compactedError, type ErrorBody, futureRevisionError } from './errors.ts';

/** A log entry must fit one SQLite row (2 MB) with room to spare. */
export const MAX_COMMAND_BYTES = 1_835_008;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export function unavailable(detail: string): ApiError {
  return new ApiError(
    503,
    'unavailable',
    `no leader with a quorum answered in time (${detail})`,
    {},
    { 'Retry-After': '1' },
  );
}

function outcomeUnknown(detail: string): ApiError {
  return new ApiError(
    504,
    'outcome_unknown',
    `the write may or may not have been applied (${detail}); read the key, or retry with the same Idempotency-Key`,
    { outcome: 'unknown' },
  );
}

export function settle<R>(out: WriteOutcome<R>): R {
  switch (out.kind) {
    case 'applied':
      return out.result;
    case 'unknown':
      throw outcomeUnknown(out.detail);
    case 'unavailable':
      throw unavailable(out.detail);
    case 'rejected':
      throw new ApiError(409, 'rejected', out.detail);
  }
}

/** The error for a read that did not answer: no leader, or a revision outside the history. */
export function readFailed(
  r:
    | { kind: 'unavailable'; detail: string }
    | { kind: 'compacted'; compacted: number }
    | { kind: 'futureRevision'; revision: number },
  revision: number | undefined,
): ApiError {
  if (r.kind === 'compacted') return compactedError(revision ?? 0, r.compacted);
  if (r.kind === 'futureRevision') return futureRevisionError(revision ?? 0, r.revision);
  return unavailable(r.detail);
}

export function leaseNotFound(id: number): ApiError {
  return new ApiError(404, 'lease_not_found', `no lease ${id}`, { id: String(id) });
}

/** Proposes `cmd` (with the Idempotency-Key, if any) and returns its result, or throws the right error. */
export async function write(c: C, cmd: KvCommand): Promise<Exclude<KvResult, { type: 'error' }>> {
  const p = c.get('principal');
  const idem = c.req.header('idempotency-key');
  if (idem !== undefined && !IDEMPOTENCY_KEY.test(idem))
    throw badRequest('Idempotency-Key', '1-200 printable ASCII characters');
  const requestId = idem === undefined ? undefined : `${p.id}:${idem}`;
  let bytes: Uint8Array;
  try {
    bytes = encodeCommand({ requestId, cmd });
  } catch (e) {
    if (e instanceof KvDecodeError) throw badRequest('body', e.message);
    throw e;
  }
  if (bytes.byteLength > MAX_COMMAND_BYTES)
    throw new ApiError(413, 'too_large', `the command is larger than ${MAX_COMMAND_BYTES} bytes`);
  const result = settle(await c.get('client').propose(bytes, requestId !== undefined));
  if (result.type === 'error') {
    if (result.error === 'request_id_reused')
      throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with another request');
    if (result.error === 'result_unavailable')
      throw new ApiError(409, 'result_unavailable', 'this request was applied before, but its result was not kept');
    if (result.error === 'compacted' && cmd.type === 'compact')
      throw compactedError(cmd.revision, result.compacted ?? 0);
    if (result.error === 'future_revision' && cmd.type === 'compact')
      throw futureRevisionError(cmd.revision, result.current ?? 0);
    if (result.error === 'lease_not_found') throw leaseNotFound(result.lease ?? 0);
    if (result.error === 'lease_exists')
      throw new ApiError(409, 'lease_exists', `lease ${result.lease ?? 0} already exists`, {
        id: String(result.lease ?? 0),
      });
    // bad_command or stale_entry: the API encodes with the state machine's own validator, so this is a bug.
    throw new Error(`state machine error ${result.error}: ${result.message}`);
  }
  return result;
}
