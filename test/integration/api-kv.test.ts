import { describe, expect, it } from 'vitest';
import { type ErrorJson, json, newApi } from './api-helpers.ts';

/** The single-key and range routes against a real 3-node cluster. */

const put = (body: BodyInit, headers: Record<string, string> = {}): RequestInit => ({ method: 'PUT', body, headers });

describe('api: single keys', () => {
  it('PUT, GET (raw and JSON), ETag, DELETE, 404', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/kv/config/app/name', put('hello'));
    expect(res.status).toBe(200);
    const { revision } = await json<{ revision: number }>(res);
    expect(revision).toBeGreaterThan(0);
    expect(res.headers.get('etag')).toBe(`"${revision}"`);
    expect(res.headers.get('content-type')).toBe('application/json');
    const requestId = /^[0-9a-f-]{36}$/;
    expect(res.headers.get('x-request-id')).toMatch(requestId);

    res = await api.fetch('/v1/kv/config/app/name');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-request-id')).toMatch(requestId);
    expect(res.headers.get('etag')).toBe(`"${revision}"`);
    expect(res.headers.get('x-consistency')).toBe('linearizable');
    expect(await res.text()).toBe('hello');

    res = await api.fetch('/v1/kv/config/app/name', { headers: { accept: 'application/json' } });
    expect(await json(res)).toMatchObject({
      key: 'config/app/name',
      value: 'hello',
      mod_revision: revision,
      create_revision: revision,
      version: 1,
    });

    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-request-id')).toMatch(requestId);

    res = await api.fetch('/v1/kv/config/app/name', { headers: { 'if-none-match': `"${revision}"` } });
    expect(res.status).toBe(304);
    expect(res.headers.get('x-request-id')).toMatch(requestId);

    res = await api.fetch('/v1/kv/config/app/name', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ deleted: 1 });

    res = await api.fetch('/v1/kv/config/app/name');
    expect(res.status).toBe(404);
    expect((await json<ErrorJson>(res)).error.code).toBe('key_not_found');
    res = await api.fetch('/v1/kv/config/app/name', { method: 'DELETE' });
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });

  it('binary values come back as base64 in JSON; percent-encoded keys decode once', async () => {
    const api = await newApi();
    const bytes = new Uint8Array([0xff, 0x00, 0xfe, 0x80]);
    let res = await api.fetch('/v1/kv/bin%2Fkey%20%E2%9C%93', put(bytes));
    expect(res.status).toBe(200);
    await res.body?.cancel();
    res = await api.fetch('/v1/kv/bin/key%20✓', { headers: { accept: 'application/json' } });
    expect(await json(res)).toMatchObject({ key: 'bin/key ✓', value_base64: '/wD+gA==' });
    res = await api.fetch('/v1/kv/bin%2Fkey%20%E2%9C%93');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it('If-Match is a CAS (412 with the current revision); If-None-Match: * creates only', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/kv/lock', put('a', { 'if-none-match': '*' }));
    expect(res.status).toBe(201);
    const r1 = (await json<{ revision: number }>(res)).revision;
    res = await api.fetch('/v1/kv/lock', put('b', { 'if-none-match': '*' }));
    expect(res.status).toBe(412);
    let e = await json<ErrorJson>(res);
    expect(e.error.code).toBe('precondition_failed');
    expect(e.current?.mod_revision).toBe(r1);

    res = await api.fetch('/v1/kv/lock', put('c', { 'if-match': `"${r1}"` }));
    expect(res.status).toBe(200);
    const r2 = (await json<{ revision: number }>(res)).revision;
    res = await api.fetch('/v1/kv/lock', put('d', { 'if-match': `"${r1}"` }));
    expect(res.status).toBe(412);
    expect(res.headers.get('etag')).toBe(`"${r2}"`);
    e = await json<ErrorJson>(res);
    expect(e.current?.mod_revision).toBe(r2);

    res = await api.fetch('/v1/kv/nothing', put('x', { 'if-match': '*' }));
    expect(res.status).toBe(412);
    expect((await json<ErrorJson>(res)).current).toBeNull();

    res = await api.fetch('/v1/kv/lock', { method: 'DELETE', headers: { 'if-match': `"${r1}"` } });
    expect(res.status).toBe(412);
    await res.body?.cancel();
    res = await api.fetch('/v1/kv/lock', { method: 'DELETE', headers: { 'if-match': `"${r2}"` } });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });

  it('serializable reads say they may be stale', async () => {
    const api = await newApi();
    await (await api.fetch('/v1/kv/s', put('v'))).body?.cancel();
    const res = await api.fetch('/v1/kv/s?consistency=serializable');
    expect(res.headers.get('x-consistency')).toBe('serializable');
    expect(res.headers.get('x-stale')).toBe('possible');
    await res.body?.cancel();
  });
});

describe('api: ranges', () => {
  it('prefix, start/end, limit with cursor, keys_only, count_only, delete by prefix and range', async () => {
    const api = await newApi();
    for (const k of ['a/1', 'a/2', 'a/3', 'a/4', 'a/5', 'b/1', 'c/1']) {
      await (await api.fetch(`/v1/kv/${k}`, put(`v-${k}`))).body?.cancel();
    }
    let res = await api.fetch('/v1/kv?prefix=a/');
    let page = await json<{ kvs: { key: string; value: string }[]; count: number; more: boolean; cursor?: string }>(
      res,
    );
    expect(page.kvs.map((kv) => kv.key)).toEqual(['a/1', 'a/2', 'a/3', 'a/4', 'a/5']);
    expect(page.kvs[0]?.value).toBe('v-a/1');
    expect(page.count).toBe(5);
    expect(page.more).toBe(false);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      res = await api.fetch(`/v1/kv?prefix=a/&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      page = await json(res);
      seen.push(...page.kvs.map((kv) => kv.key));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(['a/1', 'a/2', 'a/3', 'a/4', 'a/5']);

    res = await api.fetch('/v1/kv?start=a/3&end=b/2&keys_only=true');
    page = await json(res);
    expect(page.kvs.map((kv) => kv.key)).toEqual(['a/3', 'a/4', 'a/5', 'b/1']);
    expect(page.kvs[0]?.value).toBeUndefined();

    res = await api.fetch('/v1/kv?count_only=true');
    expect(await json(res)).toMatchObject({ count: 7 });

    res = await api.fetch('/v1/kv?prefix=a/', { method: 'DELETE' });
    expect(await json(res)).toMatchObject({ deleted: 5 });
    res = await api.fetch('/v1/kv?start=b&end=c0', { method: 'DELETE' });
    expect(await json(res)).toMatchObject({ deleted: 2 });
    res = await api.fetch('/v1/kv?count_only=true');
    expect(await json(res)).toMatchObject({ count: 0 });

    res = await api.fetch('/v1/kv', { method: 'DELETE' });
    expect(res.status).toBe(400);
    await res.body?.cancel();
    res = await api.fetch('/v1/kv?prefix=a/&cursor=Yi8x');
    expect(res.status).toBe(400);
    expect((await json<ErrorJson>(res)).error.field).toBe('cursor');
  });
});

describe('api: cas and txn', () => {
  it('POST /v1/cas', async () => {
    const api = await newApi();
    const cas = (body: unknown) =>
      api.fetch('/v1/cas', {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
    let res = await cas({ key: 'k', value: 'one', expect: { absent: true } });
    let r = await json<{ succeeded: boolean; revision: number; current?: { value: string } }>(res);
    expect(r.succeeded).toBe(true);
    expect(res.headers.get('x-revision')).toBe(String(r.revision));
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    res = await cas({ key: 'k', value: 'two', expect: { value: 'nope' } });
    r = await json(res);
    expect(r.succeeded).toBe(false);
    expect(r.current?.value).toBe('one');
    res = await cas({ key: 'k', value_base64: 'AAE=', expect: { mod_revision: r.revision } });
    expect(await json(res)).toMatchObject({ succeeded: true });
  });

  it('POST /v1/txn (etcd-shaped)', async () => {
    const api = await newApi();
    const txn = (body: unknown) => api.fetch('/v1/txn', { method: 'POST', body: JSON.stringify(body) });
    let res = await txn({
      compare: [{ key: 'leader', target: 'version', op: '=', value: 0 }],
      success: [
        { put: { key: 'leader', value: 'me' } },
        { put: { key: 'term', value: '1' } },
        { get: { key: 'leader' } },
      ],
      failure: [{ get: { key: 'leader' } }],
    });
    expect(res.status).toBe(200);
    let r = await json<{ succeeded: boolean; results: Record<string, unknown>[] }>(res);
    expect(r.succeeded).toBe(true);
    expect(r.results[2]).toMatchObject({ type: 'get', kv: { key: 'leader', value: 'me' } });
    res = await txn({
      compare: [{ key: 'leader', target: 'value', op: '=', value: 'someone' }],
      success: [{ delete: { key: 'leader' } }],
      failure: [{ range: { prefix: 'le' } }, { delete_prefix: { prefix: 'te', prev_kv: true } }],
    });
    r = await json(res);
    expect(r.succeeded).toBe(false);
    expect(r.results[0]).toMatchObject({ type: 'range', count: 1 });
    expect(r.results[1]).toMatchObject({ type: 'delete', deleted: 1, prev_kvs: [{ key: 'term', value: '1' }] });
  });
});
