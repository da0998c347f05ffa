/**
 * The client's one way to the API: builds the request, gives each call an
 * overall deadline, and retries what is safe to retry (README "HTTP API":
 * 503 means nothing was applied; a write carrying an Idempotency-Key applies
 * at most once however often it is sent, and a retry returns the first
 * result). Only Web APIs: fetch, AbortController, crypto.randomUUID.
 */
import { backoffMs, sleep } from './backoff.ts';
import { DurableRaftError, errorOf, OutcomeUnknownError, UnavailableError } from './errors.ts';

/** A fetch: the global one, a service binding's, or a test's in-process app. */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * How a call may be retried:
 * - `read` changes nothing: retried on 503, 504 and lost answers;
 * - `keyed` is a write sent with an Idempotency-Key: retried the same way, with the same key;
 * - `unkeyed` is a write on a route that refuses the key (locks, elections, membership): retried
 *   only on 503; a 504 or a lost answer is an OutcomeUnknownError at once.
 */
export type RetryKind = 'read' | 'keyed' | 'unkeyed';

export type Query = Record<string, string | number | boolean | undefined>;

export interface Call {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** The path, its variable parts already percent-encoded. */
  readonly path: string;
  readonly query?: Query;
  /** A JSON body, or raw bytes (a PUT's value). */
  readonly json?: unknown;
  readonly raw?: Uint8Array;
  readonly headers?: Record<string, string>;
  readonly retry: RetryKind;
  /** This call's deadline, if not the client's. */
  readonly timeoutMs?: number;
  /** Statuses besides 2xx that are answers, not errors (a 404 for a missing key). */
  readonly answers?: readonly number[];
  /** The path is the store's own, not the client's group's (group administration, on the default group's API). */
  readonly root?: boolean;
}

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

export interface TransportOptions {
  readonly endpoint: string;
  /** The group to reach (the store's `/groups/{name}` routes); default: the default group. */
  readonly group?: string;
  readonly token?: string;
  readonly fetch?: FetchFn;
  /** Each call's overall deadline, retries included (default 10 s). */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** A group's name: 1-63 of [a-z0-9-], starting and ending with a letter or digit (the store's rule). */
const GROUP_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The path prefix of `group`'s routes (`/groups/{name}`); none for the default group. */
export function groupPath(group: string | undefined): string {
  if (group === undefined || group === 'default') return '';
  if (!GROUP_NAME.test(group))
    throw new TypeError(
      `group: 1-63 of [a-z0-9-], starting and ending with a letter or digit, not ${JSON.stringify(group)}`,
    );
  return `/groups/${group}`;
}
/** Time left to the server below ours, so it answers (503/504) before we stop listening. */
const SERVER_MARGIN_MS = 100;

export class Transport {
  readonly endpoint: string;
  /** The store's URL, without the group's path. */
  private readonly base: string;
  readonly timeoutMs: number;
  private readonly token: string | undefined;
  private readonly fetchFn: FetchFn;

  constructor(o: TransportOptions) {
    this.base = o.endpoint.replace(/\/+$/, '');
    this.endpoint = this.base + groupPath(o.group);
    this.token = o.token;
    // Workers' fetch throws "Illegal invocation" unless called on globalThis.
    this.fetchFn = o.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** Sends `call`, retrying as its kind allows until its deadline; the JSON answer, or a typed error. */
  async request(call: Call): Promise<Answer> {
    const deadline = Date.now() + (call.timeoutMs ?? this.timeoutMs);
    const idempotencyKey = call.retry === 'keyed' ? crypto.randomUUID() : undefined;
    // Once an attempt of a write may have applied, running out of time leaves its outcome unknown.
    let mayHaveApplied = false;
    let last: DurableRaftError | undefined;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let res: Answer;
      try {
        res = await this.attempt(call, idempotencyKey, left);
      } catch (e) {
        if (e instanceof DurableRaftError) throw e;
        const detail = `no answer from ${call.method} ${call.path}: ${messageOf(e)}`;
        if (call.retry === 'unkeyed') throw new OutcomeUnknownError(0, 'network', detail);
        if (call.retry === 'keyed') mayHaveApplied = true;
        last = new UnavailableError(0, 'network', detail);
        await sleep(Math.min(backoffMs(attempt), deadline - Date.now()));
        continue;
      }
      if (isAnswer(call, res.status)) return res;
      const err = errorOf(res.status, res.body);
      const retryable = res.status === 503 || (res.status === 504 && call.retry !== 'unkeyed');
      if (!retryable) throw err;
      if (res.status === 504) mayHaveApplied = true;
      last = err;
      await sleep(Math.min(backoffMs(attempt), deadline - Date.now()));
    }
    const why = last?.message ?? 'no attempt fitted in the deadline';
    if (mayHaveApplied) throw new OutcomeUnknownError(504, 'outcome_unknown', `deadline passed; ${why}`, last?.body);
    if (last instanceof UnavailableError || last === undefined)
      throw new UnavailableError(last?.status ?? 0, last?.code ?? 'deadline', `deadline passed; ${why}`, last?.body);
    throw last;
  }

  /**
   * Opens a stream (a watch, an observe): one attempt, no retry (the caller
   * resumes), the response once its headers came within the deadline, or a
   * typed error. `signal` ends the stream.
   */
  async open(call: Call, signal: AbortSignal): Promise<Response> {
    // The caller's signal ends the stream; the timer bounds only the wait for its headers.
    const abort = new AbortController();
    if (signal.aborted) abort.abort(signal.reason);
    else signal.addEventListener('abort', () => abort.abort(signal.reason), { once: true });
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    try {
      const res = await this.fetchFn(this.urlOf(call), {
        method: call.method,
        headers: this.headersOf(call, undefined, undefined),
        signal: abort.signal,
      });
      if (res.ok) return res;
      throw errorOf(res.status, await bodyOf(res));
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends `call` with a streamed body: one attempt, no retry (the body is
   * read as it is sent) and no deadline but `signal`; the JSON answer, or a
   * typed error.
   */
  async upload(call: Call, body: ReadableStream<Uint8Array> | Uint8Array, signal?: AbortSignal): Promise<Answer> {
    const headers = this.headersOf(call, undefined, undefined);
    headers.set('Content-Type', 'application/x-ndjson');
    // Node's fetch streams a request body only in half-duplex mode (the Workers runtime takes the flag too).
    const init = { method: call.method, headers, body, duplex: 'half', ...(signal ? { signal } : {}) };
    const res = await this.fetchFn(this.urlOf(call), init as RequestInit);
    const answer = { status: res.status, headers: res.headers, body: await bodyOf(res) };
    if (isAnswer(call, res.status)) return answer;
    throw errorOf(res.status, answer.body);
  }

  private async attempt(call: Call, idempotencyKey: string | undefined, leftMs: number): Promise<Answer> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no answer within ${leftMs} ms`)), leftMs);
    try {
      const res = await this.fetchFn(this.urlOf(call), {
        method: call.method,
        headers: this.headersOf(call, idempotencyKey, Math.max(1, leftMs - SERVER_MARGIN_MS)),
        body: call.raw ?? (call.json === undefined ? undefined : JSON.stringify(call.json)),
        signal: abort.signal,
      });
      return { status: res.status, headers: res.headers, body: await bodyOf(res) };
    } finally {
      clearTimeout(timer);
    }
  }

  private urlOf(call: Call): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined) q.append(k, String(v));
    const s = q.toString();
    return `${call.root ? this.base : this.endpoint}${call.path}${s === '' ? '' : `?${s}`}`;
  }

  private headersOf(call: Call, idempotencyKey: string | undefined, serverMs: number | undefined): Headers {
    const h = new Headers(call.headers);
    h.set('Accept', h.get('Accept') ?? 'application/json');
    if (this.token !== undefined) h.set('Authorization', `Bearer ${this.token}`);
    if (idempotencyKey !== undefined) h.set('Idempotency-Key', idempotencyKey);
    if (serverMs !== undefined) h.set('X-Request-Timeout-Ms', String(Math.floor(serverMs)));
    if (call.json !== undefined) h.set('Content-Type', 'application/json');
    if (call.raw !== undefined) h.set('Content-Type', 'application/octet-stream');
    return h;
  }
}

function isAnswer(call: Call, status: number): boolean {
  return (status >= 200 && status < 300) || (call.answers?.includes(status) ?? false);
}

/** The JSON of an answer, or undefined when it has none (or it is not JSON: a proxy's error page). */
async function bodyOf(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
