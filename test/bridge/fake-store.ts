/**
 * A stand-in for the store's /v3 routes, as a fetch and a WebSocket opener
 * the bridge is started with: unary routes answer from a table the test
 * fills; GET routes (the dump) answer what the test's function makes;
 * each POST /v3/election/observe is a stream the test writes
 * etcd's lines into and ends; each WebSocket (GET /v3/watch) is a
 * FakeSocket the test reads the bridge's requests from and answers on.
 */
import type { SocketLike } from '../../src/bridge/gateway.ts';

export interface FakeStream {
  readonly body: Record<string, unknown>;
  readonly signal: AbortSignal;
  /** Writes one `{"result": …}` line. */
  push(result: Record<string, unknown>): void;
  /** Ends the answer (as a connection to the store that closes). */
  end(): void;
}

type Unary = (body: Record<string, unknown>) => { status: number; json: unknown };

const utf8 = new TextEncoder();

type Listener = (e: { readonly data: unknown }) => void;

/** One WebSocket the bridge opened: what it sent, and the store's side for the test to play. */
export class FakeSocket implements SocketLike {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** What the bridge sent, parsed, in order. */
  readonly sent: Record<string, unknown>[] = [];
  /** Closed, by either side. */
  closed = false;
  /** Closed by the bridge. */
  closedByBridge = false;
  readonly #listeners = new Map<string, Listener[]>();
  /** How many of the creates sent were answered by answerCreates. */
  #answered = 0;

  constructor(url: string, headers: Record<string, string>, opens: boolean) {
    this.url = url;
    this.headers = headers;
    setTimeout(() => {
      if (opens) this.#emit('open');
      else {
        this.closed = true;
        this.#emit('error');
        this.#emit('close');
      }
    }, 1);
  }

  addEventListener(type: string, fn: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), fn]);
  }

  send(data: string): void {
    if (this.closed) throw new Error('closed');
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedByBridge = true;
    setTimeout(() => this.#emit('close'), 1);
  }

  // ---- the store's side ----

  /** The create requests the bridge sent, in order. */
  creates(): Record<string, unknown>[] {
    return this.sent.flatMap((m) => (m.create_request ? [m.create_request as Record<string, unknown>] : []));
  }

  /** Sends one `{"result": …}` message. */
  push(result: Record<string, unknown>): void {
    this.pushRaw({ result });
  }

  pushRaw(m: unknown): void {
    if (!this.closed) this.#emit('message', { data: JSON.stringify(m) });
  }

  /** Answers `created` at `header` to every create not answered yet. */
  answerCreates(header: Record<string, unknown>): void {
    const creates = this.creates();
    for (; this.#answered < creates.length; this.#answered++)
      this.push({ header, watch_id: creates[this.#answered]?.watch_id, created: true });
  }

  /** The connection ends (a replica restarted, the network). */
  drop(): void {
    if (this.closed) return;
    this.closed = true;
    this.#emit('close');
  }

  /** Waits until the bridge has sent `n` messages in all. */
  async sentCount(n: number, ms = 3000): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + ms;
    while (this.sent.length < n) {
      if (Date.now() > deadline) throw new Error(`the bridge sent ${JSON.stringify(this.sent)}, not ${n} messages`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.sent;
  }

  #emit(type: string, e: { data: unknown } = { data: undefined }): void {
    for (const fn of this.#listeners.get(type) ?? []) fn(e);
  }
}

export class FakeStore {
  readonly sockets: FakeSocket[] = [];
  /** How many of the next WebSocket upgrades fail before they open. */
  refuseSockets = 0;
  readonly streams: FakeStream[] = [];
  readonly calls: { path: string; body: Record<string, unknown>; auth: string | null }[] = [];
  readonly routes = new Map<string, Unary>();
  /** GET routes (the dump), by path: the answer, given the request's signal. */
  readonly gets = new Map<string, (signal: AbortSignal) => Response | Promise<Response>>();

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
    const headers = new Headers(init?.headers);
    this.calls.push({ path: url.pathname, body, auth: headers.get('authorization') });
    if ((init?.method ?? 'GET') === 'GET') {
      const get = this.gets.get(url.pathname);
      if (get) return get(init?.signal ?? new AbortController().signal);
    }
    if (url.pathname === '/v3/election/observe')
      return this.#stream(body, init?.signal ?? new AbortController().signal);
    const route = this.routes.get(url.pathname);
    if (!route) return Response.json({ error: { code: 'not_found', message: 'no such route' } }, { status: 404 });
    const r = route(body);
    return Response.json(r.json, { status: r.status });
  };

  #stream(body: Record<string, unknown>, signal: AbortSignal): Response {
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    let open = true;
    const rs = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel() {
        open = false;
      },
    });
    signal.addEventListener('abort', () => {
      if (!open) return;
      open = false;
      controller?.error(new Error('aborted'));
    });
    this.streams.push({
      body,
      signal,
      push(result) {
        if (open) controller?.enqueue(utf8.encode(`${JSON.stringify({ result })}\n`));
      },
      end() {
        if (!open) return;
        open = false;
        controller?.close();
      },
    });
    return new Response(rs, { status: 200, headers: { 'Content-Type': 'application/json' } });
  }

  readonly openSocket = (url: string, headers: Record<string, string>): FakeSocket => {
    const opens = this.refuseSockets === 0;
    if (!opens) this.refuseSockets--;
    const s = new FakeSocket(url, headers, opens);
    this.sockets.push(s);
    return s;
  };

  /** Waits until `n` WebSockets were opened; the `n`th. */
  async socketCount(n: number, ms = 3000): Promise<FakeSocket> {
    const deadline = Date.now() + ms;
    while (this.sockets.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.sockets.length} sockets, not ${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.sockets[n - 1] as FakeSocket;
  }

  /** Waits until `n` streams (observes) were opened. */
  async streamCount(n: number, ms = 3000): Promise<FakeStream> {
    const deadline = Date.now() + ms;
    while (this.streams.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.streams.length} streams, not ${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.streams[n - 1] as FakeStream;
  }
}
