/**
 * The bridge's unary POSTs over node:http (src/bridge/http-post.ts) against
 * a real local server: the whole answer, non-2xx answers, a refused
 * connection (reported as fetch reports it, so a write that was never sent
 * is not taken for one whose answer was lost), and a cancelled call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lostAnswer } from '../../src/bridge/errors.ts';
import { Status } from '../../src/bridge/grpc.ts';
import { nodePost } from '../../src/bridge/http-post.ts';

interface Res {
  statusCode: number;
  setHeader(name: string, value: string): void;
  end(body?: string): void;
}
interface Req {
  readonly url: string;
  readonly headers: Record<string, string>;
  on(event: 'data', fn: (chunk: Uint8Array) => void): void;
  on(event: 'end', fn: () => void): void;
}
interface Server {
  listen(port: number, host: string, cb: () => void): void;
  address(): { port: number };
  close(cb: () => void): void;
  closeAllConnections(): void;
}
const { createServer } = (
  process as unknown as { getBuiltinModule(n: string): { createServer(h: (q: Req, s: Res) => void): Server } }
).getBuiltinModule('node:http');

let server: Server;
let base = '';
/** Requests the server has held without answering (the cancel test). */
const held: Res[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = new TextDecoder().decode(Buffer.concat(chunks));
      if (req.url === '/hold') {
        held.push(res);
        return;
      }
      res.statusCode = req.url === '/refuse' ? 400 : 200;
      res.setHeader('content-type', 'application/json');
      // Multi-byte text, so a chunk boundary inside a character would show.
      res.end(JSON.stringify({ echo: body, auth: req.headers.authorization ?? null, text: 'ä€😀'.repeat(5000) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(resolve));
});

describe('nodePost', () => {
  const post = nodePost();
  const signal = () => new AbortController().signal;

  it('returns the whole answer and sends the headers and body, on a reused connection', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await post(`${base}/v3/kv/put`, { Authorization: 'Bearer t' }, `{"n":${i},"k":"ü"}`, signal());
      expect(r.status).toBe(200);
      const j = JSON.parse(r.text) as { echo: string; auth: string; text: string };
      expect(j.echo).toBe(`{"n":${i},"k":"ü"}`);
      expect(j.auth).toBe('Bearer t');
      expect(j.text).toBe('ä€😀'.repeat(5000));
    }
  });

  it('passes a refusal on as an answer', async () => {
    const r = await post(`${base}/refuse`, {}, '{}', signal());
    expect(r.status).toBe(400);
  });

  it('reports a refused connection as fetch does, so the call is unavailable rather than unknown', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer(() => {});
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(resolve));
    const e = await post(`http://127.0.0.1:${port}/v3/kv/put`, {}, '{}', signal()).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(TypeError);
    const ctx = { token: undefined, deadline: undefined, signal: signal() };
    expect(lostAnswer(e, ctx, true).status.code).toBe(Status.UNAVAILABLE);
  });

  it('stops waiting when the call is cancelled', async () => {
    const ac = new AbortController();
    const pending = post(`${base}/hold`, {}, '{}', ac.signal);
    await expect.poll(() => held.length).toBe(1);
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    held[0]?.end();
  });
});
