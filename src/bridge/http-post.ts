/**
 * How the bridge sends a unary call's POST and reads its whole answer. With
 * no fetch given, node:http(s) on keep-alive connections: on this path (one
 * POST per gRPC call) it costs about a quarter of the CPU of the global
 * fetch (undici), measured in a loop of POSTs to a local server. A fetch
 * given (tests, or a caller's own) is used as it is. Streams (watch,
 * keepalive, observe) keep fetch: they are few and long.
 */
import { type HttpModule, type IncomingMessage, nodeHttp, nodeHttps } from './grpc.ts';

/** An answer read whole. */
export interface Posted {
  readonly status: number;
  readonly text: string;
}

/** POSTs `body` to `url`; rejects when no whole answer came (the cause as fetch gives it, in `cause`). */
export type Post = (url: string, headers: Record<string, string>, body: string, signal: AbortSignal) => Promise<Posted>;

export function fetchPost(fetchFn: typeof fetch): Post {
  return async (url, headers, body, signal) => {
    const res = await fetchFn(url, { method: 'POST', headers, body, signal });
    return { status: res.status, text: await res.text() };
  };
}

/** POSTs with node:http or node:https (by the URL's scheme), each with a keep-alive agent of its own. */
export function nodePost(): Post {
  const agents = new Map<HttpModule, unknown>();
  return (url, headers, body, signal) => {
    const mod = url.startsWith('https:') ? nodeHttps : nodeHttp;
    let agent = agents.get(mod);
    if (agent === undefined) {
      agent = new mod.Agent({ keepAlive: true });
      agents.set(mod, agent);
    }
    const bytes = new TextEncoder().encode(body);
    return new Promise<Posted>((resolve, reject) => {
      // As fetch rejects: a TypeError whose cause is the system's error (ECONNREFUSED, ECONNRESET, …).
      const fail = (e: Error) => reject(e.name === 'AbortError' ? e : new TypeError('fetch failed', { cause: e }));
      const req = mod.request(
        url,
        { method: 'POST', headers: { ...headers, 'Content-Length': String(bytes.byteLength) }, agent, signal },
        (res: IncomingMessage) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end(body);
    });
  };
}
