import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../src/client/index.ts';
import { eventually, newClient, sleep } from './helpers.ts';

/** Leases with their keepalive loop, locks with fencing tokens, elections, cluster administration. */

describe('client: leases', () => {
  it('grant with keepalive outlives its TTL; close stops renewing and the lease expires; revoke deletes keys', async () => {
    const { client, sent } = await newClient();
    const lease = await client.leases.grant(1, { keepAlive: true });
    expect(lease.ttl).toBeGreaterThanOrEqual(1);
    expect(lease.revision).toBeTypeOf('number');
    await client.put('svc/a', 'up', { lease: lease.id });
    await sleep(lease.ttl * 1000 * 2.5);
    expect((await client.get('svc/a')).kv?.lease).toBe(lease.id);
    expect(lease.renewals).toBeGreaterThanOrEqual(3);
    const st = await client.leases.timeToLive(lease.id, { keys: true });
    expect(st.keys).toEqual(['svc/a']);
    expect(st.grantedTtl).toBe(lease.ttl);
    expect((await client.leases.list()).leases.map((l) => l.id)).toContain(lease.id);

    await lease.close();
    expect(lease.keepingAlive).toBe(false);
    const renewals = sent.filter((s) => s.path.endsWith('/keepalive')).length;
    await eventually('the lease to expire', async () => (await client.get('svc/a')).kv === undefined, 6000);
    expect(sent.filter((s) => s.path.endsWith('/keepalive')).length).toBe(renewals);
    expect(await client.leases.keepAliveOnce(lease.id).catch((x: unknown) => x)).toBeInstanceOf(NotFoundError);

    const other = await client.leases.grant(30, { keepAlive: { everyMs: 50 } });
    await client.put('svc/b', 'up', { lease: other.id });
    const revoked = await other.revoke();
    expect(revoked.deleted).toBe(1);
    expect(other.keepingAlive).toBe(false);
    expect((await client.get('svc/b')).kv).toBeUndefined();
  });
});

describe('client: locks', () => {
  it('the holder keeps its lock past the TTL, carries the fencing token, and unlock hands it on', async () => {
    const { client } = await newClient();
    const held = await client.lock('jobs/nightly', { ttl: 1 });
    const key = (await client.get(held.key)).kv;
    expect(key?.createRevision).toBe(held.revision);
    expect(key?.lease).toBe(held.leaseId);
    await sleep(2500);
    expect((await client.get(held.key)).kv?.createRevision).toBe(held.revision);
    const busy = await client.lock('jobs/nightly', { ttl: 1, waitMs: 200 }).catch((x: unknown) => x);
    expect(busy).toBeInstanceOf(ConflictError);
    expect((busy as ConflictError).code).toBe('lock_busy');

    const fenced = (token: number, value: string) =>
      client.txn({
        compare: [{ key: held.key, target: 'createRevision', op: '=', value: token }],
        success: [{ put: { key: 'register', value } }],
      });
    expect((await fenced(held.revision, 'mine')).succeeded).toBe(true);

    const waiting = client.lock('jobs/nightly', { waitMs: 5000 });
    await sleep(100);
    expect((await held.unlock()).deleted).toBe(1);
    const next = await waiting;
    expect(next.revision).toBeGreaterThan(held.revision);
    expect((await fenced(held.revision, 'stale')).succeeded).toBe(false);
    expect(await client.leases.timeToLive(held.leaseId).catch((x: unknown) => x)).toBeInstanceOf(NotFoundError);
    expect((await next.unlock()).deleted).toBe(1);
    expect((await client.get('register')).kv?.text).toBe('mine');
  });

  it('with a lease of your own, the holder neither renews nor revokes it', async () => {
    const { client } = await newClient();
    const lease = await client.leases.grant(30);
    const held = await client.lock('mine', { lease: lease.id });
    expect(held.leaseId).toBe(lease.id);
    expect(held.lease).toBeUndefined();
    await held.unlock();
    expect((await client.leases.timeToLive(lease.id)).id).toBe(lease.id);
  });
});

describe('client: elections', () => {
  it('campaign, leader, proclaim, observe, resign', async () => {
    const { client } = await newClient();
    const lease = await client.leases.grant(30, { keepAlive: true });
    expect(await client.elections.leader('ingest')).toBeUndefined();
    const me = await client.elections.campaign('ingest', { lease: lease.id, value: 'worker-1' });
    expect(me.lease).toBe(lease.id);
    const now = await client.elections.leader('ingest');
    expect(now?.text).toBe('worker-1');
    expect(now?.key).toBe(me.key);
    expect(now?.revision).toBe(me.revision);

    const stop = new AbortController();
    const seen: string[] = [];
    const observing = (async () => {
      for await (const l of client.elections.observe('ingest', { signal: stop.signal })) seen.push(l.text);
    })();
    await eventually('the current leader', () => seen.length === 1);
    await client.elections.proclaim('ingest', me, 'worker-1b');
    await eventually('the proclamation', () => seen.length === 2);
    stop.abort();
    await observing;
    expect(seen).toEqual(['worker-1', 'worker-1b']);

    const rival = await client.leases.grant(30);
    const lost = await client.elections
      .campaign('ingest', { lease: rival.id, value: 'worker-2', waitMs: 100 })
      .catch((x: unknown) => x);
    expect(lost).toBeInstanceOf(ConflictError);
    const notLeader = await client.elections
      .proclaim('ingest', { ...me, revision: me.revision + 1000 }, 'x')
      .catch((x: unknown) => x);
    expect(notLeader).toBeInstanceOf(PreconditionFailedError);
    expect((await client.elections.resign('ingest', me)).resigned).toBe(true);
    expect(await client.elections.leader('ingest')).toBeUndefined();
    await lease.revoke();
    await rival.revoke();
  });
});

describe('client: cluster', () => {
  it('status, leader transfer, add a learner, promote it, remove it', async () => {
    const { client } = await newClient();
    await client.put('warm', 'up');
    const st = await client.cluster.status();
    expect(st.leader).not.toBeNull();
    expect(st.members.map((m) => m.name).sort()).toEqual(['node-0', 'node-1', 'node-2']);
    expect(st.members.find((m) => m.name === st.leader)?.role).toBe('leader');
    const to = ['node-0', 'node-1', 'node-2'].find((m) => m !== st.leader) ?? '';
    expect((await client.cluster.transferLeader(to)).leader).toBe(to);
    expect((await client.cluster.addLearner('node-3')).conf?.learners).toEqual(['node-3']);
    expect((await client.cluster.promote('node-3')).conf?.voters).toContain('node-3');
    expect((await client.cluster.remove('node-3')).conf?.voters).toHaveLength(3);
  });
});
