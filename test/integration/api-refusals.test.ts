import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { apiFetch, type ErrorJson, json, newApi, type TestApi } from './api-helpers.ts';
import { leader, status } from './cluster-helpers.ts';

/**
 * Bad input gets a clear 4xx and changes nothing: the five ways an adversarial
 * probe found in which it still changed state (issue 20), each kept as a test.
 */

const post = (body: string, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'application/json', ...headers },
});

/** What a refused request must leave as it was: the leader's applied index and the store's revision. */
async function footprint(api: TestApi): Promise<{ applied: number; revision: number }> {
  const lead = await leader(api.names);
  const res = await api.fetch('/v1/kv?count_only=true');
  const { revision } = await json<{ revision: number }>(res);
  return { applied: (await status(lead)).applied, revision };
}

async function expectRefused(res: Response, statusCode: number, code: string, field?: string): Promise<ErrorJson> {
  const text = await res.text();
  expect(res.status, text).toBe(statusCode);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const e = JSON.parse(text) as ErrorJson;
  expect(e.error.code, text).toBe(code);
  if (field !== undefined) expect(e.error.field, text).toBe(field);
  return e;
}

async function keys(api: TestApi): Promise<string[]> {
  const r = await json<{ kvs: { key: string }[] }>(await api.fetch('/v1/kv?keys_only=true'));
  return r.kvs.map((kv) => kv.key);
}

async function putKey(api: TestApi, key: string, value = 'v'): Promise<number> {
  const res = await api.fetch(`/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

describe('api: bad input changes nothing (issue 20)', () => {
  it('1. an encoded route prefix matches no route: the key is never cut from another path', async () => {
    const api = await newApi();
    await putKey(api, 'seed');
    const before = await footprint(api);
    for (const path of ['/v1/%6Bv/pk1', '/v1/k%76/pk2', '/%76%31/kv/pk3', '/v1/kv%2Fpk4', '/v1%2Fkv/pk5']) {
      await expectRefused(await api.fetch(path, { method: 'PUT', body: 'x' }), 404, 'not_found');
      await expectRefused(await api.fetch(path), 404, 'not_found');
    }
    // The wildcard route also matches its bare prefix: an empty key (found by the probe as a 500).
    await expectRefused(await api.fetch('/v1/kv', { method: 'PUT', body: 'x' }), 400, 'bad_request', 'key');
    expect(await keys(api)).toEqual(['seed']);
    expect(await footprint(api)).toEqual(before);
    // The key part is decoded exactly once: %2F is a slash in the key, %252F a literal "%2F".
    await putKey(api, 'a/b');
    const res = await api.fetch('/v1/kv/a%252Fb', { method: 'PUT', body: 'y' });
    expect(res.status).toBe(200);
    expect(await keys(api)).toEqual(['a%2Fb', 'a/b', 'seed']);
  });

  it('1b. with a token limited to a prefix, an encoded prefix cannot reach a key outside it', async () => {
    const tokens = JSON.stringify([{ token: 'writer-token-1', role: 'write', prefixes: ['v/'] }]);
    const api = await newApi({ allowAnonymous: false, authTokens: tokens });
    const send = (path: string) =>
      api.fetch(path, { method: 'PUT', body: 'x', headers: { authorization: 'Bearer writer-token-1' } });
    await expectRefused(await send('/v1/%6Bv/pk1'), 404, 'not_found');
    const ok = await send('/v1/kv/v/pk1');
    expect(ok.status).toBe(200);
    await expectRefused(await send('/v1/kv/w/pk1'), 403, 'forbidden');
    const res = await apiFetch(api.prefix)('/v1/kv?keys_only=true');
    expect((await json<{ kvs: { key: string }[] }>(res)).kvs.map((kv) => kv.key)).toEqual(['v/pk1']);
  });

  it('2. membership actions are own names of a fixed table: inherited names are a 400 and reach no log', async () => {
    const api = await newApi();
    await putKey(api, 'seed');
    const before = await footprint(api);
    for (const action of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__', 'isPrototypeOf']) {
      const body = `{"action":${JSON.stringify(action)},"node":"node-9"}`;
      const e = await expectRefused(await api.fetch('/v1/cluster/members', post(body)), 400, 'bad_request', 'action');
      expect(e.error.message).not.toMatch(/serializ|object of type/i);
    }
    // Inherited names as compare targets are refused the same way.
    for (const target of ['toString', '__proto__', 'constructor']) {
      const body = `{"compare":[{"key":"a","target":${JSON.stringify(target)},"op":"=","value":1}]}`;
      await expectRefused(await api.fetch('/v1/txn', post(body)), 400, 'bad_request', 'compare[0].target');
    }
    expect(await footprint(api)).toEqual(before);
    const cluster = await json<{ members: { name: string }[] }>(await api.fetch('/v1/cluster'));
    expect(cluster.members.map((m) => m.name)).not.toContain('node-9');
  });

  it('3. invalid UTF-8 in a query, a path, a header or a body is 400 invalid_utf8, and deletes nothing', async () => {
    const api = await newApi();
    const replacement = '\uFFFDkey';
    await putKey(api, replacement);
    await putKey(api, 'plain');
    const before = await footprint(api);
    const cases: [string, RequestInit, string][] = [
      ['/v1/kv?prefix=%FF', { method: 'DELETE' }, 'prefix'],
      ['/v1/kv?prefix=%FF', {}, 'prefix'],
      ['/v1/kv?start=%C0%AF&end=%FF', { method: 'DELETE' }, 'start'],
      ['/v1/kv?start=a&end=%ED%A0%80', {}, 'end'], // an encoded surrogate is not UTF-8
      ['/v1/kv?%FF=1', {}, 'query'],
      ['/v1/kv/a%FFb', {}, 'path'],
      ['/v1/kv/a%FFb', { method: 'PUT', body: 'x' }, 'path'],
      ['/v1/kv/k', { method: 'PUT', body: 'x', headers: { 'idempotency-key': 'a\uFFFDb' } }, 'idempotency-key'],
      ['/v1/cas', { method: 'POST', body: new Uint8Array([0x7b, 0xff, 0x7d]) }, 'body'],
    ];
    for (const [path, init, field] of cases)
      await expectRefused(await api.fetch(path, init), 400, 'invalid_utf8', field);
    await expectRefused(await api.fetch('/v1/kv?prefix=%zz'), 400, 'bad_request', 'prefix');
    expect(await keys(api)).toEqual(['plain', replacement]);
    expect(await footprint(api)).toEqual(before);
    // Well-formed percent-encoding of U+FFFD itself still names the real key.
    const res = await api.fetch(`/v1/kv?prefix=${encodeURIComponent('\uFFFD')}&count_only=true`);
    expect((await json<{ count: number }>(res)).count).toBe(1);
  });

  it('4. DELETE of a key honours If-None-Match: * and ETags (412, the key stays)', async () => {
    const api = await newApi();
    const rev = await putKey(api, 'k');
    const before = (await footprint(api)).revision;
    for (const inm of ['*', `"${rev}"`, `"${rev + 100}", "${rev}"`, `W/"${rev}"`]) {
      const e = await expectRefused(
        await api.fetch('/v1/kv/k', { method: 'DELETE', headers: { 'if-none-match': inm } }),
        412,
        'precondition_failed',
      );
      expect(e.current?.mod_revision).toBe(rev);
    }
    expect(await keys(api)).toEqual(['k']);
    expect((await footprint(api)).revision).toBe(before);
    // A key that does not exist passes If-None-Match: *, and there is nothing to delete.
    await expectRefused(
      await api.fetch('/v1/kv/absent', { method: 'DELETE', headers: { 'if-none-match': '*' } }),
      404,
      'key_not_found',
    );
    // Another ETag passes, and the delete happens.
    const res = await api.fetch('/v1/kv/k', { method: 'DELETE', headers: { 'if-none-match': `"${rev + 1}"` } });
    expect(res.status).toBe(200);
    expect(await keys(api)).toEqual([]);
  });

  it('5. conditional headers where they have no meaning are a 400, never ignored', async () => {
    const api = await newApi();
    const rev = await putKey(api, 'p/1');
    await putKey(api, 'p/2');
    const before = await footprint(api);
    const cas = JSON.stringify({ key: 'p/1', value: 'x', expect: { absent: true } });
    const cases: [string, RequestInit, string][] = [
      ['/v1/kv?prefix=p/', { method: 'DELETE', headers: { 'if-match': `"${rev}"` } }, 'If-Match'],
      ['/v1/kv?prefix=p/', { method: 'DELETE', headers: { 'if-none-match': '*' } }, 'If-None-Match'],
      ['/v1/kv?start=p/&end=p0', { method: 'DELETE', headers: { 'if-match': '*' } }, 'If-Match'],
      ['/v1/kv?prefix=p/', { headers: { 'if-none-match': '*' } }, 'If-None-Match'],
      ['/v1/cas', post(cas, { 'if-match': `"${rev}"` }), 'If-Match'],
      ['/v1/txn', post('{}', { 'if-none-match': '*' }), 'If-None-Match'],
      ['/v1/cluster', { headers: { 'if-match': '*' } }, 'If-Match'],
      [
        '/v1/kv/p/1',
        { method: 'PUT', body: 'x', headers: { 'if-modified-since': 'Fri, 04 Dec 2026 00:00:00 GMT' } },
        'If-Modified-Since',
      ],
      ['/v1/kv/p/1', { headers: { 'if-unmodified-since': 'Fri, 04 Dec 2026 00:00:00 GMT' } }, 'If-Unmodified-Since'],
      ['/v1/kv/p/1', { method: 'PUT', body: 'x', headers: { 'if-match': `"${rev}", "${rev + 1}"` } }, 'If-Match'],
      ['/v1/kv/p/1', { method: 'PUT', body: 'x', headers: { 'if-match': 'abc' } }, 'If-Match'],
    ];
    for (const [path, init, field] of cases)
      await expectRefused(await api.fetch(path, init), 400, 'bad_request', field);
    expect(await keys(api)).toEqual(['p/1', 'p/2']);
    expect(await footprint(api)).toEqual(before);
    // Where they have a meaning, they are honoured: GET with If-Match.
    await expectRefused(
      await api.fetch('/v1/kv/p/1', { headers: { 'if-match': `"${rev + 5}"` } }),
      412,
      'precondition_failed',
    );
    await expectRefused(await api.fetch('/v1/kv/none', { headers: { 'if-match': '*' } }), 412, 'precondition_failed');
    const ok = await api.fetch('/v1/kv/p/1', { headers: { 'if-match': `"${rev}"` } });
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
  });

  it('an internal failure is a generic 500 with a request id; exception texts stay in the logs', async () => {
    // A namespace whose node answers a range with nothing in it: the route fails on it.
    const broken = {
      idFromName: () => ({}),
      get: () => ({ range: async () => ({ status: 'ok', revision: 1, stale: false }) }),
    };
    const app = createApp({ allowAnonymous: true, members: [{ id: 'node-0' }] });
    const res = await app.fetch(new Request('https://api.test/v1/kv?prefix=a'), { RAFT_NODE: broken } as never);
    expect(res.status).toBe(500);
    const body = await json<{ error: { code: string; message: string }; request_id: string }>(res);
    expect(body.error.code).toBe('internal');
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-request-id')).toBe(body.request_id);
    expect(body.error.message).not.toMatch(/undefined|TypeError|kvs/);
  });
});
