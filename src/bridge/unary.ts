/**
 * The generic unary call: the request message is already the JSON body the
 * /v3 route reads (protos.ts), and the route's answer is the response
 * message's JSON, so most methods are a path and nothing else.
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import type { Answer, CallContext, Gateway } from './gateway.ts';
import type { UnaryCall, UnaryCallback } from './grpc.ts';

/** What a method handler needs: the gateway and the bridge's token. */
export interface Bridge {
  readonly gateway: Gateway;
  readonly token: string | undefined;
}

/** A method that does more than one POST: the request message and the call's context, to an answer. */
export type Translate = (request: Record<string, unknown>, ctx: CallContext) => Promise<Answer>;

/** A unary handler that POSTs the request to `path` and answers with what comes back. */
export function forward(b: Bridge, path: string, mutates: boolean): (call: UnaryCall, cb: UnaryCallback) => void {
  return unary(b, (request, ctx) => b.gateway.call(path, request, ctx, mutates));
}

/** A unary handler around `translate`; an exception in it fails the call (INTERNAL), never the bridge. */
export function unary(b: Bridge, translate: Translate): (call: UnaryCall, cb: UnaryCallback) => void {
  return (call, callback) => {
    const ctx = callContext(call, b.token);
    translate(call.request, ctx).then(
      (a) => (a.ok ? callback(null, a.message) : callback(a.status)),
      (e: unknown) => callback(internal(e)),
    );
  };
}

/** A handler that answers etcd's Unimplemented for a method durable-raft does not serve. */
export function unimplemented(method: string): (call: UnaryCall, cb: UnaryCallback) => void {
  return (_call, callback) =>
    callback({ code: 12, details: `unknown method ${method}: not implemented by durable-raft` });
}
