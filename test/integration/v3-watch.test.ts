import { describe, expect, it } from 'vitest';
import { json, newApi, type TestApi } from './api-helpers.ts';
import { allApplied, leader, status } from './cluster-helpers.ts';
import { lines } from './json-lines.ts';
import { openSocket, SocketClient } from './ws-client.ts';

const b64 = (s: string) => btoa(s);

describe('v3 gateway: watch', () => {
  it('streams created, then the history from a revision, one JSON line per result', async () => {
    const api = await newApi();
    await api.fetch('/v1/kv/w/a', { method: 'PUT', body: '1' });
    await api.fetch('/v1/kv/w/a', { method: 'DELETE' });
    const res = await api.fetch('/v3/watch', {
      method: 'POST',
      body: JSON.stringify({
        create_request: { key: b64('w/'), range_end: b64('w0'), start_revision: '1', prev_kv: true },
      }),
    });
    expect(res.status).toBe(200);
    const got = await lines(res, 1000);
    // The replica that serves it may not have applied the writes yet: its revision then.
    expect(got[0]).toMatchObject({ created: true });
    const created = got[0] as { header: { revision: string } };
    expect(['1', '2', '3']).toContain(created.header.revision);
    const events = got.flatMap((r) => (r.events as unknown[]) ?? []);
    expect(events).toEqual([
      { kv: { key: b64('w/a'), create_revision: '2', mod_revision: '2', version: '1', value: b64('1') } },
      {
        type: 'DELETE',
        kv: { key: b64('w/a'), mod_revision: '3' },
        prev_kv: { key: b64('w/a'), create_revision: '2', mod_revision: '2', version: '1', value: b64('1') },
      },
    ]);
  });
});

/** GET /v3/watch with Upgrade: websocket: etcd's gateway protocol, many watches on one socket. */

type Result = {
  header: { revision?: string; cluster_id: string; member_id: string; raft_term: string };
  watch_id?: string;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  events?: { type?: string; kv: { key: string; value?: string }; prev_kv?: { value?: string } }[];
};

/** A client socket that queues what it receives, read as etcd's results. */
class Client extends SocketClient {
  /** Message `i`'s result. */
  async result(i: number): Promise<Result> {
    return (await this.upTo(i + 1))[i]?.result as Result;
  }
}

async function connect(api: TestApi, headers: Record<string, string> = {}): Promise<Client> {
  return new Client(await openSocket(api, '/v3/watch', headers));
}

async function put(api: TestApi, key: string, value: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

/** Every member has applied what the leader has. */
async function settled(api: TestApi): Promise<void> {
  await allApplied(api.names, (await status(await leader(api.names))).applied);
}

const shown = (r: Result) =>
  (r.events ?? []).map((e) => `${e.type ?? 'PUT'} ${atob(e.kv.key)}${e.kv.value ? `=${atob(e.kv.value)}` : ''}`);

describe('v3 gateway: watch over a WebSocket', () => {
  it('creates several watches on one socket (ids assigned and chosen), each getting its events; cancel; progress', async () => {
    const api = await newApi();
    const c = await connect(api);
    c.send({ create_request: { key: b64('a/'), range_end: b64('a0') } });
    c.send({ create_request: { key: b64('b'), watch_id: '7', prev_kv: true } });
    const [created0, created7] = [await c.result(0), await c.result(1)];
    expect(created0).toMatchObject({ header: { revision: '1' }, created: true });
    expect(created0.watch_id).toBeUndefined();
    expect(created7).toMatchObject({ header: { revision: '1' }, watch_id: '7', created: true });
    await put(api, 'a/1', 'x');
    await put(api, 'b', 'y');
    await put(api, 'b', 'z');
    const got = (await c.upTo(5)).slice(2).map((m) => m.result as Result);
    expect(got.map((r) => [r.watch_id ?? '0', r.header.revision, shown(r)])).toEqual([
      ['0', '2', ['PUT a/1=x']],
      ['7', '3', ['PUT b=y']],
      ['7', '4', ['PUT b=z']],
    ]);
    expect(atob(got[2]?.events?.[0]?.prev_kv?.value ?? '')).toBe('y');
    // The replica's term, once a leader was elected for the first write.
    expect(Number(got[0]?.header.raft_term)).toBeGreaterThan(0);
    c.send({ cancel_request: { watch_id: '42' } });
    c.send({ cancel_request: {} });
    expect(await c.result(5)).toMatchObject({ canceled: true });
    expect((await c.result(5)).watch_id).toBeUndefined();
    await put(api, 'a/2', 'w');
    await put(api, 'b', 'last');
    expect(shown(await c.result(6))).toEqual(['PUT b=last']);
    await settled(api);
    c.send({ progress_request: {} });
    expect(await c.result(7)).toMatchObject({ header: { revision: '6' }, watch_id: '-1' });
    expect(c.got).toHaveLength(8);
    c.ws.close();
  });

  it('a start in the past catches up; a compacted start is created then canceled; a duplicate id is refused', async () => {
    const api = await newApi();
    for (let i = 1; i <= 4; i++) await put(api, 'k', `v${i}`);
    const res = await api.fetch('/v1/compact', { method: 'POST', body: '{"revision":2}' });
    expect(res.status).toBe(200);
    await settled(api);
    const c = await connect(api);
    // etcd's revision 4 is the store's 3.
    c.send({ create_request: { key: b64('k'), start_revision: '4', watch_id: '1' } });
    c.send({ create_request: { key: b64('k'), start_revision: '2', watch_id: '2' } });
    c.send({ create_request: { key: b64('j'), watch_id: '1' } });
    const got = (await c.upTo(6)).map((m) => m.result as Result);
    const of = (id: string) => got.filter((r) => r.watch_id === id);
    expect(of('1').map((r) => (r.created ? 'created' : `${r.header.revision}: ${shown(r)}`))).toEqual([
      'created',
      '4: PUT k=v3',
      '5: PUT k=v4',
    ]);
    expect(of('2')).toEqual([
      expect.objectContaining({ header: expect.objectContaining({ revision: '5' }), created: true }),
      expect.objectContaining({ canceled: true, compact_revision: '3' }),
    ]);
    expect(of('-1')).toEqual([
      expect.objectContaining({
        created: true,
        canceled: true,
        cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
      }),
    ]);
    c.ws.close();
  });

  it('bad messages get the gateway error and change nothing; a token watches only its prefixes; auth and role checked', async () => {
    const tokens = JSON.stringify([
      { token: 'reader-token-9', role: 'read', prefixes: ['mine/'] },
      { token: 'scraper-token-9', role: 'metrics' },
      { token: 'writer-token-9', role: 'write' },
    ]);
    const api = await newApi({ allowAnonymous: false, authTokens: tokens });
    const refused = await api.fetch('/v3/watch', { headers: { upgrade: 'websocket' } });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: 16, message: 'etcdserver: invalid auth token' });
    const scraper = await api.fetch('/v3/watch', {
      headers: { upgrade: 'websocket', authorization: 'scraper-token-9' },
    });
    expect(scraper.status).toBe(403);
    await scraper.body?.cancel();
    const plain = await api.fetch('/v3/watch', { headers: { authorization: 'reader-token-9' } });
    expect(plain.status).toBe(501);
    await plain.body?.cancel();
    // etcd's clients send the token bare; Bearer works too.
    const c = await connect(api, { authorization: 'reader-token-9' });
    const bad: unknown[] = [
      'not json',
      [],
      { create_request: { key: b64('mine/a') }, progress_request: {} },
      { create_request: { key: 5 } },
      { create_request: { key: b64('mine/a'), start_revision: 'x' } },
      { create_request: { key: b64('mine/a'), filters: ['constructor'] } },
      { create_request: { key: '' } },
    ];
    for (const m of bad) c.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
    const errors = await c.upTo(bad.length);
    for (const m of errors) expect(m.error).toMatchObject({ grpc_code: 3, http_code: 400, http_status: 'Bad Request' });
    c.send({ create_request: { key: b64('theirs/a'), watch_id: '3' } });
    expect(await c.result(bad.length)).toMatchObject({
      watch_id: '3',
      created: true,
      canceled: true,
      cancel_reason: 'etcdserver: permission denied',
    });
    c.send({ create_request: { key: b64('mine/a') } });
    expect(await c.result(bad.length + 1)).toMatchObject({ created: true });
    for (const key of ['theirs/a', 'mine/a']) {
      const res = await api.fetch(`/v1/kv/${key}`, {
        method: 'PUT',
        body: 'v',
        headers: { authorization: 'Bearer writer-token-9' },
      });
      expect(res.status).toBe(200);
    }
    expect(shown(await c.result(bad.length + 2))).toEqual(['PUT mine/a=v']);
    c.ws.close();
  });

  it('a socket with no room for another watch refuses it with a reason; another socket takes it', async () => {
    const api = await newApi();
    const c = await connect(api);
    const key = (i: number) => b64(`services/${'x'.repeat(100)}/${i}`);
    for (let i = 0; i < 30; i++) c.send({ create_request: { key: key(i), watch_id: String(i + 1) } });
    const got = (await c.upTo(30)).map((m) => m.result as Result);
    const full = got.filter((r) => r.canceled);
    expect(full.length).toBeGreaterThan(0);
    expect(got.length - full.length).toBeGreaterThan(5);
    expect(full[0]?.cancel_reason).toMatch(/open another socket/);
    const d = await connect(api);
    d.send({ create_request: { key: key(29), watch_id: '30' } });
    expect(await d.result(0)).toMatchObject({ watch_id: '30', created: true });
    expect((await d.result(0)).canceled).toBeUndefined();
    c.ws.close();
    d.ws.close();
  });
});
