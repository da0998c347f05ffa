import { describe, expect, it } from 'vitest';
import { json, newApi, type TestApi } from './api-helpers.ts';
import { allApplied, leader, status } from './cluster-helpers.ts';
import { SocketClient as Client, openSocket } from './ws-client.ts';

/** GET /v1/watch with Upgrade: websocket: etcd's watch protocol in JSON, many watches over one socket. */

async function connect(api: TestApi, headers: Record<string, string> = {}): Promise<Client> {
  return new Client(await openSocket(api, '/v1/watch', headers));
}

async function put(api: TestApi, key: string, value: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

const events = (m: Record<string, unknown>) =>
  (m.events as { type: string; kv: { key: string; value?: string } }[]).map(
    (e) => `${e.type} ${e.kv.key}${e.kv.value !== undefined ? `=${e.kv.value}` : ''}`,
  );

describe('api: watch over a WebSocket', () => {
  it('creates several watches on one socket, each getting its own events with its watch_id; cancel ends one', async () => {
    const api = await newApi();
    const c = await connect(api);
    c.send({ create: { prefix: 'a/' } });
    c.send({ create: { key: 'b', watch_id: 7, prev_kv: true } });
    const [created0, created7] = await c.upTo(2);
    expect(created0).toEqual({ watch_id: 0, created: true, revision: 0 });
    expect(created7).toEqual({ watch_id: 7, created: true, revision: 0 });
    await put(api, 'a/1', 'x');
    await put(api, 'b', 'y');
    await put(api, 'b', 'z');
    const got = (await c.upTo(5)).slice(2);
    expect(got.map((m) => [m.watch_id, m.revision, events(m)])).toEqual([
      [0, 1, ['put a/1=x']],
      [7, 2, ['put b=y']],
      [7, 3, ['put b=z']],
    ]);
    const last = got[2] as { events: { prev_kv?: { value: string } }[] };
    expect(last.events[0]?.prev_kv?.value).toBe('y');
    c.send({ cancel: { watch_id: 0 } });
    expect((await c.upTo(6))[5]).toEqual({ watch_id: 0, canceled: true, reason: 'canceled by the client' });
    await put(api, 'a/2', 'w');
    await put(api, 'b', 'last');
    expect(events((await c.upTo(7))[6] as Record<string, unknown>)).toEqual(['put b=last']);
    c.send({ progress: {} });
    expect((await c.upTo(8))[7]).toEqual({ progress: { revision: 5 } });
    c.ws.close();
  });

  it('a watch from a past revision catches up; a compacted start is canceled with compact_revision', async () => {
    const api = await newApi();
    for (let i = 1; i <= 4; i++) await put(api, 'k', `v${i}`);
    const res = await api.fetch('/v1/compact', { method: 'POST', body: '{"revision":2}' });
    expect(res.status).toBe(200);
    await allApplied(api.names, (await status(await leader(api.names))).applied);
    const c = await connect(api);
    c.send({ create: { key: 'k', start_revision: 3, watch_id: 1 } });
    c.send({ create: { key: 'k', start_revision: 1, watch_id: 2 } });
    const got = await c.upTo(5);
    const of = (id: number) => got.filter((m) => m.watch_id === id);
    expect(of(1).map((m) => (m.created ? 'created' : `${m.revision}: ${events(m)}`))).toEqual([
      'created',
      '3: put k=v3',
      '4: put k=v4',
    ]);
    expect(of(2)).toEqual([
      { watch_id: 2, created: true, revision: 4 },
      expect.objectContaining({ watch_id: 2, canceled: true, compact_revision: 2 }),
    ]);
    c.ws.close();
  });

  it('bad messages get an error and change nothing; a token sees only its prefixes', async () => {
    const tokens = JSON.stringify([{ token: 'reader-token-9', role: 'read', prefixes: ['mine/'] }]);
    const api = await newApi({ allowAnonymous: false, authTokens: tokens });
    const refused = await api.fetch('/v1/watch', { headers: { upgrade: 'websocket' } });
    expect(refused.status).toBe(401);
    await refused.body?.cancel();
    const c = await connect(api, { authorization: 'Bearer reader-token-9' });
    const bad: unknown[] = [
      'not json',
      [],
      { create: { key: 'mine/a' }, cancel: { watch_id: 0 } },
      { toString: {} },
      { create: { key: 'mine/a', frob: 1 } },
      { create: { key: 5 } },
      { create: { key: 'mine/a', start_revision: -1 } },
      { create: { key: 'mine/a', filter: 'constructor' } },
      { create: { key: 'mine/a', progress_notify: true } },
      { create: { key: 'theirs/a' } },
      { cancel: { watch_id: 42 } },
    ];
    for (const m of bad) c.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
    const got = await c.upTo(bad.length);
    expect(got.every((m) => typeof (m.error as { code?: string } | undefined)?.code === 'string')).toBe(true);
    expect((got[9] as { error: { code: string } }).error.code).toBe('forbidden');
    c.send({ create: { key: 'mine/a' } });
    expect((await c.upTo(bad.length + 1))[bad.length]).toMatchObject({ watch_id: 0, created: true });
    c.ws.close();
  });
});
