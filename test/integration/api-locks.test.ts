import { describe, expect, it } from 'vitest';
import { type ErrorJson, json, newApi, sleep, type TestApi } from './api-helpers.ts';
import { waitFor } from './cluster-helpers.ts';
import { SseReader } from './sse.ts';

interface Held {
  key: string;
  revision: number;
  lease: string;
}

function lock(api: TestApi, name: string, body: Record<string, unknown> = {}): Promise<Response> {
  return api.fetch(`/v1/locks/${name}`, { method: 'POST', body: JSON.stringify(body) });
}

async function keysUnder(api: TestApi, prefix: string): Promise<string[]> {
  const r = await json<{ kvs: { key: string }[] }>(await api.fetch(`/v1/kv?prefix=${prefix}&keys_only=true`));
  return r.kvs.map((kv) => kv.key);
}

async function leaseCount(api: TestApi): Promise<number> {
  return (await json<{ leases: unknown[] }>(await api.fetch('/v1/leases'))).leases.length;
}

describe('api: locks', () => {
  it('a free lock is taken at once; a busy one answers 409 lock_busy after wait_ms, leaving nothing behind', async () => {
    const api = await newApi();
    const res = await lock(api, 'jobs/a');
    expect(res.status).toBe(200);
    const held = await json<Held>(res);
    expect(held.key).toBe(`jobs/a/${Number(held.lease).toString(16)}`);
    expect(held.revision).toBeGreaterThan(0);
    expect(await leaseCount(api)).toBe(1);

    const t0 = Date.now();
    const busy = await lock(api, 'jobs/a', { wait_ms: 300 });
    expect(busy.status).toBe(409);
    expect((await json<ErrorJson>(busy)).error.code).toBe('lock_busy');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    expect(await keysUnder(api, 'jobs/a/')).toEqual([held.key]);
    // The lease the failed attempt granted was revoked.
    expect(await leaseCount(api)).toBe(1);

    const rel = await api.fetch(`/v1/locks/jobs/a?key=${encodeURIComponent(held.key)}`, { method: 'DELETE' });
    expect(rel.status).toBe(200);
    const again = await lock(api, 'jobs/a');
    expect(again.status).toBe(200);
    expect((await json<Held>(again)).revision).toBeGreaterThan(held.revision);
    const missing = await api.fetch(`/v1/locks/jobs/a?key=${encodeURIComponent(held.key)}`, { method: 'DELETE' });
    expect(missing.status).toBe(404);
    const outside = await api.fetch('/v1/locks/jobs/a?key=other', { method: 'DELETE' });
    expect(outside.status).toBe(400);
  });

  it('waiters get the lock first come, first served, each with a larger fencing revision', async () => {
    const api = await newApi();
    const first = await json<Held>(await lock(api, 'fair'));
    const order: string[] = [];
    const waiters: Promise<Held>[] = [];
    for (const who of ['w1', 'w2', 'w3']) {
      const before = (await keysUnder(api, 'fair/')).length;
      waiters.push(
        lock(api, 'fair', { wait_ms: 20_000 }).then(async (r) => {
          expect(r.status).toBe(200);
          order.push(who);
          return json<Held>(r);
        }),
      );
      // Enqueued (its key is there) before the next one asks.
      await waitFor(`${who} to queue`, async () =>
        (await keysUnder(api, 'fair/')).length > before ? true : undefined,
      );
    }
    let holder = first;
    const tokens = [first.revision];
    for (let i = 0; i < 3; i++) {
      await sleep(100);
      expect(order).toHaveLength(i);
      await api.fetch(`/v1/locks/fair?key=${encodeURIComponent(holder.key)}`, { method: 'DELETE' });
      holder = await (waiters[i] as Promise<Held>);
      tokens.push(holder.revision);
    }
    expect(order).toEqual(['w1', 'w2', 'w3']);
    expect([...tokens].sort((a, b) => a - b)).toEqual(tokens);
    expect(new Set(tokens).size).toBe(4);
  });

  it('a holder whose lease expires loses the lock and the next waiter gets it', async () => {
    const api = await newApi();
    const held = await json<Held>(await lock(api, 'exp', { ttl: 1 }));
    const t0 = Date.now();
    const next = await lock(api, 'exp', { wait_ms: 10_000 });
    expect(next.status).toBe(200);
    const got = await json<Held>(next);
    expect(got.revision).toBeGreaterThan(held.revision);
    expect(Date.now() - t0).toBeGreaterThan(500);
    expect(await keysUnder(api, 'exp/')).toEqual([got.key]);
  });

  it('takes a lease of the caller, refuses bad input, and follows token prefixes', async () => {
    const api = await newApi();
    const l = await json<{ id: string }>(await api.fetch('/v1/leases', { method: 'POST', body: '{"ttl":30}' }));
    const res = await lock(api, 'mine', { lease: l.id });
    expect(res.status).toBe(200);
    expect((await json<Held>(res)).lease).toBe(l.id);
    for (const body of [{ lease: l.id, ttl: 5 }, { wait_ms: -1 }, { wait_ms: 300_001 }, { lease: 'x' }, { nope: 1 }]) {
      const r = await lock(api, 'mine', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      await r.body?.cancel();
    }
    const unknown = await lock(api, 'mine2', { lease: '777777' });
    expect(unknown.status).toBe(404);
    const idem = await api.fetch('/v1/locks/x', { method: 'POST', body: '{}', headers: { 'idempotency-key': 'k' } });
    expect(idem.status).toBe(400);

    const guarded = await newApi({
      allowAnonymous: false,
      authTokens: JSON.stringify([{ token: 'write-token-0001', role: 'write', prefixes: ['app/'] }]),
    });
    const auth = { authorization: 'Bearer write-token-0001' };
    const ok = await guarded.fetch('/v1/locks/app/l', { method: 'POST', body: '{}', headers: auth });
    expect(ok.status).toBe(200);
    const no = await guarded.fetch('/v1/locks/other', { method: 'POST', body: '{}', headers: auth });
    expect(no.status).toBe(403);
  });
});

describe('api: elections', () => {
  async function leaseOf(api: TestApi, ttl = 30): Promise<string> {
    return (
      await json<{ id: string }>(await api.fetch('/v1/leases', { method: 'POST', body: JSON.stringify({ ttl }) }))
    ).id;
  }

  function post(api: TestApi, path: string, body: Record<string, unknown>): Promise<Response> {
    return api.fetch(`/v1/elections/${path}`, { method: 'POST', body: JSON.stringify(body) });
  }

  it('campaign, proclaim, observe, resign: one leader at a time, the next campaigner takes over', async () => {
    const api = await newApi();
    expect((await api.fetch('/v1/elections/svc')).status).toBe(404);
    const a = await leaseOf(api);
    const b = await leaseOf(api);
    const ra = await post(api, 'svc/campaign', { lease: a, value: 'node-a' });
    expect(ra.status).toBe(200);
    const leaderA = await json<{ key: string; revision: number }>(ra);

    const obs = await api.fetch('/v1/elections/svc/observe');
    expect(obs.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = new SseReader(obs.body as ReadableStream<Uint8Array>);
    try {
      const m1 = await reader.next();
      expect(m1).toMatchObject({ event: 'leader', data: { key: leaderA.key, value: 'node-a', lease: a } });

      const campaignB = post(api, 'svc/campaign', { lease: b, value: 'node-b', wait_ms: 20_000 });
      await waitFor('b to queue', async () => {
        const r = await json<{ count: number }>(await api.fetch('/v1/kv?prefix=svc/&count_only=true'));
        return r.count === 2 ? true : undefined;
      });
      expect(await json(await api.fetch('/v1/elections/svc'))).toMatchObject({ key: leaderA.key, value: 'node-a' });

      const pa = await post(api, 'svc/proclaim', {
        key: leaderA.key,
        revision: leaderA.revision,
        lease: a,
        value: 'a2',
      });
      expect(pa.status).toBe(200);
      expect(await reader.next()).toMatchObject({ event: 'leader', data: { key: leaderA.key, value: 'a2' } });
      const bKey = `svc/${Number(b).toString(16)}`;
      const pb = await post(api, 'svc/proclaim', { key: bKey, revision: leaderA.revision + 1, lease: b, value: 'x' });
      expect(pb.status).toBe(412);
      expect((await json<ErrorJson>(pb)).error.code).toBe('not_leader');

      const rs = await post(api, 'svc/resign', { key: leaderA.key, revision: leaderA.revision });
      expect(rs.status).toBe(200);
      const leaderB = await json<{ key: string; revision: number }>(await campaignB);
      expect(leaderB.key).toBe(bKey);
      expect(leaderB.revision).toBeGreaterThan(leaderA.revision);
      expect(await reader.next()).toMatchObject({ event: 'leader', data: { key: bKey, value: 'node-b' } });
      // Resigning again, or with a wrong revision, is not the leader's.
      expect((await post(api, 'svc/resign', { key: leaderA.key, revision: leaderA.revision })).status).toBe(412);
    } finally {
      await reader.cancel();
    }
  });

  it('a campaign not elected within wait_ms answers 409 and leaves no key; bad input is a 400', async () => {
    const api = await newApi();
    const a = await leaseOf(api);
    const b = await leaseOf(api);
    expect((await post(api, 'e/campaign', { lease: a, value: 'a' })).status).toBe(200);
    const late = await post(api, 'e/campaign', { lease: b, value: 'b', wait_ms: 200 });
    expect(late.status).toBe(409);
    expect((await json<ErrorJson>(late)).error.code).toBe('not_elected');
    const r = await json<{ count: number }>(await api.fetch('/v1/kv?prefix=e/&count_only=true'));
    expect(r.count).toBe(1);
    for (const [path, body] of [
      ['e/campaign', { value: 'no lease' }],
      ['e/campaign', { lease: a }],
      ['e/proclaim', { key: 'other/1', revision: 1, lease: a, value: 'v' }],
      ['e/resign', { key: 'e/1', revision: 'x' }],
    ] as const) {
      const res = await post(api, path, body);
      expect(res.status, path).toBe(400);
      await res.body?.cancel();
    }
    expect((await post(api, 'e/nope', {})).status).toBe(404);
  });
});
