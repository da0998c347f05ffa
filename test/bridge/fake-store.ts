/**
 * A stand-in for the store's /v3 routes, as a fetch the bridge is started
 * with: unary routes answer from a table the test fills; each POST
 * /v3/watch (a create) or /v3/election/observe is a stream the test writes
 * etcd's lines into and ends.
 */

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

export class FakeStore {
  readonly streams: FakeStream[] = [];
  readonly calls: { path: string; body: Record<string, unknown>; auth: string | null }[] = [];
  readonly routes = new Map<string, Unary>();
  /** The answer to the next POST /v3/watch instead of a stream, if set. */
  refuseWatch: { status: number; json: unknown } | undefined;

  readonly fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const body = JSON.parse(String(init?.body ?? '{}')) as Record<string, unknown>;
    const headers = new Headers(init?.headers);
    this.calls.push({ path: url.pathname, body, auth: headers.get('authorization') });
    const streamed = url.pathname === '/v3/election/observe';
    if (streamed || (url.pathname === '/v3/watch' && Object.hasOwn(body, 'create_request'))) {
      if (this.refuseWatch) {
        const r = this.refuseWatch;
        this.refuseWatch = undefined;
        return Response.json(r.json, { status: r.status });
      }
      return this.#stream(body, init?.signal ?? new AbortController().signal);
    }
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

  /** Waits until `n` streams (watches and observes) were opened. */
  async streamCount(n: number, ms = 3000): Promise<FakeStream> {
    const deadline = Date.now() + ms;
    while (this.streams.length < n) {
      if (Date.now() > deadline) throw new Error(`only ${this.streams.length} watch streams, not ${n}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.streams[n - 1] as FakeStream;
  }
}
