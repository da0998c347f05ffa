import { env } from 'cloudflare:workers';
import { createApp } from '../../src/api/app.ts';
import type { ApiOptions } from '../../src/api/config.ts';
import { MEMBERS, newCluster } from './cluster-helpers.ts';

/** A fresh cluster and an API app routed to it (explicit config: tests do not depend on global vars). */
export interface TestApi {
  readonly names: string[];
  readonly prefix: string;
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

export async function newApi(opts: ApiOptions = {}): Promise<TestApi> {
  const names = await newCluster();
  const first = names[0] ?? '';
  const prefix = first.slice(0, first.lastIndexOf(':') + 1);
  return { names, prefix, fetch: apiFetch(prefix, opts) };
}

/** An app for the cluster `prefix` (anonymous admin unless `opts` says otherwise). */
export function apiFetch(prefix: string, opts: ApiOptions = {}): TestApi['fetch'] {
  const app = createApp({
    clusterPrefix: prefix,
    allowAnonymous: true,
    members: MEMBERS.map((id) => ({ id })),
    ...opts,
  });
  return async (path, init) => app.fetch(new Request(`https://api.test${path}`, init), env);
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export interface ErrorJson {
  error: { code: string; message: string; field?: string };
  outcome?: string;
  current?: { mod_revision: number } | null;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
