/**
 * etcd's v3lock and v3election services: each method is one /v3 route
 * (the store runs etcd's lock and election recipes itself); Observe streams
 * each leader as /v3 streams it.
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import { StreamEnded } from './gateway.ts';
import type { Handler, WritableCall } from './grpc.ts';
import { type Bridge, forward } from './unary.ts';

export function lockService(b: Bridge): Record<string, Handler> {
  return {
    Lock: forward(b, '/v3/lock/lock', true),
    Unlock: forward(b, '/v3/lock/unlock', true),
  };
}

export function electionService(b: Bridge): Record<string, Handler> {
  return {
    Campaign: forward(b, '/v3/election/campaign', true),
    Proclaim: forward(b, '/v3/election/proclaim', true),
    Leader: forward(b, '/v3/election/leader', false),
    Resign: forward(b, '/v3/election/resign', true),
    Observe: (call: WritableCall) => observe(b, call),
  };
}

function observe(b: Bridge, call: WritableCall): void {
  const ctx = callContext(call, b.token);
  const run = async (): Promise<void> => {
    for await (const m of b.gateway.stream('/v3/election/observe', call.request, ctx)) {
      if (ctx.signal.aborted) return;
      call.write(m);
    }
    if (!ctx.signal.aborted) call.end();
  };
  run().catch((e: unknown) => {
    if (!ctx.signal.aborted) call.emit('error', e instanceof StreamEnded ? e.status : internal(e));
  });
}
