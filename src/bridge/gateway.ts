/**
 * The bridge's only way into the store: the Worker's /v3 routes (etcd's
 * JSON gateway): POSTs, one per gRPC call or stream, and WebSockets to GET
 * /v3/watch (a gRPC Watch stream's watches, watch-socket.ts); and one /v1
 * route, GET /v1/snapshot (the group's dump, for Snapshot: snapshot.ts).
 * An answer comes back as the response message's JSON; a refusal as a
 * StatusObject with etcd's gRPC code and message (errors.ts). Sockets are Node's own
 * WebSocket (undici's, global in Node 22), which takes headers, so they
 * carry the bearer token as every POST does.
 */
import { type GatewayFailure, lostAnswer, refusalOf } from './errors.ts';
import type { StatusObject } from './grpc.ts';
import { fetchPost, nodePost, type Post, type Posted } from './http-post.ts';
import { jsonLines } from './json-lines.ts';

/** What one call carries to the store besides its body. */
export interface CallContext {
  /** The bearer token for this call (the client's own, else the bridge's), if any. */
  readonly token: string | undefined;
  /** When the gRPC call's deadline passes (ms since the epoch), if it has one. */
  readonly deadline: number | undefined;
  /** Aborts when the gRPC call is cancelled. */
  readonly signal: AbortSignal;
}

/** The gateway's answer to a call: the message, or the status to answer with. */
export type Answer = { readonly ok: true; readonly message: Record<string, unknown> } | GatewayFailure;

/** What the bridge uses of a WebSocket to the store: Node's, or a test's stand-in. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error', fn: () => void): void;
  addEventListener(type: 'message', fn: (e: { readonly data: unknown }) => void): void;
}

/** Opens a WebSocket to `url` (ws:// or wss://) with `headers` on its upgrade request. */
export type SocketOpener = (url: string, headers: Record<string, string>) => SocketLike;

/** Node 22's global WebSocket (undici's) takes `{ headers }` where a browser's takes only protocols. */
type NodeWebSocket = new (url: string, init: { headers: Record<string, string> }) => SocketLike;

const nodeWebSocket: SocketOpener = (url, headers) => new (WebSocket as unknown as NodeWebSocket)(url, { headers });

export class Gateway {
  readonly #endpoint: string;
  readonly #fetch: typeof fetch;
  readonly #unary: Post;
  readonly #openSocket: SocketOpener;

  /**
   * `endpoint`: the store's URL (its /v3 routes are under it); `fetchFn`:
   * used for every call if given; `openSocket`: for the watch sockets.
   */
  constructor(endpoint: string, fetchFn?: typeof fetch, openSocket: SocketOpener = nodeWebSocket) {
    this.#endpoint = endpoint.replace(/\/+$/, '');
    this.#fetch = fetchFn ?? fetch;
    this.#unary = fetchFn ? fetchPost(fetchFn) : nodePost();
    this.#openSocket = openSocket;
  }

  /**
   * A WebSocket to `path` (GET with `Upgrade: websocket`) carrying the
   * call's token. It may throw (a URL Node refuses): the caller treats that
   * as a connection that failed.
   */
  socket(path: string, ctx: CallContext): SocketLike {
    const headers: Record<string, string> = {};
    if (ctx.token !== undefined) headers.Authorization = `Bearer ${ctx.token}`;
    return this.#openSocket(`${this.#endpoint.replace(/^http/, 'ws')}${path}`, headers);
  }

  /** A unary call: POST `path` with `body`, the answer's message or its status. */
  async call(path: string, body: Record<string, unknown>, ctx: CallContext, mutates: boolean): Promise<Answer> {
    let res: Posted;
    try {
      res = await this.#unary(`${this.#endpoint}${path}`, this.#headers(ctx), JSON.stringify(body), ctx.signal);
    } catch (e) {
      return lostAnswer(e, ctx, mutates);
    }
    const { status, text } = res;
    if (status < 200 || status > 299) return refusalOf(status, text);
    const message = parseObject(text);
    if (message === undefined) return { ok: false, status: badAnswer(path) };
    return { ok: true, message };
  }

  /**
   * A streamed call (watch, keepalive, observe): POST `path` with `body`,
   * then each line's `result` message, until the answer ends or the signal
   * aborts. A refusal before the first line is thrown as its status; a line
   * holding an `error` ends the stream with that error's status.
   */
  async *stream(
    path: string,
    body: Record<string, unknown>,
    ctx: CallContext,
  ): AsyncGenerator<Record<string, unknown>> {
    let res: Response;
    try {
      res = await this.#post(path, body, ctx);
    } catch (e) {
      throw new StreamEnded(lostAnswer(e, ctx, false).status);
    }
    if (!res.ok) throw new StreamEnded(refusalOf(res.status, await res.text().catch(() => '')).status);
    if (res.body === null) return;
    try {
      for await (const line of jsonLines(res.body)) {
        const m = parseObject(line);
        if (m === undefined) throw new StreamEnded(badAnswer(path));
        if (Object.hasOwn(m, 'error')) throw new StreamEnded(streamError(m.error));
        const result = m.result;
        if (typeof result !== 'object' || result === null || Array.isArray(result))
          throw new StreamEnded(badAnswer(path));
        yield result as Record<string, unknown>;
      }
    } catch (e) {
      if (e instanceof StreamEnded) throw e;
      throw new StreamEnded(lostAnswer(e, ctx, false).status);
    }
  }

  /**
   * A download (the dump): GET `path`, the answer's body once the store said
   * 2xx. A refusal, or a connection that failed before it, is thrown as the
   * StreamEnded of its status. The call's deadline is not sent: the store
   * gives each page of a dump a deadline of its own, and gRPC ends the call
   * (and so this request) at the client's.
   */
  async download(path: string, ctx: CallContext): Promise<ReadableStream<Uint8Array>> {
    let res: Response;
    try {
      const headers: Record<string, string> = {};
      if (ctx.token !== undefined) headers.Authorization = `Bearer ${ctx.token}`;
      res = await this.#fetch(`${this.#endpoint}${path}`, { method: 'GET', headers, signal: ctx.signal });
    } catch (e) {
      throw new StreamEnded(lostAnswer(e, ctx, false).status);
    }
    if (!res.ok) throw new StreamEnded(refusalOf(res.status, await res.text().catch(() => '')).status);
    if (res.body === null) throw new StreamEnded(badAnswer(path));
    return res.body;
  }

  #post(path: string, body: Record<string, unknown>, ctx: CallContext): Promise<Response> {
    return this.#fetch(`${this.#endpoint}${path}`, {
      method: 'POST',
      headers: this.#headers(ctx),
      body: JSON.stringify(body),
      signal: ctx.signal,
    });
  }

  #headers(ctx: CallContext): Record<string, string> {
    // Unencoded answers: gzip (which fetch asks for by default, and Miniflare and Cloudflare then apply)
    // costs both ends more CPU than these small messages save on the wire.
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Accept-Encoding': 'identity' };
    if (ctx.token !== undefined) headers.Authorization = `Bearer ${ctx.token}`;
    if (ctx.deadline !== undefined)
      headers['X-Request-Timeout-Ms'] = String(
        Math.max(1, Math.min(999_999_999, Math.ceil(ctx.deadline - Date.now()))),
      );
    return headers;
  }
}

/** A stream that ended with an error status (a refusal, a lost connection, a malformed line). */
export class StreamEnded extends Error {
  override readonly name = 'StreamEnded';
  readonly status: StatusObject;

  constructor(status: StatusObject) {
    super(status.details);
    this.status = status;
  }
}

/**
 * An error line in a stream (or message on a socket): grpc-gateway's
 * `{"error": {"grpc_code", "message", …}}`, or /v3's `{"code", "message"}` shape.
 */
export function streamError(e: unknown): StatusObject {
  if (typeof e === 'object' && e !== null && !Array.isArray(e)) {
    const o = e as Record<string, unknown>;
    const code = Object.hasOwn(o, 'grpc_code') ? o.grpc_code : Object.hasOwn(o, 'code') ? o.code : undefined;
    if (typeof code === 'number' && typeof o.message === 'string')
      return refusalOf(500, JSON.stringify({ code, message: o.message })).status;
  }
  return refusalOf(500, typeof e === 'string' ? JSON.stringify({ error: { message: e } }) : '').status;
}

/** The JSON object `text` holds, or undefined. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function badAnswer(path: string): StatusObject {
  return { code: 13, details: `durable-raft bridge: the store's answer to ${path} is not the JSON of a message` };
}
