/**
 * etcd's Lease service. Grant, Revoke, TimeToLive and Leases are one /v3
 * route each; KeepAlive is a stream of requests, each renewing one lease:
 * each becomes one POST /v3/lease/keepalive, answered in order on the
 * stream (a lease that is gone answers TTL 0, as etcd does).
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import { StreamEnded } from './gateway.ts';
import type { DuplexCall, Handler } from './grpc.ts';
import { type Bridge, forward } from './unary.ts';

/** Keepalives waiting on one stream, at most: a client that sends faster than the store answers waits. */
const MAX_PENDING = 64;

export function leaseService(b: Bridge): Record<string, Handler> {
  return {
    LeaseGrant: forward(b, '/v3/lease/grant', true),
    LeaseRevoke: forward(b, '/v3/lease/revoke', true),
    LeaseTimeToLive: forward(b, '/v3/lease/timetolive', false),
    LeaseLeases: forward(b, '/v3/lease/leases', false),
    LeaseKeepAlive: (call: DuplexCall) => keepAlive(b, call),
  };
}

function keepAlive(b: Bridge, call: DuplexCall): void {
  const ctx = callContext(call, b.token);
  const queue: Record<string, unknown>[] = [];
  let running = false;
  let ended = false;
  let failed = false;

  const fail = (status: { code: number; details: string }): void => {
    if (failed) return;
    failed = true;
    ctx.abort();
    call.emit('error', status);
  };

  const drain = async (): Promise<void> => {
    running = true;
    try {
      for (let m = queue.shift(); m !== undefined && !failed; m = queue.shift()) {
        const id = Object.hasOwn(m, 'ID') ? m.ID : undefined;
        for await (const result of b.gateway.stream('/v3/lease/keepalive', id === undefined ? {} : { ID: id }, ctx)) {
          if (!failed) call.write(result);
          break;
        }
      }
    } catch (e) {
      fail(e instanceof StreamEnded ? e.status : internal(e));
    } finally {
      running = false;
    }
    if (ended && !failed && queue.length === 0) call.end();
  };

  call.on('data', (m) => {
    if (failed) return;
    if (queue.length >= MAX_PENDING) {
      fail({ code: 8, details: 'durable-raft bridge: too many keepalives waiting on one stream' });
      return;
    }
    queue.push(m);
    if (!running) void drain();
  });
  call.on('end', () => {
    ended = true;
    if (!running && !failed) call.end();
  });
  call.on('error', () => ctx.abort());
  call.on('cancelled', () => ctx.abort());
}
