/**
 * How the store's refusals and lost answers become gRPC statuses. The /v3
 * gateway answers an error as `{"error", "message", "code"}` with etcd's
 * gRPC code and etcd's own message (`etcdserver: mvcc: required revision has
 * been compacted`), which is what etcd's clients match on to decide whether
 * to retry: both are passed on unchanged. Anything else (a proxy's page, a
 * route the Worker does not have) is judged by its HTTP status.
 */
import type { CallContext } from './gateway.ts';
import { Status, type StatusObject } from './grpc.ts';

export interface GatewayFailure {
  readonly ok: false;
  readonly status: StatusObject;
}

/** The HTTP statuses of answers that are not etcd's errors, as gRPC codes (grpc-gateway's table, read back). */
const BY_HTTP = new Map<number, number>([
  [400, Status.INVALID_ARGUMENT],
  [401, Status.UNAUTHENTICATED],
  [403, Status.PERMISSION_DENIED],
  [404, Status.UNIMPLEMENTED],
  [405, Status.UNIMPLEMENTED],
  [408, Status.DEADLINE_EXCEEDED],
  [409, Status.ABORTED],
  [412, Status.FAILED_PRECONDITION],
  [413, Status.INVALID_ARGUMENT],
  [429, Status.RESOURCE_EXHAUSTED],
  [501, Status.UNIMPLEMENTED],
  [503, Status.UNAVAILABLE],
  [504, Status.DEADLINE_EXCEEDED],
]);

/** A non-2xx answer with body `text`, as the status to answer the gRPC call with. */
export function refusalOf(httpStatus: number, text: string): GatewayFailure {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    const code = Object.hasOwn(b, 'code') ? b.code : undefined;
    const message = Object.hasOwn(b, 'message') ? b.message : undefined;
    if (typeof code === 'number' && Number.isInteger(code) && code > 0 && code <= 16 && typeof message === 'string')
      return { ok: false, status: { code, details: message } };
    // /v1's error shape, `{"error": {"code", "message"}}`.
    const inner = Object.hasOwn(b, 'error') ? b.error : undefined;
    if (typeof inner === 'object' && inner !== null && typeof (inner as { message?: unknown }).message === 'string') {
      const details = `durable-raft: ${(inner as { message: string }).message}`;
      // A bridge started with --group on a group that does not exist: not found, not a method it lacks.
      const missingGroup = httpStatus === 404 && (inner as { code?: unknown }).code === 'group_not_found';
      const code = missingGroup ? Status.NOT_FOUND : (BY_HTTP.get(httpStatus) ?? Status.UNKNOWN);
      return { ok: false, status: { code, details } };
    }
  }
  return {
    ok: false,
    status: {
      code: BY_HTTP.get(httpStatus) ?? (httpStatus >= 500 ? Status.UNAVAILABLE : Status.UNKNOWN),
      details: `durable-raft bridge: the store answered HTTP ${httpStatus}`,
    },
  };
}

/**
 * A call whose answer never came: the connection was refused (nothing was
 * sent: unavailable, which etcd's clients retry), the call was cancelled or
 * ran out of time, or the answer was lost after the request went out (for a
 * write, its outcome is unknown: etcd's deadline error, as the gateway
 * answers an unknown outcome).
 */
export function lostAnswer(e: unknown, ctx: CallContext, mutates: boolean): GatewayFailure {
  if (ctx.signal.aborted) return { ok: false, status: { code: Status.CANCELLED, details: 'context canceled' } };
  if (ctx.deadline !== undefined && Date.now() >= ctx.deadline)
    return { ok: false, status: { code: Status.DEADLINE_EXCEEDED, details: 'context deadline exceeded' } };
  const why = describe(e);
  if (!mutates || refused(e))
    return {
      ok: false,
      status: { code: Status.UNAVAILABLE, details: `durable-raft bridge: store unreachable: ${why}` },
    };
  return {
    ok: false,
    status: { code: Status.DEADLINE_EXCEEDED, details: `context deadline exceeded (the answer was lost: ${why})` },
  };
}

/** Whether the connection itself was refused, so the request was never sent. */
function refused(e: unknown): boolean {
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code === 'ECONNREFUSED';
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : '';
  return `${e.message}${cause}`;
}

/** A status for an exception in the bridge itself (a bug): the call fails, the bridge goes on. */
export function internal(e: unknown): StatusObject {
  return { code: Status.INTERNAL, details: `durable-raft bridge: ${e instanceof Error ? e.message : String(e)}` };
}
