/**
 * etcd's v3lock and v3election services: each method is one /v3 route
 * (the store runs etcd's lock and election recipes itself); Observe streams
 * each leader as /v3 streams it, reconnecting when that stream ends.
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import { StreamEnded } from './gateway.ts';
import type { Handler, WritableCall } from './grpc.ts';
import { FINAL, RETRY_FIRST_MS, RETRY_MAX_MS, sleep } from './retry.ts';
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

/**
 * Streams each leader of the election. The store's stream is reopened if it
 * ends (a lost connection, an idle timeout on the way); it starts again with
 * the current leader, which is not sent twice.
 */
function observe(b: Bridge, call: WritableCall): void {
  const ctx = callContext(call, b.token);
  let last: string | undefined;
  const run = async (): Promise<void> => {
    let wait = RETRY_FIRST_MS;
    while (!ctx.signal.aborted) {
      try {
        for await (const m of b.gateway.stream('/v3/election/observe', call.request, ctx)) {
          if (ctx.signal.aborted) return;
          const kv = typeof m.kv === 'object' && m.kv !== null ? (m.kv as Record<string, unknown>) : {};
          const seen = `${kv.key}|${kv.create_revision}|${kv.mod_revision}`;
          wait = RETRY_FIRST_MS;
          if (seen === last) continue;
          last = seen;
          call.write(m);
        }
      } catch (e) {
        if (!(e instanceof StreamEnded) || FINAL.has(e.status.code)) throw e;
      }
      await sleep(wait, ctx.signal);
      wait = Math.min(RETRY_MAX_MS, wait * 2);
    }
  };
  run().catch((e: unknown) => {
    if (!ctx.signal.aborted) call.emit('error', e instanceof StreamEnded ? e.status : internal(e));
  });
}
