/** A client wired to an in-process app over a fresh cluster, and fetch wrappers that record or break requests. */

import type { ApiOptions } from '../../src/api/config.ts';
import { createClient, type DurableRaftClient, type FetchFn } from '../../src/client/index.ts';
import { newApi, type TestApi } from '../integration/api-helpers.ts';

export const ENDPOINT = 'https://api.test';

/** A sent request, as the app saw it. */
export interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
}

/** Decides what one request gets: `undefined` passes it to the app; a Response (or a thrown error) replaces it. */
export type Interceptor = (sent: Sent, n: number) => Response | Promise<Response> | Error | undefined;

export interface ClientKit {
  readonly api: TestApi;
  readonly client: DurableRaftClient;
  /** Every request the client sent, in order. */
  readonly sent: Sent[];
  /** Replaces what the next requests get (cleared with `undefined`). */
  intercept(fn: Interceptor | undefined): void;
}

/** The app's fetch for the client's URLs (it serves paths, the client sends absolute URLs). */
export function appFetch(api: TestApi, sent: Sent[], intercept: () => Interceptor | undefined): FetchFn {
  return async (input, init) => {
    const path = input.slice(ENDPOINT.length);
    const s: Sent = { method: init?.method ?? 'GET', path, headers: new Headers(init?.headers) };
    sent.push(s);
    const replaced = intercept()?.(s, sent.length);
    if (replaced instanceof Error) throw replaced;
    if (replaced !== undefined) return replaced;
    return api.fetch(path, init);
  };
}

export async function newClient(o: { api?: ApiOptions; token?: string; timeoutMs?: number } = {}): Promise<ClientKit> {
  const api = await newApi(o.api);
  const sent: Sent[] = [];
  let interceptor: Interceptor | undefined;
  const client = createClient({
    endpoint: ENDPOINT,
    fetch: appFetch(api, sent, () => interceptor),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  });
  return {
    api,
    client,
    sent,
    intercept(fn) {
      interceptor = fn;
    },
  };
}

/** A JSON error answer as the API gives it. */
export function errorResponse(status: number, code: string, extra: Record<string, unknown> = {}): Response {
  return Response.json({ error: { code, message: `${code} (test)` }, ...extra }, { status });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
