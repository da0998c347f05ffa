import { describe, expect, it } from 'vitest';
import { forgetLeaders } from '../../src/api/cluster.ts';
import { apiFetch, type ErrorJson, json, newApi, sleep } from './api-helpers.ts';
import { crash, leader } from './cluster-helpers.ts';

/** What clients observe: read-after-write across clients, one winner per CAS race, idempotent retries, leader crashes. */

describe('api: consistency', () => {
  it('a write is visible to a read from another client', async () => {
    const api = await newApi();
    const other = apiFetch(api.prefix);
    for (let i = 0; i < 10; i++) {
      const w = await api.fetch('/v1/kv/rw', { method: 'PUT', body: `v${i}` });
      expect(w.status).toBe(200);
      await w.body?.cancel();
      forgetLeaders(); // the other client starts from scratch, possibly at a follower
      const r = await other('/v1/kv/rw');
      expect(await r.text()).toBe(`v${i}`);
    }
  });

  it('N concurrent create-only and CAS writes: exactly one wins', async () => {
    const api = await newApi();
    const N = 8;
    const create = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        api.fetch('/v1/kv/race', { method: 'PUT', body: `c${i}`, headers: { 'if-none-match': '*' } }),
      ),
    );
    const codes = create.map((r) => r.status).sort();
    expect(codes).toEqual([201, ...Array(N - 1).fill(412)]);
    await Promise.all(create.map((r) => r.body?.cancel()));
    const rev = Number((await api.fetch('/v1/kv/race')).headers.get('etag')?.replaceAll('"', ''));
    const cas = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        api.fetch('/v1/cas', {
          method: 'POST',
          body: JSON.stringify({ key: 'race', value: `w${i}`, expect: { mod_revision: rev } }),
        }),
      ),
    );
    const results = await Promise.all(cas.map((r) => json<{ succeeded: boolean }>(r)));
    expect(results.filter((r) => r.succeeded)).toHaveLength(1);
  });

  it('Idempotency-Key: a retried write applies once and returns the first result', async () => {
    const api = await newApi();
    const putOnce = (body: string, key = 'retry-1') =>
      api.fetch('/v1/kv/idem', { method: 'PUT', body, headers: { 'idempotency-key': key } });
    const first = await json<{ revision: number }>(await putOnce('a'));
    const again = await json<{ revision: number }>(await putOnce('a'));
    expect(again.revision).toBe(first.revision);
    let res = await api.fetch('/v1/kv/idem', { headers: { accept: 'application/json' } });
    expect(await json(res)).toMatchObject({ version: 1, value: 'a' });
    res = await putOnce('different');
    expect(res.status).toBe(422);
    expect((await json<ErrorJson>(res)).error.code).toBe('idempotency_key_reused');
    // A cas retried after it succeeded still reports success (the first result), not a failed compare.
    const cas = () =>
      api.fetch('/v1/cas', {
        method: 'POST',
        body: JSON.stringify({ key: 'idem-cas', value: 'x', expect: { absent: true } }),
        headers: { 'idempotency-key': 'cas-1' },
      });
    expect(await json(await cas())).toMatchObject({ succeeded: true });
    expect(await json(await cas())).toMatchObject({ succeeded: true });
  });

  it('a leader crash during writes: every acknowledged write is readable; the rest are 503 or 504 unknown', async () => {
    const api = await newApi();
    const acked = new Map<string, string>();
    const unknown: string[] = [];
    const other: number[] = [];
    let n = 0;
    let crashed = false;
    const worker = async (w: number) => {
      for (let i = 0; i < 12; i++) {
        const key = `w${w}/k${i}`;
        const value = `v${n++}`;
        const idem: Record<string, string> = i % 2 === 0 ? { 'idempotency-key': key } : {};
        const res = await api.fetch(`/v1/kv/${key}`, {
          method: 'PUT',
          body: value,
          headers: { 'x-request-timeout-ms': '3000', ...idem },
        });
        if (res.status === 200) acked.set(key, value);
        else if (res.status === 504) {
          expect((await json<ErrorJson>(res)).outcome).toBe('unknown');
          unknown.push(key);
        } else if (res.status !== 503) other.push(res.status);
        await res.body?.cancel().catch(() => {});
        await sleep(5);
      }
    };
    const crasher = async () => {
      await sleep(60);
      await crash(await leader(api.names));
      crashed = true;
    };
    await Promise.all([worker(0), worker(1), worker(2), crasher()]);
    // And a crash while writes are surely in flight at the leader.
    const lead = await leader(api.names);
    const inflight = [
      api.fetch('/v1/kv/inflight/plain', { method: 'PUT', body: 'p' }),
      api.fetch('/v1/kv/inflight/idem', { method: 'PUT', body: 'i', headers: { 'idempotency-key': 'inflight' } }),
    ];
    await crash(lead);
    for (const [i, p] of inflight.entries()) {
      const res = await p;
      const key = i === 0 ? 'inflight/plain' : 'inflight/idem';
      // The idempotent write is retried on the new leader inside the deadline and applies once.
      if (i === 1) expect(res.status).toBe(200);
      if (res.status === 200) acked.set(key, i === 0 ? 'p' : 'i');
      else if (res.status === 504) {
        expect((await json<ErrorJson>(res)).outcome).toBe('unknown');
        unknown.push(key);
      } else other.push(res.status);
      await res.body?.cancel().catch(() => {});
    }
    expect(crashed).toBe(true);
    expect(other).toEqual([]);
    expect(acked.size).toBeGreaterThan(0);
    forgetLeaders();
    for (const [key, value] of acked) {
      const res = await api.fetch(`/v1/kv/${key}`);
      expect(res.status, key).toBe(200);
      expect(await res.text()).toBe(value);
    }
    for (const key of unknown) {
      const res = await api.fetch(`/v1/kv/${key}`);
      expect([200, 404]).toContain(res.status);
      await res.body?.cancel();
    }
  });
});
