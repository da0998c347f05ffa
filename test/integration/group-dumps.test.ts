import { describe, expect, it } from 'vitest';
import { apiFetch, type ErrorJson, json, newApi, type TestApi } from './api-helpers.ts';

/**
 * Backup, restore and clone (issue 19): GET /v1/snapshot streams a group as
 * it was at a revision, page by page; POST /v1/groups/{name}/restore makes a
 * new group of it, which serves nothing until the whole dump is in; a dump
 * cut short, corrupted or of another format is refused and leaves nothing.
 * (test/integration/snapshot.test.ts is about Raft's own snapshots.)
 */

let groups = 0;
const groupName = () => `r${++groups}-${crypto.randomUUID().slice(0, 6)}`;

const utf8 = new TextEncoder();
const text = new TextDecoder();

interface KvJson {
  key: string;
  value?: string;
  value_base64?: string;
  lease?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
}

/** Every key of a group (`base`: '' or /groups/{name}), as of `revision` if given, through the cursor. */
async function allKeys(fetch: TestApi['fetch'], base: string, revision?: number): Promise<KvJson[]> {
  const out: KvJson[] = [];
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ limit: '1000' });
    if (revision !== undefined) q.set('revision', String(revision));
    if (cursor !== undefined) q.set('cursor', cursor);
    const res = await fetch(`${base}/v1/kv?${q}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const page = await json<{ kvs: KvJson[]; cursor?: string }>(res);
    out.push(...page.kvs);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

async function grant(api: TestApi, ttl: number): Promise<string> {
  const res = await api.fetch('/v1/leases', { method: 'POST', body: JSON.stringify({ ttl }) });
  expect(res.status).toBe(200);
  return (await json<{ id: string }>(res)).id;
}

/** Writes `n` keys under `prefix` in txns of 100 puts (a few revisions), every third on `lease`, every fifth bytes. */
async function seed(api: TestApi, prefix: string, n: number, lease?: string): Promise<void> {
  for (let from = 0; from < n; from += 100) {
    const success = [];
    for (let i = from; i < Math.min(n, from + 100); i++) {
      const key = `${prefix}${String(i).padStart(4, '0')}`;
      const value = i % 5 === 0 ? { value_base64: btoa(`\u00ff\u0000${i}`) } : { value: `v${i} ünïcode` };
      success.push({ put: { key, ...value, ...(lease !== undefined && i % 3 === 0 ? { lease } : {}) } });
    }
    const res = await api.fetch('/v1/txn', { method: 'POST', body: JSON.stringify({ success }) });
    expect(res.status, await res.clone().text()).toBe(200);
  }
}

async function dumpOf(api: TestApi, query = ''): Promise<{ bytes: Uint8Array; revision: number }> {
  const res = await api.fetch(`/v1/snapshot${query}`);
  expect(res.status, res.status === 200 ? '' : await res.text()).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-ndjson');
  return { bytes: new Uint8Array(await res.arrayBuffer()), revision: Number(res.headers.get('x-revision')) };
}

function lines(bytes: Uint8Array): string[] {
  return text.decode(bytes).split('\n');
}

describe('snapshot: export', () => {
  it('streams a header, leases before their keys, every key in order, and a trailer that checks', async () => {
    const api = await newApi({ maxRangeLimit: 25 });
    const lease = await grant(api, 300);
    await seed(api, 'k/', 60, lease);
    const { bytes, revision } = await dumpOf(api);
    const l = lines(bytes);
    expect(l.pop()).toBe('');
    const parsed = l.map((s) => JSON.parse(s) as Record<string, Record<string, unknown>>);
    expect(parsed[0]).toMatchObject({ format: 'durable-raft-dump', version: 1, group: 'default', revision });
    expect(parsed[1]?.lease).toMatchObject({ id: lease, ttl: 300 });
    expect(parsed[1]?.lease?.remaining).toBeGreaterThan(290);
    const kvs = parsed.filter((o) => o.kv !== undefined).map((o) => o.kv as unknown as KvJson);
    expect(kvs.map((k) => k.key)).toEqual((await allKeys(apiFetch(api.prefix), '')).map((k) => k.key));
    expect(kvs.find((k) => k.key === 'k/0000')).toMatchObject({ value_base64: btoa('\u00ff\u00000'), lease });
    expect(kvs.find((k) => k.key === 'k/0001')).toMatchObject({ value: 'v1 ünïcode' });
    const end = parsed[parsed.length - 1]?.end as { keys: number; leases: number; sha256: string };
    expect(end).toMatchObject({ keys: 60, leases: 1 });
    const before = bytes.slice(0, bytes.byteLength - utf8.encode(`${l[l.length - 1]}\n`).byteLength);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', before));
    expect(end.sha256).toBe(Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''));
  });

  it('answers a compacted revision 410 and a future one 400 before any byte; compaction mid-dump ends it with an error line', async () => {
    const api = await newApi({ maxRangeLimit: 10 });
    await seed(api, 'c/', 40);
    const early = (await dumpOf(api)).revision;
    await seed(api, 'd/', 10);
    const now = (await dumpOf(api)).revision;
    const compact = await api.fetch('/v1/compact', { method: 'POST', body: JSON.stringify({ revision: now }) });
    expect(compact.status).toBe(200);
    const gone = await api.fetch(`/v1/snapshot?revision=${early}`);
    expect(gone.status).toBe(410);
    expect((await json<ErrorJson>(gone)).error.code).toBe('compacted');
    const future = await api.fetch(`/v1/snapshot?revision=${now + 5}`);
    expect(future.status).toBe(400);
    expect((await json<ErrorJson>(future)).error.code).toBe('future_revision');

    // The first page fixes the revision; compacting past it before the rest is read ends the dump with an error.
    const res = await api.fetch('/v1/snapshot');
    expect(res.status).toBe(200);
    await seed(api, 'e/', 1);
    const later = Number(res.headers.get('x-revision')) + 1;
    expect((await api.fetch('/v1/compact', { method: 'POST', body: JSON.stringify({ revision: later }) })).status).toBe(
      200,
    );
    const l = lines(new Uint8Array(await res.arrayBuffer()));
    expect(l.pop()).toBe('');
    const last = JSON.parse(l[l.length - 1] ?? '{}') as { error?: { code: string; message: string } };
    expect(last.error?.code).toBe('compacted');
    expect(l.some((s) => s.startsWith('{"end"'))).toBe(false);
  });

  it('needs the admin role and a token not limited to key prefixes; a token for one group dumps that group only', async () => {
    const admin = await newApi();
    const g = groupName();
    expect((await admin.fetch(`/v1/groups/${g}`, { method: 'PUT', body: '{"size":3}' })).status).toBe(201);
    const tokens = JSON.stringify([
      { token: 'prefix-admin-secret', role: 'admin', prefixes: ['app/'] },
      { token: 'reader-secret', role: 'read' },
      { token: 'tenant-admin-secret', role: 'admin', groups: [g] },
    ]);
    const call = apiFetch(admin.prefix, { allowAnonymous: false, authTokens: tokens });
    const as = async (token: string, path: string, init: RequestInit = {}) => {
      const res = await call(path, { ...init, headers: { authorization: `Bearer ${token}` } });
      await res.body?.cancel();
      return res.status;
    };
    expect(await as('prefix-admin-secret', '/v1/snapshot')).toBe(403);
    expect(await as('reader-secret', '/v1/snapshot')).toBe(403);
    expect(await as('tenant-admin-secret', `/groups/${g}/v1/snapshot`)).toBe(200);
    expect(await as('tenant-admin-secret', '/v1/snapshot')).toBe(403);
    const dump = (await dumpOf(admin)).bytes;
    expect(await as('tenant-admin-secret', `/v1/groups/${groupName()}/restore`, { method: 'POST', body: dump })).toBe(
      403,
    );
  });
});
