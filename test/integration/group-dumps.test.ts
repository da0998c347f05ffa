import { describe, expect, it } from 'vitest';
import { apiFetch, type ErrorJson, json, newApi, sleep, type TestApi } from './api-helpers.ts';

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

/** What a restore keeps of a key: its name, value and lease (revisions are the new group's). */
const kept = (kvs: readonly KvJson[]) =>
  kvs.map((k) => ({ key: k.key, value: k.value, value_base64: k.value_base64, lease: k.lease }));

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

/** A body that streams `bytes` in uneven chunks (a restore reads it as a stream). */
function streamOf(bytes: Uint8Array, chunk = 1000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      const size = chunk + (at % 7);
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

async function restore(api: TestApi, name: string, body: BodyInit, size = 3): Promise<Response> {
  return api.fetch(`/v1/groups/${name}/restore?size=${size}`, { method: 'POST', body });
}

function lines(bytes: Uint8Array): string[] {
  return text.decode(bytes).split('\n');
}

/** A dump's lines (as `lines` cut them) changed on purpose, with the trailer's checksum made for them again. */
async function resealed(ls: readonly string[]): Promise<string[]> {
  const body = ls.slice(0, -2);
  const end = (JSON.parse(ls[ls.length - 2] ?? '{}') as { end: Record<string, unknown> }).end;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8.encode(`${body.join('\n')}\n`)));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  return [...body, JSON.stringify({ end: { ...end, sha256 } }), ''];
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

describe('snapshot: restore', () => {
  it('restores the default group as it was at revision N, dumped while writers kept writing', async () => {
    const api = await newApi({ maxRangeLimit: 20 });
    const reader = apiFetch(api.prefix);
    const lease = await grant(api, 300);
    await seed(api, 'app/', 150, lease);

    // Writers overwrite and add keys while the dump is read, a page at a time.
    let stop = false;
    let written = 0;
    const writer = async (w: number) => {
      for (let i = 0; !stop && i < 40; i++) {
        const key = i % 2 === 0 ? `app/${String((w * 37 + i * 11) % 150).padStart(4, '0')}` : `new/${w}/${i}`;
        const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: `w${w}-${i}` });
        expect(res.status).toBe(200);
        written++;
      }
    };
    const res = await api.fetch('/v1/snapshot');
    expect(res.status).toBe(200);
    const revision = Number(res.headers.get('x-revision'));
    const writers = [0, 1, 2].map(writer);
    const chunks: Uint8Array[] = [];
    const body = (res.body as ReadableStream<Uint8Array>).getReader();
    for (let page = 0; ; page++) {
      const { done, value } = await body.read();
      if (done) break;
      chunks.push(value);
      // Let the writers get ahead of the dump.
      if (page === 1) while (written < 15 && !stop) await sleep(5);
    }
    stop = true;
    await Promise.all(writers);
    expect(written).toBeGreaterThanOrEqual(15);
    const dump = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) {
      dump.set(c, at);
      at += c.byteLength;
    }

    const source = await allKeys(reader, '', revision);
    expect(source.length).toBe(150);
    expect((await allKeys(reader, '')).length).toBeGreaterThan(150);

    const name = groupName();
    const answer = await restore(api, name, streamOf(dump));
    expect(answer.status, await answer.clone().text()).toBe(201);
    const a = await json<{ state: string; restored: Record<string, unknown> }>(answer);
    expect(a.state).toBe('active');
    expect(a.restored).toMatchObject({
      keys: 150,
      leases: 1,
      source: { group: 'default', revision, keys: 150 },
      expired_leases: 0,
      expired_keys: 0,
    });
    const restored = await allKeys(reader, `/groups/${name}`);
    expect(kept(restored)).toEqual(kept(source));
    // Revisions are the new group's: a few batches, every key created by one of them.
    expect(Math.max(...restored.map((k) => k.mod_revision))).toBe(a.restored.revision);
    expect(restored.every((k) => k.version === 1)).toBe(true);
    // The lease keeps its id, with the TTL it had left.
    const l = await reader(`/groups/${name}/v1/leases/${lease}?keys=true`);
    expect(l.status).toBe(200);
    const status = await json<{ granted_ttl: number; ttl: number; keys: string[] }>(l);
    expect(status.granted_ttl).toBeGreaterThan(280);
    expect(status.granted_ttl).toBeLessThanOrEqual(300);
    expect(status.keys).toEqual(source.filter((k) => k.lease === lease).map((k) => k.key));
    // It takes writes; the source is untouched.
    expect((await reader(`/groups/${name}/v1/kv/after`, { method: 'PUT', body: 'x' })).status).toBe(200);
    expect((await reader('/v1/kv/after')).status).toBe(404);
  });

  it('serves nothing while the dump comes in; the name is taken meanwhile', async () => {
    const api = await newApi();
    await seed(api, 's/', 30);
    const dump = (await dumpOf(api)).bytes;
    const cut = dump.indexOf(0x0a, dump.byteLength / 2) + 1;
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 0) controller.enqueue(dump.slice(0, cut));
        else if (sent === 1) {
          await held;
          controller.enqueue(dump.slice(cut));
        } else controller.close();
        sent++;
      },
    });
    const name = groupName();
    const restoring = restore(api, name, body);
    await expect.poll(async () => (await api.fetch(`/v1/groups/${name}`)).status, { timeout: 5000 }).toBe(200);
    const shown = await json<{ state: string }>(await api.fetch(`/v1/groups/${name}`));
    expect(shown.state).toBe('restoring');
    const read = await api.fetch(`/groups/${name}/v1/kv/s/0001`);
    expect(read.status).toBe(503);
    expect((await json<ErrorJson>(read)).error.code).toBe('group_not_ready');
    const create = await api.fetch(`/v1/groups/${name}`, { method: 'PUT', body: '{"size":3}' });
    expect(create.status).toBe(409);
    expect((await json<ErrorJson>(create)).error.code).toBe('group_restoring');
    const again = await restore(api, name, dump);
    expect(again.status).toBe(409);
    release();
    expect((await restoring).status).toBe(201);
    expect((await api.fetch(`/groups/${name}/v1/kv/s/0001`)).status).toBe(200);
    // The name of an existing group is never restored into.
    const taken = await restore(api, name, dump);
    expect(taken.status).toBe(409);
    expect((await json<ErrorJson>(taken)).error.code).toBe('group_exists');
  });

  it('refuses a dump cut short, corrupted or of another format with 400 bad_dump, and leaves no group behind', async () => {
    const api = await newApi();
    const lease = await grant(api, 300);
    await seed(api, 'b/', 40, lease);
    const dump = (await dumpOf(api)).bytes;
    const l = lines(dump);
    const join = (ls: readonly string[]) => utf8.encode(ls.join('\n'));
    const trailer = l.length - 2;
    const variants: [string, Uint8Array, RegExp][] = [
      ['no trailer', join([...l.slice(0, trailer), '']), /truncated: no trailer/],
      ['cut mid-line', dump.slice(0, dump.byteLength - 200), /truncated: line \d+ is cut short/],
      ['cut in the trailer', dump.slice(0, dump.byteLength - 5), /truncated|trailer/],
      ['a byte flipped in a value', join(l.map((s) => s.replace('"v1 ünïcode"', '"v1 ünïcodf"'))), /checksum/],
      ['a count changed', join(l.map((s) => s.replace('"keys":40', '"keys":41'))), /counts 41 keys/],
      ['a line not JSON', join(l.map((s, i) => (i === 5 ? s.slice(0, -3) : s))), /line 6: not a line of JSON/],
      ['another format', join(l.map((s, i) => (i === 0 ? s.replace('durable-raft-dump', 'etcd') : s))), /format/],
      ['another version', join(l.map((s, i) => (i === 0 ? s.replace('"version":1', '"version":9') : s))), /version 9/],
      ['not a dump at all', utf8.encode('hello\n'), /not JSON/],
      ['empty', new Uint8Array(0), /empty/],
    ];
    const name = groupName();
    for (const [what, body, message] of variants) {
      const res = await restore(api, name, streamOf(body, 333));
      expect(res.status, `${what}: ${await res.clone().text()}`).toBe(400);
      const e = (await json<ErrorJson>(res)).error;
      expect(e.code, what).toBe('bad_dump');
      expect(e.message, what).toMatch(message);
      expect((await api.fetch(`/v1/groups/${name}`)).status, what).toBe(404);
      expect((await api.fetch(`/groups/${name}/v1/kv/b/0001`)).status, what).toBe(404);
    }
    // A key line the store would refuse is a bad dump too, naming its line.
    const badKey = join(l.map((s) => s.replace('"key":"b/0002"', '"key":""')));
    const refused = await restore(api, name, badKey);
    expect(refused.status).toBe(400);
    expect((await json<ErrorJson>(refused)).error.message).toMatch(/line \d+: kv.key: expected a non-empty key/);
    expect((await api.fetch(`/v1/groups/${name}`)).status).toBe(404);

    // The name is free: the sound dump restores into it.
    const ok = await restore(api, name, dump, 5);
    expect(ok.status, await ok.clone().text()).toBe(201);
    expect((await json<{ size: number }>(ok)).size).toBe(5);
    expect(kept(await allKeys(api.fetch, `/groups/${name}`))).toEqual(kept(await allKeys(api.fetch, '')));
  });

  it('grants a lease gone at dump time the minimum TTL; one that runs out during the restore takes its keys with it', async () => {
    const api = await newApi();
    const lease = await grant(api, 300);
    await seed(api, 'x/', 12, lease);
    const l = lines((await dumpOf(api)).bytes);
    // As if the lease had been revoked after the dump's revision and before the dump read it.
    const gone = await resealed(l.map((s) => s.replace(/"ttl":300,"remaining":\d+/, '"ttl":0,"remaining":0')));
    const dump = utf8.encode(gone.join('\n'));
    expect(new TextDecoder().decode(dump)).toContain('"ttl":0,"remaining":0');
    // The body stalls past the minimum TTL (1 s here) after its first lines, before its last ones.
    const upTo = gone.findIndex((s) => s.includes('"x/0004"')) + 1;
    const cut = utf8.encode(`${gone.slice(0, upTo).join('\n')}\n`).byteLength;
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent === 0) controller.enqueue(dump.slice(0, cut));
        else if (sent === 1) {
          await sleep(2500);
          controller.enqueue(dump.slice(cut));
        } else controller.close();
        sent++;
      },
    });
    const name = groupName();
    const res = await restore(api, name, body);
    expect(res.status, await res.clone().text()).toBe(201);
    const r = (await json<{ restored: Record<string, number> }>(res)).restored;
    const leased = [0, 3, 6, 9].map((i) => `x/${String(i).padStart(4, '0')}`);
    expect(r).toMatchObject({ keys: 12 - leased.length, leases: 1, expired_leases: 1, expired_keys: leased.length });
    const keys = (await allKeys(api.fetch, `/groups/${name}`)).map((k) => k.key);
    expect(keys).toHaveLength(12 - leased.length);
    expect(keys.some((k) => leased.includes(k))).toBe(false);
    expect((await api.fetch(`/groups/${name}/v1/leases/${lease}`)).status).toBe(404);
  });

  it('refuses what no restore can take before creating anything: a size, the default group, a bad name', async () => {
    const api = await newApi();
    const dump = (await dumpOf(api)).bytes;
    expect((await restore(api, groupName(), dump, 4)).status).toBe(400);
    expect((await restore(api, 'default', dump)).status).toBe(409);
    expect((await restore(api, 'Bad_Name', dump)).status).toBe(400);
    // An empty store's dump restores to an empty group.
    const name = groupName();
    const res = await restore(api, name, dump);
    expect(res.status, await res.clone().text()).toBe(201);
    expect((await json<{ restored: { keys: number } }>(res)).restored.keys).toBe(0);
  });
});
