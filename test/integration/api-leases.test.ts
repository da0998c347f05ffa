import { describe, expect, it } from 'vitest';
import { type ErrorJson, json, newApi, sleep, type TestApi } from './api-helpers.ts';
import { crash, leader, member, setFaults, status, stub, waitFor } from './cluster-helpers.ts';
import { SseReader } from './sse.ts';

interface Change {
  revision: number;
  events: { type: string; kv: { key: string; mod_revision: number } }[];
}

/** The first `n` changes of a watch from its start. */
async function readEvents(api: TestApi, path: string, n: number): Promise<Change[]> {
  const res = await api.fetch(path);
  expect(res.status).toBe(200);
  const r = new SseReader(res.body as ReadableStream<Uint8Array>);
  try {
    return (await r.changes(n)) as unknown as Change[];
  } finally {
    await r.cancel();
  }
}

// Test timing (vitest.config.ts): 20 ms ticks, election timeout 200-400 ms, so the minimum TTL is 1 s.

async function grant(api: TestApi, ttl: number, id?: string): Promise<{ id: string; ttl: number }> {
  const res = await api.fetch('/v1/leases', { method: 'POST', body: JSON.stringify(id ? { ttl, id } : { ttl }) });
  expect(res.status).toBe(200);
  return json(res);
}

async function putWithLease(api: TestApi, key: string, lease: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}?lease=${lease}`, { method: 'PUT', body: 'v' });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

async function exists(api: TestApi, key: string): Promise<boolean> {
  const res = await api.fetch(`/v1/kv/${key}`);
  await res.body?.cancel();
  return res.status === 200;
}

async function keepAlive(api: TestApi, id: string): Promise<Response> {
  return api.fetch(`/v1/leases/${id}/keepalive`, { method: 'POST' });
}

describe('api: leases', () => {
  it('grant, status with keys, list, keepalive and revoke, with etcd answers', async () => {
    const api = await newApi();
    const a = await grant(api, 60);
    expect(a.id).toMatch(/^[1-9][0-9]*$/);
    expect(a.ttl).toBe(60);
    const b = await grant(api, 30, '12345678901');
    expect(b).toMatchObject({ id: '12345678901', ttl: 30 });
    const dup = await api.fetch('/v1/leases', { method: 'POST', body: JSON.stringify({ ttl: 5, id: '12345678901' }) });
    expect(dup.status).toBe(409);
    expect((await json<ErrorJson>(dup)).error.code).toBe('lease_exists');

    await putWithLease(api, 'svc/a', a.id);
    await putWithLease(api, 'svc/b', a.id);
    const kv = await json<{ lease?: string }>(
      await api.fetch('/v1/kv/svc/a', { headers: { accept: 'application/json' } }),
    );
    expect(kv.lease).toBe(a.id);

    const st = await json<{ id: string; granted_ttl: number; ttl: number; keys: string[] }>(
      await api.fetch(`/v1/leases/${a.id}?keys=true`),
    );
    expect(st).toMatchObject({ id: a.id, granted_ttl: 60, keys: ['svc/a', 'svc/b'] });
    expect(st.ttl).toBeGreaterThan(50);
    expect(st.ttl).toBeLessThanOrEqual(60);

    const list = await json<{ leases: { id: string; ttl: number }[] }>(await api.fetch('/v1/leases'));
    expect(list.leases).toEqual([
      { id: a.id, ttl: 60 },
      { id: '12345678901', ttl: 30 },
    ]);
    const page = await json<{ leases: unknown[]; more: boolean; after: string }>(await api.fetch('/v1/leases?limit=1'));
    expect(page).toMatchObject({ more: true, after: a.id });

    const ka = await keepAlive(api, a.id);
    expect(ka.status).toBe(200);
    expect(await json(ka)).toEqual({ id: a.id, ttl: 60 });

    const rev = await api.fetch(`/v1/leases/${a.id}`, { method: 'DELETE' });
    expect(rev.status).toBe(200);
    expect(await json(rev)).toMatchObject({ id: a.id, deleted: 2 });
    expect(await exists(api, 'svc/a')).toBe(false);
    expect(await exists(api, 'svc/b')).toBe(false);
    for (const res of [
      await keepAlive(api, a.id),
      await api.fetch(`/v1/leases/${a.id}`),
      await api.fetch(`/v1/leases/${a.id}`, { method: 'DELETE' }),
      await api.fetch('/v1/kv/x?lease=999', { method: 'PUT', body: 'v' }),
    ]) {
      expect(res.status).toBe(404);
      expect((await json<ErrorJson>(res)).error.code).toBe('lease_not_found');
    }
    expect(await exists(api, 'x')).toBe(false);
  });

  it('a TTL below the minimum is raised and the answer says so; bad ids and TTLs are 400s that change nothing', async () => {
    const api = await newApi();
    expect((await grant(api, 1)).ttl).toBe(1);
    const raised = await newApi({ minLeaseTtl: 7 });
    expect((await grant(raised, 2)).ttl).toBe(7);
    for (const [path, init] of [
      ['/v1/leases', { method: 'POST', body: '{"ttl":0}' }],
      ['/v1/leases', { method: 'POST', body: '{"ttl":"5"}' }],
      ['/v1/leases', { method: 'POST', body: '{"ttl":5,"id":"-1"}' }],
      ['/v1/leases', { method: 'POST', body: '{"ttl":5,"id":"99999999999999999"}' }],
      ['/v1/leases', { method: 'POST', body: '{"ttl":5,"toString":1}' }],
      ['/v1/leases/abc', {}],
      ['/v1/leases/1/keepalive?x=1', { method: 'POST' }],
      ['/v1/kv/k?lease=abc', { method: 'PUT', body: 'v' }],
      ['/v1/kv/k?lease=1.5', { method: 'PUT', body: 'v' }],
      [
        '/v1/cas',
        { method: 'POST', body: JSON.stringify({ key: 'k', value: 'v', expect: { absent: true }, lease: -2 }) },
      ],
    ] as const) {
      const res = await api.fetch(path, init as RequestInit);
      expect(res.status, path).toBe(400);
      await res.body?.cancel();
    }
    const list = await json<{ leases: unknown[] }>(await api.fetch('/v1/leases'));
    expect(list.leases).toHaveLength(1);
  });

  it('cas and txn puts take a lease; a missing lease fails the whole txn', async () => {
    const api = await newApi();
    const l = await grant(api, 60);
    const cas = await api.fetch('/v1/cas', {
      method: 'POST',
      body: JSON.stringify({ key: 'c', value: 'v', expect: { absent: true }, lease: l.id }),
    });
    expect(cas.status).toBe(200);
    const txn = await api.fetch('/v1/txn', {
      method: 'POST',
      body: JSON.stringify({ success: [{ put: { key: 't', value: 'v', lease: Number(l.id) } }] }),
    });
    expect(txn.status).toBe(200);
    const bad = await api.fetch('/v1/txn', {
      method: 'POST',
      body: JSON.stringify({
        success: [{ put: { key: 'u', value: 'v' } }, { put: { key: 'w', value: 'v', lease: '424242' } }],
      }),
    });
    expect(bad.status).toBe(404);
    expect(await exists(api, 'u')).toBe(false);
    const st = await json<{ keys: string[] }>(await api.fetch(`/v1/leases/${l.id}?keys=true`));
    expect(st.keys).toEqual(['c', 't']);
  });

  it('revoking deletes every key of the lease in one revision: watchers see one atomic set of deletes', async () => {
    const api = await newApi();
    const l = await grant(api, 60);
    for (const k of ['r/1', 'r/2', 'r/3']) await putWithLease(api, k, l.id);
    const res = await api.fetch(`/v1/leases/${l.id}`, { method: 'DELETE' });
    const { revision } = await json<{ revision: number }>(res);
    const events = await readEvents(api, `/v1/watch?prefix=r/&start_revision=${revision}`, 1);
    expect(events).toHaveLength(1);
    expect(events[0]?.events.map((e) => [e.type, e.kv.key, e.kv.mod_revision])).toEqual([
      ['delete', 'r/1', revision],
      ['delete', 'r/2', revision],
      ['delete', 'r/3', revision],
    ]);
  });

  it('an expired lease takes its keys in one revision; kept alive, they stay past many TTLs', async () => {
    const api = await newApi();
    const kept = await grant(api, 1);
    const dropped = await grant(api, 1);
    await putWithLease(api, 'kept', kept.id);
    await putWithLease(api, 'd/1', dropped.id);
    const rev = await putWithLease(api, 'd/2', dropped.id);
    const until = Date.now() + 3_000;
    while (Date.now() < until) {
      const ka = await keepAlive(api, kept.id);
      expect(ka.status).toBe(200);
      await ka.body?.cancel();
      expect(await exists(api, 'kept')).toBe(true);
      await sleep(250);
    }
    expect(await exists(api, 'd/1')).toBe(false);
    const events = await readEvents(api, `/v1/watch?prefix=d/&start_revision=${rev + 1}`, 1);
    expect(events[0]?.events.map((e) => [e.type, e.kv.key])).toEqual([
      ['delete', 'd/1'],
      ['delete', 'd/2'],
    ]);
    expect((await api.fetch(`/v1/leases/${dropped.id}`)).status).toBe(404);
  });

  it('a lease kept alive through a leader change and a leader crash never loses its keys', async () => {
    const api = await newApi();
    const l = await grant(api, 1);
    await putWithLease(api, 'svc/x', l.id);
    let lead = await leader(api.names);
    const deadline = Date.now() + 6_000;
    let crashed = false;
    let transferred = false;
    while (Date.now() < deadline) {
      // A keepalive acknowledged at T keeps the key until T + 1 s: renew every 200 ms and the key never goes.
      const ka = await keepAlive(api, l.id);
      if (ka.status === 200) {
        await ka.body?.cancel();
      } else {
        // The leader was moving: the client retries, as etcd's clients do, well within the TTL.
        expect([503]).toContain(ka.status);
        await ka.body?.cancel();
      }
      expect(await exists(api, 'svc/x')).toBe(true);
      if (!transferred && Date.now() > deadline - 4_500) {
        const to = api.names.find((n) => n !== lead) as string;
        await stub(lead).transferLeadership(member(to));
        transferred = true;
      } else if (transferred && !crashed && Date.now() > deadline - 2_500) {
        lead = await leader(api.names);
        await crash(lead);
        crashed = true;
      }
      await sleep(150);
    }
    expect(crashed && transferred).toBe(true);
    expect(await exists(api, 'svc/x')).toBe(true);
  });

  it('an idle quiet leader with a lease keeps one alarm, at the expiry; without leases, none', async () => {
    const api = await newApi();
    const asked = Date.now();
    const l = await grant(api, 2);
    const granted = Date.now();
    await putWithLease(api, 'q', l.id);
    const lead = await leader(api.names);
    const st = await waitFor('the leader to go quiet', async () => {
      const s = await status(lead);
      return s.quiet ? s : undefined;
    });
    // The deadline is 2 s after the grant applied, which was between the call and its answer.
    expect(st.alarmAt).toBeGreaterThanOrEqual(asked + 2_000);
    expect(st.alarmAt).toBeLessThanOrEqual(granted + 2_000);
    for (const n of api.names.filter((n) => n !== lead)) {
      const f = await waitFor(`${n} to sleep`, async () => {
        const s = await status(n);
        return s.quiet ? s : undefined;
      });
      expect(f.alarmAt).toBeNull();
    }
    // No request until well past the expiry (status queries do not wake a node): the alarm alone
    // must have woken the leader to propose the revocation, or this read would still find the key.
    await sleep(Math.max(0, (st.alarmAt as number) + 1_000 - Date.now()));
    expect(await exists(api, 'q')).toBe(false);
    const after = await waitFor('the leader to go quiet again', async () => {
      const s = await status(await leader(api.names));
      return s.quiet ? s : undefined;
    });
    expect(after.alarmAt).toBeNull();
  });

  it('a quiet leader that loses its memory still expires its lease on time, not a TTL later', async () => {
    const api = await newApi();
    const l = await grant(api, 4);
    const granted = Date.now();
    await putWithLease(api, 'gone-on-time', l.id);
    const lead = await leader(api.names);
    await waitFor('the leader to go quiet', async () => ((await status(lead)).quiet ? true : undefined));
    await sleep(Math.max(0, granted + 2_000 - Date.now()));
    // Two seconds in, the memory goes (as when an idle object is evicted); storage and the alarm stay.
    await crash(lead);
    await waitFor('the key to expire', async () => ((await exists(api, 'gone-on-time')) ? undefined : true), 12_000);
    const after = Date.now() - granted;
    // Restarting the clock would keep it past 2 s + an election + 4 s + 0.4 s; the saved deadline does not.
    expect(after).toBeGreaterThanOrEqual(4_000);
    expect(after).toBeLessThan(5_500);
  });

  it('a keepalive whose renewal would come after the deadline is answered 404, never 200 for keys about to go', async () => {
    const api = await newApi();
    const l = await grant(api, 1);
    const granted = Date.now();
    await putWithLease(api, 'race', l.id);
    // Slow links from the leader: a keepalive's read barrier takes 150 ms or more, so one called 80 ms
    // before the deadline (at most 1 s after this client saw the grant) would renew after it.
    await setFaults(await leader(api.names), { delayMs: 150 });
    await sleep(Math.max(0, granted + 920 - Date.now()));
    const ka = await keepAlive(api, l.id);
    const body = await json<ErrorJson>(ka);
    expect(ka.status, JSON.stringify(body)).toBe(404);
    expect(body.error.code).toBe('lease_not_found');
    expect(await exists(api, 'race')).toBe(false);
  });
});
