import { describe, expect, it } from 'vitest';
import { type ErrorJson, json, newApi } from './api-helpers.ts';
import { leader, member, partition, setFaults, status, waitFor } from './cluster-helpers.ts';

/** Cluster administration, readiness, and the 503/504 answers when there is no leader or quorum. */

interface ClusterJson {
  leader: string | null;
  term: number;
  members: {
    name: string;
    membership: string;
    role: string | null;
    applied_index: number | null;
    reachable: boolean;
    last_contact: string | null;
  }[];
}

const post = (body: unknown): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

describe('api: cluster', () => {
  it('GET /v1/cluster, GET /readyz, POST /v1/cluster/leader', async () => {
    const api = await newApi();
    let res = await api.fetch('/readyz');
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ ready: true });

    res = await api.fetch('/v1/cluster');
    expect(res.status).toBe(200);
    const c = await json<ClusterJson>(res);
    expect(c.leader).toBe(member(await leader(api.names)));
    expect(c.members.map((m) => m.name).sort()).toEqual(['node-0', 'node-1', 'node-2']);
    expect(c.members.every((m) => m.membership === 'voter' && m.reachable)).toBe(true);
    expect(c.members.filter((m) => m.role === 'leader')).toHaveLength(1);
    // The leader has heard from each follower recently.
    for (const m of c.members.filter((m) => m.name !== c.leader)) {
      expect(Date.now() - Date.parse(m.last_contact ?? '')).toBeLessThan(60_000);
    }

    const to = ['node-0', 'node-1', 'node-2'].find((m) => m !== c.leader) ?? '';
    res = await api.fetch('/v1/cluster/leader', post({ to }));
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ leader: to });
    // Writes follow the new leader.
    res = await api.fetch('/v1/kv/after-transfer', { method: 'PUT', body: 'v' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    res = await api.fetch('/v1/cluster/leader', post({ to: 'node-9' }));
    expect(res.status).toBe(409);
    await res.body?.cancel();
  });

  it('POST /v1/cluster/members: add a learner, promote it, remove it', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/cluster/members', post({ action: 'add_learner', node: 'node-3' }));
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ conf: { learners: ['node-3'] } });
    // Only a learner is promoted: not a voter, not a name that is no member (it would add a voter that is not there).
    for (const node of ['node-0', 'node-9']) {
      const refused = await api.fetch('/v1/cluster/members', post({ action: 'promote', node }));
      expect(refused.status).toBe(409);
      expect(await json(refused)).toMatchObject({ error: { code: 'not_a_learner' } });
    }
    res = await api.fetch('/v1/cluster/members', post({ action: 'promote', node: 'node-3' }));
    expect(res.status).toBe(200);
    const conf = (await json<{ conf: { voters: string[] } }>(res)).conf;
    expect(conf.voters.sort()).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
    res = await api.fetch('/v1/cluster/members', post({ action: 'remove', node: 'node-3' }));
    expect(res.status).toBe(200);
    expect((await json<{ conf: { voters: string[] } }>(res)).conf.voters).toHaveLength(3);
  });
});

describe('api: no leader, no quorum', () => {
  it('no leader within the deadline: 503 with Retry-After, for reads, writes and /readyz', async () => {
    const api = await newApi();
    // Cut every link before anyone is elected: no leader can emerge.
    const all = api.names.map(member);
    for (const n of api.names) {
      const me = member(n);
      await setFaults(n, { blocked: all.filter((o) => o !== me).flatMap((o) => [`${me}>${o}`, `${o}>${me}`]) });
    }
    const h = { 'x-request-timeout-ms': '400' };
    for (const [path, init] of [
      ['/v1/kv/k', { method: 'PUT', body: 'v', headers: h }],
      ['/v1/kv/k', { headers: h }],
      ['/v1/kv?prefix=k', { headers: h }],
      ['/readyz', { headers: h }],
    ] as const) {
      const res = await api.fetch(path, init);
      expect(res.status, `${path} ${init.body ?? ''}`).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      const e = await json<ErrorJson>(res);
      expect(['unavailable', 'not_ready']).toContain(e.error.code);
    }
  });

  it('a leader cut off from its quorum: the write is reported 504 outcome unknown, never failed', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/kv/k', { method: 'PUT', body: 'v0' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const lead = await leader(api.names);
    await partition(
      [lead],
      api.names.filter((n) => n !== lead),
    );
    res = await api.fetch('/v1/kv/k', { method: 'PUT', body: 'v1', headers: { 'x-request-timeout-ms': '300' } });
    expect(res.status).toBe(504);
    const e = await json<ErrorJson>(res);
    expect(e.error.code).toBe('outcome_unknown');
    expect(e.outcome).toBe('unknown');
    await waitFor('the old leader steps down', async () => ((await status(lead)).role !== 'leader' ? true : undefined));
  });
});
