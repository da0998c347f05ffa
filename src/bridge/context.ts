/**
 * What a gRPC call carries to the store: its token, its deadline and its
 * cancellation. The token is the client's own when it sent one (etcd's
 * clients send it as the `token` metadata, after Authenticate), else the
 * one the bridge was started with: the store checks it either way, so the
 * bridge never grants more than the token it forwards.
 */
import type { CallContext } from './gateway.ts';
import type { Metadata } from './grpc.ts';

interface Call {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  on(event: 'cancelled', fn: () => void): void;
}

export interface BridgeCall extends CallContext {
  /** Aborts the call's requests to the store (the stream's own end). */
  abort(): void;
}

export function callContext(call: Call, bridgeToken: string | undefined): BridgeCall {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('context canceled'));
  call.on('cancelled', abort);
  if (call.cancelled) abort();
  return {
    token: clientToken(call.metadata) ?? bridgeToken,
    deadline: deadlineOf(call.getDeadline()),
    signal: controller.signal,
    abort,
  };
}

function clientToken(m: Metadata): string | undefined {
  for (const key of ['token', 'authorization']) {
    const v = m.get(key)[0];
    if (typeof v === 'string' && v !== '') return v.replace(/^Bearer\s+/i, '');
  }
  return undefined;
}

function deadlineOf(d: Date | number): number | undefined {
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}
