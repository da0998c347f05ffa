import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { openApiDocument } from '../../src/api/openapi.ts';
import { json, newApi } from './api-helpers.ts';

/** The OpenAPI document lists exactly the routes the app registers. */

describe('api: OpenAPI', () => {
  it('matches the registered routes', () => {
    const app = createApp();
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/^\/v1\/kv\/\*$/, '/v1/kv/{key}')}`),
    );
    const documented = new Set(
      Object.entries(openApiDocument.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)),
    );
    expect([...documented].sort()).toEqual([...registered].sort());
    expect(openApiDocument.openapi).toBe('3.1.0');
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
