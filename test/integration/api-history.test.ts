import { describe, expect, it } from 'vitest';
import { type ErrorJson, json, newApi, type TestApi } from './api-helpers.ts';
import { allApplied, crash, leader, status, stub, waitFor } from './cluster-helpers.ts';

/** The history over HTTP: reads at a revision, compaction through the log, and what every replica answers. */

const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

async function put(api: TestApi, key: string, value: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

async function valueAt(api: TestApi, key: string, revision: number): Promise<Response> {
  return api.fetch(`/v1/kv/${key}?revision=${revision}`, { headers: { accept: 'application/json' } });
}

describe('api: history', () => {
  it('GET a key and a range as of a past revision', async () => {
    const api = await newApi();
    const r1 = await put(api, 'cfg/a', 'a1');
    const r2 = await put(api, 'cfg/b', 'b1');
    const r3 = await put(api, 'cfg/a', 'a2');
    const del = await api.fetch('/v1/kv/cfg/b', { method: 'DELETE' });
    expect(del.status).toBe(200);
    let res = await valueAt(api, 'cfg/a', r1);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ key: 'cfg/a', value: 'a1', mod_revision: r1, version: 1 });
    res = await valueAt(api, 'cfg/a', r3);
    expect(await json(res)).toMatchObject({ value: 'a2', version: 2 });
    res = await valueAt(api, 'cfg/b', r3 + 1);
    expect(res.status).toBe(404);
    await res.body?.cancel();
    res = await api.fetch(`/v1/kv?prefix=cfg/&revision=${r2}`);
    const page = await json<{ kvs: { key: string; value: string }[]; count: number; revision: number }>(res);
    expect(page.kvs.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['cfg/a=a1', 'cfg/b=b1']);
    expect(page.revision).toBe(r3 + 1); // the store's revision now, as etcd's header says
    // Serializable reads at a revision from a follower agree once it has applied it.
    const lead = await leader(api.names);
    await allApplied(api.names, (await status(lead)).applied);
    res = await api.fetch(`/v1/kv?prefix=cfg/&revision=${r2}&consistency=serializable`);
    expect((await json<{ count: number }>(res)).count).toBe(2);
  });

  it('a revision past the current one is 400 future_revision; a malformed one is 400', async () => {
    const api = await newApi();
    const r = await put(api, 'k', 'v');
    let res = await valueAt(api, 'k', r + 5);
    expect(res.status).toBe(400);
    expect((await json<ErrorJson>(res)).error).toMatchObject({ code: 'future_revision', field: 'revision' });
    for (const bad of ['-1', 'x', '1.5', '99999999999999999999']) {
      res = await api.fetch(`/v1/kv/k?revision=${bad}`);
      expect(res.status, bad).toBe(400);
      expect((await json<ErrorJson>(res)).error.field).toBe('revision');
    }
  });

  it('POST /v1/compact drops the history below a revision on every replica: reads below it answer 410', async () => {
    const api = await newApi();
    for (let i = 0; i < 5; i++) await put(api, `h/${i % 2}`, `v${i}`);
    let res = await api.fetch('/v1/compact', post({ revision: 3 }));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ revision: 5, compact_revision: 3 });
    res = await valueAt(api, 'h/0', 2);
    expect(res.status).toBe(410);
    expect((await json<{ error: Record<string, unknown> }>(res)).error).toMatchObject({
      code: 'compacted',
      compact_revision: 3,
    });
    res = await valueAt(api, 'h/0', 3);
    expect(await json(res)).toMatchObject({ value: 'v2' });
    // Every replica has the same compaction point (it went through the log).
    await allApplied(api.names, (await status(await leader(api.names))).applied);
    for (const name of api.names) {
      expect(await stub(name).get('h/0', 'serializable', 1000, 2), name).toEqual({ status: 'compacted', compacted: 3 });
      expect(await stub(name).get('h/0', 'serializable', 1000, 3), name).toMatchObject({ status: 'ok' });
    }
    // Compacting again at or below the point is 410; past the revision, 400; a bad body, 400.
    res = await api.fetch('/v1/compact', post({ revision: 3 }));
    expect(res.status).toBe(410);
    await res.body?.cancel();
    res = await api.fetch('/v1/compact', post({ revision: 99 }));
    expect((await json<ErrorJson>(res)).error.code).toBe('future_revision');
    for (const body of [{}, { revision: -1 }, { revision: '3' }, { revision: 3, extra: 1 }]) {
      res = await api.fetch('/v1/compact', post(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      await res.body?.cancel();
    }
  });

  it('the leader compacts by itself to keep HISTORY_KEEP_REVISIONS (200 in tests), and a crash keeps the history', async () => {
    const api = await newApi();
    for (let i = 0; i < 240; i++) await put(api, `auto/${i % 7}`, `v${i}`);
    const lead = await leader(api.names);
    // 240 - 200 = 40 revisions past the window: at least one automatic compaction (every 20).
    await waitFor('an automatic compaction', async () => {
      const res = await valueAt(api, 'auto/0', 1);
      await res.body?.cancel();
      return res.status === 410 ? true : undefined;
    });
    let res = await valueAt(api, 'auto/1', 230);
    expect(res.status).toBe(200);
    const before = await json(res);
    await crash(lead);
    res = await valueAt(api, 'auto/1', 230);
    expect(await json(res)).toEqual(before);
  });
});
