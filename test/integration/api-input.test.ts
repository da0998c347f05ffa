import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, MAX_TXN_OPS, MAX_VALUE_BYTES } from '../../src/kv/index.ts';
import { type ErrorJson, json, newApi } from './api-helpers.ts';
import { leader, status } from './cluster-helpers.ts';

/** Bad input answers 400/413 naming the field, and never reaches the log. */

const post = (body: string): RequestInit => ({ method: 'POST', body, headers: { 'content-type': 'application/json' } });

async function expectError(res: Response, status: number, code: string, field?: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const e = await json<ErrorJson>(res);
  expect(e.error.code).toBe(code);
  expect(typeof e.error.message).toBe('string');
  if (field !== undefined) expect(e.error.field).toBe(field);
}

describe('api: limits', () => {
  it('keys at the limit and one past; control characters; bad encoding', async () => {
    const api = await newApi();
    const atLimit = `${'k'.repeat(MAX_KEY_BYTES - 2)}é`; // 4096 bytes
    const res = await api.fetch(`/v1/kv/${encodeURIComponent(atLimit)}`, { method: 'PUT', body: 'v' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    await expectError(
      await api.fetch(`/v1/kv/${encodeURIComponent(`${atLimit}k`)}`, { method: 'PUT', body: 'v' }),
      400,
      'bad_request',
      'key',
    );
    await expectError(await api.fetch('/v1/kv/a%00b', { method: 'PUT', body: 'v' }), 400, 'bad_request', 'key');
    await expectError(await api.fetch('/v1/kv/a%0Ab'), 400, 'bad_request', 'key');
    await expectError(await api.fetch('/v1/kv/a%FFb'), 400, 'invalid_utf8', 'path');
  });

  it('values at the limit and one past (413, by Content-Length before reading, and while streaming)', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/kv/big', { method: 'PUT', body: new Uint8Array(MAX_VALUE_BYTES) });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    res = await api.fetch('/v1/kv/big', { headers: { accept: 'application/json' } });
    expect((await json<{ value: string }>(res)).value.length).toBe(MAX_VALUE_BYTES);
    await expectError(
      await api.fetch('/v1/kv/big', { method: 'PUT', body: new Uint8Array(MAX_VALUE_BYTES + 1) }),
      413,
      'too_large',
    );
    // A stream that must never be read: Content-Length alone refuses it.
    let pulled = false;
    const stream = new ReadableStream(
      {
        pull() {
          pulled = true;
          throw new Error('read');
        },
      },
      { highWaterMark: 0 },
    );
    await expectError(
      await api.fetch('/v1/kv/big', {
        method: 'PUT',
        body: stream,
        headers: { 'content-length': String(MAX_VALUE_BYTES + 1) },
      }),
      413,
      'too_large',
    );
    expect(pulled).toBe(false);
    // A configured lower limit.
    const small = await newApi({ maxValueBytes: 10 });
    res = await small.fetch('/v1/kv/x', { method: 'PUT', body: '0123456789' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    await expectError(await small.fetch('/v1/kv/x', { method: 'PUT', body: '0123456789a' }), 413, 'too_large');
    await expectError(
      await small.fetch('/v1/cas', post(JSON.stringify({ key: 'x', value: '0123456789a', expect: { absent: true } }))),
      413,
      'too_large',
    );
  });

  it('txn with 128 ops and one past', async () => {
    const api = await newApi();
    const ops = (n: number) => Array.from({ length: n }, (_, i) => ({ put: { key: `t/${i}`, value: 'v' } }));
    let res = await api.fetch('/v1/txn', post(JSON.stringify({ success: ops(MAX_TXN_OPS) })));
    expect(res.status).toBe(200);
    expect((await json<{ results: unknown[] }>(res)).results).toHaveLength(MAX_TXN_OPS);
    res = await api.fetch('/v1/txn', post(JSON.stringify({ success: ops(MAX_TXN_OPS + 1) })));
    await expectError(res, 400, 'bad_request', 'success');
    const cmp = Array.from({ length: MAX_TXN_OPS + 1 }, () => ({ key: 'a', target: 'version', op: '=', value: 0 }));
    await expectError(
      await api.fetch('/v1/txn', post(JSON.stringify({ compare: cmp }))),
      400,
      'bad_request',
      'compare',
    );
  });
});

describe('api: malformed requests', () => {
  it('answers 400 naming the field, and nothing reaches the log', async () => {
    const api = await newApi();
    const res = await api.fetch('/v1/kv/warm', { method: 'PUT', body: 'v' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const lead = await leader(api.names);
    const before = (await status(lead)).lastIndex;

    const cases: [string, RequestInit, string][] = [
      ['/v1/cas', post('{not json'), 'body'],
      ['/v1/cas', post('[]'), 'body'],
      ['/v1/cas', post(JSON.stringify({ key: 'k', value: 'v', expect: { absent: true }, extra: 1 })), 'body.extra'],
      ['/v1/cas', post(JSON.stringify({ key: 5, value: 'v', expect: { absent: true } })), 'key'],
      ['/v1/cas', post(JSON.stringify({ key: 'k', value: 5, expect: { absent: true } })), 'body.value'],
      ['/v1/cas', post(JSON.stringify({ key: 'k', value: 'v', expect: {} })), 'expect'],
      ['/v1/cas', post(JSON.stringify({ key: 'k', value: 'v', expect: { version: -1 } })), 'expect.version'],
      [
        '/v1/cas',
        post(JSON.stringify({ key: 'k', value_base64: '!!', expect: { absent: true } })),
        'body.value_base64',
      ],
      [
        '/v1/txn',
        post(JSON.stringify({ success: [{ put: { key: 'a', value: 'v' }, get: { key: 'a' } }] })),
        'success[0]',
      ],
      ['/v1/txn', post(JSON.stringify({ success: [{ frob: {} }] })), 'success[0]'],
      [
        '/v1/txn',
        post(JSON.stringify({ compare: [{ key: 'a', target: 'size', op: '=', value: 1 }] })),
        'compare[0].target',
      ],
      [
        '/v1/txn',
        post(JSON.stringify({ compare: [{ key: 'a', target: 'version', op: '~', value: 1 }] })),
        'compare[0].op',
      ],
      [
        '/v1/txn',
        post(JSON.stringify({ success: [{ put: { key: 'a', value: 'v' } }, { put: { key: 'a', value: 'w' } }] })),
        'body',
      ],
      ['/v1/txn', post(JSON.stringify({ success: 'x' })), 'success'],
      ['/v1/kv/k?consistency=eventual', {}, 'consistency'],
      ['/v1/kv/k?frob=1', {}, 'frob'],
      ['/v1/kv?limit=0', {}, 'limit'],
      ['/v1/kv?limit=abc', {}, 'limit'],
      ['/v1/kv?limit=1001', {}, 'limit'],
      ['/v1/kv?keys_only=maybe', {}, 'keys_only'],
      ['/v1/kv?prefix=a&start=b', {}, 'query.prefix'],
      ['/v1/kv?prefix=', {}, 'query.prefix'],
      ['/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'if-match': 'abc' } }, 'If-Match'],
      ['/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'if-none-match': 'abc' } }, 'If-None-Match'],
      ['/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'idempotency-key': 'has space' } }, 'Idempotency-Key'],
      ['/v1/kv/k', { method: 'PUT', body: 'v', headers: { 'x-request-timeout-ms': 'soon' } }, 'X-Request-Timeout-Ms'],
      ['/v1/cluster/members', post(JSON.stringify({ action: 'add', node: 'n' })), 'action'],
      ['/v1/cluster/members', post(JSON.stringify({ action: 'remove', node: 'bad name' })), 'node'],
      ['/v1/cluster/leader', post(JSON.stringify({ to: 'node-1', why: 1 })), 'body.why'],
    ];
    for (const [path, init, field] of cases) {
      const r = await api.fetch(path, init);
      if (r.status !== 400) throw new Error(`${path} ${JSON.stringify(init.body)}: ${r.status} ${await r.text()}`);
      const e = await json<ErrorJson>(r);
      expect(e.error.code, path).toBe('bad_request');
      expect(e.error.field, `${path} ${String(init.body)}`).toBe(field);
    }
    expect((await status(lead)).lastIndex).toBe(before);
  });

  it('unknown routes and methods answer a JSON 404', async () => {
    const api = await newApi();
    for (const [path, method] of [
      ['/v1/nope', 'GET'],
      ['/v1/kv/k', 'POST'],
      ['/v1/cas', 'GET'],
      ['/v2/kv/k', 'GET'],
    ] as const) {
      const res = await api.fetch(path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect((await json<ErrorJson>(res)).error.code).toBe('not_found');
    }
  });
});
