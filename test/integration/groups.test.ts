import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { apiFetch, type ErrorJson, json, newApi, type TestApi } from './api-helpers.ts';
import { stub } from './cluster-helpers.ts';
import { SseReader } from './sse.ts';

/**
 * Groups (issue 19): independent Raft clusters behind one Worker, created
 * and deleted through /v1/groups, each with its whole API under
 * /groups/{name}. Nothing of one group is seen in another.
 */

let groups = 0;
const groupName = () => `g${++groups}-${crypto.randomUUID().slice(0, 6)}`;

async function create(api: TestApi, name: string, body: unknown = { size: 3 }): Promise<Response> {
  return api.fetch(`/v1/groups/${name}`, { method: 'PUT', body: JSON.stringify(body) });
}

async function put(api: TestApi, path: string, value: string): Promise<{ revision: number }> {
  const res = await api.fetch(path, { method: 'PUT', body: value });
  expect(res.status, await res.clone().text()).toBe(200);
  return json(res);
}

/** A GET answered in JSON (a key's value as `value`). */
async function get(api: TestApi, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await api.fetch(path, { headers: { accept: 'application/json' } });
  return { status: res.status, body: await json(res) };
}

describe('groups: lifecycle', () => {
  it('creates a group (idempotent for the same body, 409 for another), lists and shows it', async () => {
    const api = await newApi();
    const name = groupName();
    const first = await create(api, name, { size: 3, locations: ['weur', null, 'enam'] });
    expect(first.status, await first.clone().text()).toBe(201);
    const created = await json<{ name: string; size: number; state: string; members: unknown[] }>(first);
    expect(created).toMatchObject({ name, size: 3, state: 'active' });
    expect(created.members).toEqual([
      { name: 'node-0', location_hint: 'weur' },
      { name: 'node-1', location_hint: null },
      { name: 'node-2', location_hint: 'enam' },
    ]);
    // It takes writes at once, and its routes without a token answer for it.
    await put(api, `/groups/${name}/v1/kv/a`, '1');
    for (const path of ['/healthz', '/', '/v1/openapi.json']) {
      const res = await api.fetch(`/groups/${name}${path}`);
      expect(res.status, path).toBe(200);
      await res.body?.cancel();
    }

    const again = await create(api, name, { size: 3, locations: ['weur', null, 'enam'] });
    expect(again.status).toBe(200);
    const other = await create(api, name, { size: 5 });
    expect(other.status).toBe(409);
    expect((await json<ErrorJson>(other)).error.code).toBe('group_exists');

    const listed = await get(api, '/v1/groups');
    expect(listed.status).toBe(200);
    expect((listed.body.groups as { name: string }[]).map((g) => g.name)).toContain(name);

    const shown = await get(api, `/v1/groups/${name}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ name, state: 'active' });
    expect(typeof shown.body.leader).toBe('string');
    expect((shown.body.members as { name: string; reachable: boolean }[]).every((m) => m.reachable)).toBe(true);
  });

  it('refuses bad names and bodies with a 400, and changes nothing', async () => {
    const api = await newApi();
    for (const [path, body] of [
      ['/v1/groups/Bad_Name', { size: 3 }],
      ['/v1/groups/-x', { size: 3 }],
      [`/v1/groups/${groupName()}`, { size: 4 }],
      [`/v1/groups/${groupName()}`, { size: 3, locations: ['mars', null, null] }],
      [`/v1/groups/${groupName()}`, { size: 3, locations: [null] }],
      [`/v1/groups/${groupName()}`, { size: 3, extra: 1 }],
    ] as const) {
      const res = await api.fetch(path, { method: 'PUT', body: JSON.stringify(body) });
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
    }
    const listed = await get(api, '/v1/groups');
    expect(listed.body.groups).toEqual([]);
  });

  it('answers 404 group_not_found for a group nobody created, and brings no object of it to life', async () => {
    const api = await newApi();
    // The routes that ask for no token too (found by groups-fuzz: /healthz and the page answered 200).
    for (const path of [
      '/groups/nobody/v1/kv/a',
      '/groups/nobody/v1/watch?key=a',
      '/groups/nobody/readyz',
      '/groups/nobody/healthz',
      '/groups/nobody/v1/openapi.json',
      '/groups/nobody/',
      '/groups/nobody/status.js',
    ]) {
      const res = await api.fetch(path);
      expect(res.status, path).toBe(404);
      expect((await json<ErrorJson>(res)).error.code).toBe('group_not_found');
    }
    // The gateway answers in etcd's error shape.
    const v3 = await api.fetch('/groups/nobody/v3/kv/range', { method: 'POST', body: '{"key":"YQ=="}' });
    expect(v3.status).toBe(404);
    expect(await json(v3)).toMatchObject({ message: expect.stringContaining('no group') });
    // A group's object that was never bootstrapped refuses to start, and stores nothing.
    const ghost = stub(`${api.prefix}g/nobody/7:node-0`);
    const refused = await runInDurableObject(ghost, (node) => {
      try {
        node.status();
        return 'started';
      } catch (e) {
        return String(e);
      }
    });
    expect(refused).toMatch(/no such group node/);
    const tables = await runInDurableObject(ghost, (_i, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").one(),
    );
    expect(tables.n).toBe(0);
  });

  it('deletes a group (force needed while it holds keys); the name serves again only once re-created, empty', async () => {
    const api = await newApi();
    const name = groupName();
    expect((await create(api, name)).status).toBe(201);
    await put(api, `/groups/${name}/v1/kv/k`, 'v');
    const refused = await api.fetch(`/v1/groups/${name}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect((await json<ErrorJson>(refused)).error.code).toBe('group_not_empty');
    expect((await get(api, `/groups/${name}/v1/kv/k`)).status).toBe(200);

    const shown = await get(api, `/v1/groups/${name}`);
    const incarnation = shown.body.incarnation as number;
    // A watch open on the group ends with it.
    const open = await api.fetch(`/groups/${name}/v1/watch?prefix=k`, { headers: { accept: 'text/event-stream' } });
    expect(open.status).toBe(200);
    const watch = new SseReader(open.body as ReadableStream<Uint8Array>);
    const deleted = await api.fetch(`/v1/groups/${name}?force=true`, { method: 'DELETE' });
    expect(deleted.status, await deleted.clone().text()).toBe(200);
    const end = async (): Promise<string> => {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const m = await watch.next(until - Date.now()).catch(() => 'errored' as const);
        if (m === 'errored') return m;
        if (m === undefined) return watch.ended ? 'ended' : 'open';
      }
      return 'open';
    };
    expect(await end()).not.toBe('open');
    expect((await get(api, `/groups/${name}/v1/kv/k`)).status).toBe(404);
    expect((await get(api, `/v1/groups/${name}`)).status).toBe(404);
    // The old objects hold nothing.
    const old = stub(`${api.prefix}g/${name}/${incarnation}:node-0`);
    const rows = await runInDurableObject(old, (_i, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").one(),
    );
    expect(rows.n).toBe(0);

    expect((await create(api, name)).status).toBe(201);
    expect((await get(api, `/groups/${name}/v1/kv/k`)).status).toBe(404);
    await put(api, `/groups/${name}/v1/kv/k`, 'new');
    expect((await get(api, `/groups/${name}/v1/kv/k`)).body.value).toBe('new');
  });

  it("changes a group's membership through its own routes: a learner is made, catches up, is promoted; delete takes it too", async () => {
    const api = await newApi();
    const name = groupName();
    expect((await create(api, name)).status).toBe(201);
    await put(api, `/groups/${name}/v1/kv/before`, '1');
    const members = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body) });
    let res = await api.fetch(`/groups/${name}/v1/cluster/members`, members({ action: 'add_learner', node: 'node-3' }));
    expect(res.status, await res.clone().text()).toBe(200);
    res = await api.fetch(`/groups/${name}/v1/cluster/members`, members({ action: 'promote', node: 'node-3' }));
    expect(res.status, await res.clone().text()).toBe(200);
    const { revision } = await put(api, `/groups/${name}/v1/kv/after`, '2');
    const incarnation = (await get(api, `/v1/groups/${name}`)).body.incarnation as number;
    const newcomer = stub(`${api.prefix}g/${name}/${incarnation}:node-3`);
    await expect
      .poll(async () => (await newcomer.status()).applied, { timeout: 5000 })
      .toBeGreaterThanOrEqual(revision);
    const shown = await get(api, `/v1/groups/${name}`);
    expect((shown.body.members as { name: string }[]).map((m) => m.name)).toContain('node-3');
    expect((await api.fetch(`/v1/groups/${name}?force=true`, { method: 'DELETE' })).status).toBe(200);
    const rows = await runInDurableObject(newcomer, (_i, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").one(),
    );
    expect(rows.n).toBe(0);
  });

  it('answers 404 at once when a cached group turns out gone (deleted through another isolate)', async () => {
    const api = await newApi();
    const name = groupName();
    expect((await create(api, name)).status).toBe(201);
    await put(api, `/groups/${name}/v1/kv/k`, 'v');
    const incarnation = (await get(api, `/v1/groups/${name}`)).body.incarnation as number;
    // As another isolate's DELETE would leave them: the nodes' storage gone, this isolate's cache unaware.
    for (const m of ['node-0', 'node-1', 'node-2']) await stub(`${api.prefix}g/${name}/${incarnation}:${m}`).destroy();
    const t0 = Date.now();
    const res = await api.fetch(`/groups/${name}/v1/kv/k`);
    expect(res.status).toBe(404);
    expect((await json<ErrorJson>(res)).error.code).toBe('group_not_found');
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('keeps the default group: it cannot be deleted or created, and /groups/default is the same store', async () => {
    const api = await newApi();
    expect((await api.fetch('/v1/groups/default', { method: 'DELETE' })).status).toBe(409);
    expect((await create(api, 'default')).status).toBe(409);
    await put(api, '/v1/kv/d', 'x');
    expect((await get(api, '/groups/default/v1/kv/d')).body.value).toBe('x');
  });

  it('administers groups at /v1/groups only: under any group prefix, /groups/default/ too, those routes are 404', async () => {
    const api = await newApi();
    const name = groupName();
    expect((await create(api, name)).status).toBe(201);
    const other = groupName();
    for (const prefix of ['/groups/default', `/groups/${name}`]) {
      for (const [method, path, body] of [
        ['DELETE', `/v1/groups/${name}?force=true`, undefined],
        ['PUT', `/v1/groups/${other}`, '{"size":3}'],
        ['GET', '/v1/groups', undefined],
        ['GET', `/v1/groups/${name}`, undefined],
      ] as const) {
        const res = await api.fetch(`${prefix}${path}`, { method, body });
        expect(res.status, `${method} ${prefix}${path}`).toBe(404);
        expect((await json<ErrorJson>(res)).error.code).toBe('not_found');
      }
    }
    const list = await json<{ groups: { name: string }[] }>(await api.fetch('/v1/groups'));
    expect(list.groups.map((g) => g.name)).toContain(name);
    expect(list.groups.map((g) => g.name)).not.toContain(other);
  });
});

describe('groups: isolation', () => {
  it('keeps key spaces and revisions apart, in the JSON API and in the v3 gateway', async () => {
    const api = await newApi();
    const a = groupName();
    const b = groupName();
    expect((await create(api, a)).status).toBe(201);
    expect((await create(api, b)).status).toBe(201);
    const ra = await put(api, `/groups/${a}/v1/kv/shared`, 'from-a');
    const rb = await put(api, `/groups/${b}/v1/kv/shared`, 'from-b');
    await put(api, `/groups/${b}/v1/kv/only-b`, 'b');
    // Each group counts its own revisions from the start.
    expect(ra.revision).toBe(rb.revision);
    expect((await get(api, `/groups/${a}/v1/kv/shared`)).body.value).toBe('from-a');
    expect((await get(api, `/groups/${b}/v1/kv/shared`)).body.value).toBe('from-b');
    expect((await get(api, '/v1/kv/shared')).status).toBe(404);
    expect((await get(api, `/groups/${a}/v1/kv/only-b`)).status).toBe(404);
    const range = await get(api, `/groups/${a}/v1/kv`);
    expect((range.body.kvs as { key: string }[]).map((k) => k.key)).toEqual(['shared']);

    const v3 = await api.fetch(`/groups/${b}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: btoa('a'), range_end: btoa('z') }),
    });
    expect(v3.status).toBe(200);
    const kvs = (await json<{ kvs: { key: string; value: string }[] }>(v3)).kvs;
    expect(kvs.map((k) => [atob(k.key), atob(k.value)])).toEqual([
      ['only-b', 'b'],
      ['shared', 'from-b'],
    ]);
  });

  it('keeps watches, leases and locks apart', async () => {
    const api = await newApi();
    const a = groupName();
    expect((await create(api, a)).status).toBe(201);
    const res = await api.fetch(`/groups/${a}/v1/watch?prefix=w/`, { headers: { accept: 'text/event-stream' } });
    expect(res.status).toBe(200);
    const events = new SseReader(res.body as ReadableStream<Uint8Array>);
    await put(api, '/v1/kv/w/default', 'd');
    await put(api, `/groups/${a}/v1/kv/w/mine`, 'm');
    const first = await events.next();
    expect(first?.event).toBe('change');
    const data = (first?.data ?? { events: [] }) as { events: { kv: { key: string } }[] };
    const keys = data.events.map((e) => e.kv.key);
    expect(keys).toEqual(['w/mine']);
    await events.cancel();

    const grant = await api.fetch(`/groups/${a}/v1/leases`, { method: 'POST', body: JSON.stringify({ ttl: 30 }) });
    expect(grant.status).toBe(200);
    const id = (await json<{ id: string }>(grant)).id;
    expect((await get(api, `/groups/${a}/v1/leases/${id}`)).status).toBe(200);
    expect((await get(api, `/v1/leases/${id}`)).status).toBe(404);

    // The same lock name is free in each group.
    const lockIn = async (base: string) => {
      const l = await api.fetch(`${base}/v1/leases`, { method: 'POST', body: JSON.stringify({ ttl: 30 }) });
      const lease = (await json<{ id: string }>(l)).id;
      return api.fetch(`${base}/v1/locks/jobs`, { method: 'POST', body: JSON.stringify({ lease, wait_ms: 0 }) });
    };
    expect((await lockIn('')).status).toBe(200);
    expect((await lockIn(`/groups/${a}`)).status).toBe(200);
  });
});

describe('groups: tokens', () => {
  it('limits a token to its groups: 403 on every route of another group, and on group administration', async () => {
    const admin = await newApi();
    const a = groupName();
    const b = groupName();
    expect((await create(admin, a)).status).toBe(201);
    expect((await create(admin, b)).status).toBe(201);
    const tokens = JSON.stringify([
      { token: 'tenant-a-secret', role: 'admin', groups: [a] },
      { token: 'operator-secret', role: 'admin' },
    ]);
    const call = apiFetch(admin.prefix, { allowAnonymous: false, authTokens: tokens });
    const as = (token: string, path: string, init: RequestInit = {}) =>
      call(path, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
      });

    expect((await as('tenant-a-secret', `/groups/${a}/v1/kv/x`, { method: 'PUT', body: '1' })).status).toBe(200);
    expect(
      (await as('tenant-a-secret', `/groups/${a}/v3/kv/range`, { method: 'POST', body: '{"key":"eA=="}' })).status,
    ).toBe(200);
    for (const [path, init] of [
      [`/groups/${b}/v1/kv/x`, {}],
      [`/groups/${b}/v1/kv/x`, { method: 'PUT', body: '1' }],
      [`/groups/${b}/v1/watch?key=x`, {}],
      [`/groups/${b}/v1/leases`, { method: 'POST', body: '{"ttl":30}' }],
      [`/groups/${b}/v1/locks/l`, { method: 'POST', body: '{"lease":"1"}' }],
      [`/groups/${b}/v3/kv/range`, { method: 'POST', body: '{"key":"eA=="}' }],
      [`/groups/${b}/v3/watch`, { method: 'POST', body: '{"create_request":{"key":"eA=="}}' }],
      ['/v1/kv/x', {}],
      ['/v1/groups', {}],
      [`/v1/groups/${a}`, { method: 'DELETE' }],
      [`/groups/nobody/v1/kv/x`, {}],
    ] as const) {
      const res = await as('tenant-a-secret', path, init as RequestInit);
      expect(res.status, `${init && 'method' in init ? init.method : 'GET'} ${path}`).toBe(403);
    }
    expect((await as('operator-secret', `/groups/${b}/v1/kv/x`)).status).toBe(404);
    expect((await as('operator-secret', '/v1/groups')).status).toBe(200);
  });
});
