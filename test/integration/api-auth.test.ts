import { exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/api/auth.ts';
import { type ErrorJson, json, newApi } from './api-helpers.ts';

/** Bearer tokens, roles and key prefixes; the internal node routes stay unreachable. */

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

async function tokensJson(): Promise<string> {
  return JSON.stringify([
    { token: 'read-token-0001', role: 'read' },
    { token: 'write-token-0001', role: 'write', prefixes: ['app/'] },
    { token: 'write-token-0002', role: 'write' },
    { sha256: hex(await sha256('admin-token-0001')), role: 'admin' },
  ]);
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('api: auth', () => {
  it('refuses everything under /v1 without configured tokens unless anonymous access is on', async () => {
    // The deployed Worker (test vars set neither AUTH_TOKENS nor ALLOW_ANONYMOUS).
    for (const path of ['/v1/kv/x', '/v1/kv?prefix=a', '/v1/cluster']) {
      const res = await exports.default.fetch(`https://example.com${path}`);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await json<ErrorJson>(res)).error.code).toBe('unauthorized');
    }
    const res = await exports.default.fetch('https://example.com/v1/kv/x', { method: 'PUT', body: 'v' });
    expect(res.status).toBe(401);
    await res.body?.cancel();
    const api = await newApi({ allowAnonymous: false });
    const r = await api.fetch('/v1/kv/x');
    expect(r.status).toBe(401);
    await r.body?.cancel();
  });

  it('the role and prefix matrix (JSON tokens, one stored as a hash)', async () => {
    const api = await newApi({ allowAnonymous: false, authTokens: await tokensJson() });
    const matrix: [string | undefined, string, RequestInit, number][] = [
      [undefined, '/v1/kv/app/x', {}, 401],
      ['wrong-token-0001', '/v1/kv/app/x', {}, 401],
      ['read-token-0001', '/v1/kv/app/x', { method: 'PUT', body: 'v' }, 403],
      ['write-token-0001', '/v1/kv/app/x', { method: 'PUT', body: 'v' }, 200],
      ['write-token-0001', '/v1/kv/other/x', { method: 'PUT', body: 'v' }, 403],
      ['write-token-0002', '/v1/kv/other/x', { method: 'PUT', body: 'v' }, 200],
      ['read-token-0001', '/v1/kv/app/x', {}, 200],
      ['write-token-0001', '/v1/kv/app/x', {}, 200],
      ['write-token-0001', '/v1/kv/other/x', {}, 403],
      ['write-token-0001', '/v1/kv?prefix=app/', {}, 200],
      ['write-token-0001', '/v1/kv?prefix=ap', {}, 403],
      ['write-token-0001', '/v1/kv', {}, 403],
      ['write-token-0001', '/v1/kv?start=app/a&end=app/z', {}, 200],
      ['write-token-0001', '/v1/kv?start=app/a', {}, 403],
      ['write-token-0001', '/v1/kv?prefix=other/', { method: 'DELETE' }, 403],
      [
        'write-token-0001',
        '/v1/txn',
        { method: 'POST', body: JSON.stringify({ success: [{ get: { key: 'other/x' } }] }) },
        403,
      ],
      [
        'read-token-0001',
        '/v1/txn',
        { method: 'POST', body: JSON.stringify({ success: [{ get: { key: 'app/x' } }] }) },
        200,
      ],
      [
        'read-token-0001',
        '/v1/txn',
        { method: 'POST', body: JSON.stringify({ success: [{ put: { key: 'app/x', value: 'w' } }] }) },
        403,
      ],
      ['write-token-0002', '/v1/cluster', {}, 403],
      ['admin-token-0001', '/v1/cluster', {}, 200],
      ['admin-token-0001', '/v1/kv/other/x', { method: 'DELETE' }, 200],
    ];
    for (const [token, path, init, want] of matrix) {
      const res = await api.fetch(path, { ...init, headers: token ? bearer(token) : {} });
      if (res.status !== want)
        throw new Error(`${token} ${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
      await res.body?.cancel();
    }
  });

  it('the simple list form: role:token and role:sha256:<hex>', async () => {
    const list = `read:plain-read-01, admin:sha256:${hex(await sha256('hashed-admin-01'))}`;
    const api = await newApi({ allowAnonymous: false, authTokens: list });
    let res = await api.fetch('/v1/kv/k', { headers: bearer('plain-read-01') });
    expect(res.status).toBe(404);
    await res.body?.cancel();
    res = await api.fetch('/v1/cluster', { headers: bearer('hashed-admin-01') });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    res = await api.fetch('/v1/cluster', { headers: bearer(hex(await sha256('hashed-admin-01'))) });
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });

  it('a misconfigured AUTH_TOKENS answers 500 without leaking it', async () => {
    const api = await newApi({ allowAnonymous: false, authTokens: '[{"token": "short", "role": "read"}]' });
    const res = await api.fetch('/v1/kv/k', { headers: bearer('short') });
    expect(res.status).toBe(500);
    const e = await json<ErrorJson>(res);
    expect(e.error.code).toBe('misconfigured');
    expect(e.error.message).not.toContain('short');
  });
});

describe('api: internal routes are unreachable', () => {
  it('through the deployed Worker, however the path is spelled', async () => {
    const paths = [
      '/internal/status',
      '/internal/raft',
      '/internal/faults',
      '/%69nternal/status',
      '/internal%2Fstatus',
      '/v1/../internal/status',
      '/v1/%2E%2E/internal/status',
      '/v1/kv/../../internal/status',
      '//internal/status',
      '/https://node/internal/status',
      '/v1/kv/..%2F..%2Finternal%2Fstatus',
    ];
    for (const path of paths) {
      for (const method of ['GET', 'POST', 'PUT']) {
        const res = await exports.default.fetch(`https://example.com${path}`, {
          method,
          body: method === 'GET' ? undefined : '{}',
          headers: { 'x-http-method-override': 'GET', 'x-raft-node': 'node-0' },
        });
        const text = await res.text();
        expect([401, 404], `${method} ${path}: ${res.status} ${text}`).toContain(res.status);
        expect(text).not.toMatch(/"role"|"term"|"commit"/);
      }
    }
  });

  it('with anonymous access: odd paths are keys or 404s, and method overrides are ignored', async () => {
    const api = await newApi();
    let res = await api.fetch('/v1/kv/..%2F..%2Finternal%2Fstatus');
    expect(res.status).toBe(404);
    expect((await json<ErrorJson>(res)).error.code).toBe('key_not_found');
    res = await api.fetch('/v1/kv/keep', { method: 'PUT', body: 'v' });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    for (const h of ['x-http-method-override', 'x-method-override', 'x-http-method']) {
      res = await api.fetch('/v1/kv/keep', { method: 'POST', headers: { [h]: 'DELETE' } });
      expect(res.status).toBe(404);
      await res.body?.cancel();
      res = await api.fetch('/v1/kv/keep?_method=DELETE', { method: 'POST' });
      expect(res.status).toBe(404);
      await res.body?.cancel();
    }
    res = await api.fetch('/v1/kv/keep');
    expect(await res.text()).toBe('v');
    res = await api.fetch('/internal/status');
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });
});
