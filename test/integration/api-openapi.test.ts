import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { openApiDocument } from '../../src/api/openapi.ts';
import { type ErrorJson, json, newApi } from './api-helpers.ts';

/** The OpenAPI document lists exactly the routes the app registers. */

/** Registered routes as the document names them: a wildcard route serves a key, a name, or a name and an action. */
const DOCUMENTED_AS: Record<string, string[]> = {
  'get /v1/kv/*': ['get /v1/kv/{key}'],
  'put /v1/kv/*': ['put /v1/kv/{key}'],
  'delete /v1/kv/*': ['delete /v1/kv/{key}'],
  'post /v1/locks/*': ['post /v1/locks/{name}'],
  'delete /v1/locks/*': ['delete /v1/locks/{name}'],
  'get /v1/elections/*': ['get /v1/elections/{name}', 'get /v1/elections/{name}/observe'],
  'post /v1/elections/*': [
    'post /v1/elections/{name}/campaign',
    'post /v1/elections/{name}/proclaim',
    'post /v1/elections/{name}/resign',
  ],
};

describe('api: OpenAPI', () => {
  it('matches the registered routes', () => {
    const app = createApp();
    const registered = new Set(
      app.routes
        // /v3 is etcd's own gateway API, described by etcd (and checked against a real etcd by test:etcd-diff).
        .filter((r) => r.method !== 'ALL' && !r.path.startsWith('/v3/'))
        .flatMap((r) => {
          const route = `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`;
          return DOCUMENTED_AS[route] ?? [route];
        }),
    );
    const documented = new Set(
      Object.entries(openApiDocument.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)),
    );
    expect([...documented].sort()).toEqual([...registered].sort());
    expect(openApiDocument.openapi).toBe('3.1.0');
  });

  it('documents exactly the query parameters and conditional headers each route accepts', async () => {
    const api = await newApi();
    type Param = { name: string; in: string };
    const ops = Object.entries(openApiDocument.paths).flatMap(([path, methods]) =>
      Object.entries(methods as Record<string, { parameters?: Param[] }>).map(([method, op]) => ({
        method: method.toUpperCase(),
        // A group's name has no slash; lock and election names may.
        path: path
          .replace('/v1/groups/{name}', '/v1/groups/drift')
          .replace('{key}', 'drift/k')
          .replace('{name}', 'drift/n')
          .replace('{id}', '1'),
        params: op.parameters ?? [],
      })),
    );
    const refusal = async (method: string, url: string, headers: Record<string, string> = {}) => {
      const init: RequestInit = { method, headers };
      if (method === 'PUT' || method === 'POST') init.body = method === 'POST' ? '{}' : 'v';
      const res = await api.fetch(url, init);
      if (res.status !== 400) {
        await res.body?.cancel(); // a watch that opened would stream on
        return undefined;
      }
      return (JSON.parse(await res.text()) as ErrorJson).error;
    };
    let checked = 0;
    for (const op of ops) {
      const what = `${op.method} ${op.path}`;
      // The API's own routes check their query: an undocumented name is refused.
      if (op.path.startsWith('/v1/') && op.path !== '/v1/openapi.json') {
        const e = await refusal(op.method, `${op.path}?undocumented=1`);
        expect(e?.message, what).toBe('undocumented: unknown query parameter');
      }
      for (const p of op.params.filter((x) => x.in === 'query')) {
        const e = await refusal(op.method, `${op.path}?${p.name}=1`);
        expect(e?.message ?? '', `${what} ?${p.name}`).not.toMatch(/unknown query parameter/);
        checked++;
      }
      for (const h of ['If-Match', 'If-None-Match']) {
        const documented = op.params.some((x) => x.in === 'header' && x.name === h);
        const e = await refusal(op.method, op.path, { [h]: '"1"' });
        expect(e?.message === `${h}: has no meaning on this route`, `${what} ${h}`).toBe(!documented);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('is served at GET /v1/openapi.json without a token', async () => {
    const api = await newApi({ allowAnonymous: false });
    const res = await api.fetch('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = await json<{ openapi: string; paths: Record<string, unknown> }>(res);
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/v1/kv/{key}');
  });
});
