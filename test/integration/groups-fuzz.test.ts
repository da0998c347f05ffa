import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GROUP, isGroupName } from '../../src/api/groups/names.ts';
import { apiFetch, json, newApi, type TestApi } from './api-helpers.ts';
import { fuzzKnob, INHERITED, weird, withField } from './fuzz-helpers.ts';

/**
 * A property-based probe of the group routes (issue 19), beside api-fuzz's
 * probe of one group's API: group administration (`/v1/groups...`, restore
 * included) and the `/groups/{name}` prefix, with names that exist, that
 * nobody created, that no group may have, and hostile ones; bodies mutated
 * from valid creates; tokens limited to one group or to none.
 *
 * Every answer is a 2xx, a JSON 4xx, or a documented 503/504 (the gateway's
 * in etcd's error shape). A request refused with a 4xx, and any GET, leaves
 * the directory's list of groups and both groups' revisions as they were.
 * Nothing a request to a group that does not exist does creates it.
 *
 * PUTs to a name a group could take (but the probed group's, which exists)
 * and DELETEs of the probed group are left out: creation and deletion are
 * tested in groups.test.ts, and each takes a group's election or its end.
 */

const RUNS = Math.max(1, Math.floor(fuzzKnob('FUZZ_RUNS', 1000) / 4));
const SEED = fuzzKnob('FUZZ_SEED', 20_261_205);

const GROUP = 'fz';
const TOKENS = JSON.stringify([
  { token: 'admin-token-01', role: 'admin' },
  { token: 'tenant-fz-0001', role: 'admin', groups: [GROUP] },
  { token: 'tenant-other01', role: 'write', groups: ['other'] },
  { token: 'reader-token-1', role: 'read' },
]);

/** A group's name where the routes take one: the probed group, nobody's, invalid, hostile, encoded. */
const groupSegment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(GROUP, 'nobody', 'other', 'default') },
  { weight: 2, arbitrary: fc.constantFrom('Bad_Name', '-x', 'x-', 'a'.repeat(64), 'FZ', 'f%7A', '%66z', ...INHERITED) },
  { weight: 1, arbitrary: fc.constantFrom('%FF', '%zz', '%', '%2F', '..', '.', 'fz%00', 'é', '%C3%A9', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map((s) => encodeURIComponent(s)) },
);

/** What follows `/groups/{name}`: a route of the group's API, or something that is none. */
const GROUP_ROUTES = [
  '/v1/kv/a',
  '/v1/kv',
  '/v1/cas',
  '/v1/txn',
  '/v1/cluster',
  '/v1/leases',
  '/v1/locks/l',
  '/v1/watch?key=a',
  '/v1/groups',
  '/v1/groups/fz',
  '/v3/kv/range',
  '/v3/kv/put',
  '/readyz',
  '/healthz',
  '/v1/nope',
  '/groups/fz/v1/kv/a',
  '',
  '/',
];

const path = fc.oneof(
  fc.constantFrom('/v1/groups', '/v1/groups/', '/groups', '/groups/', '/v1/%67roups'),
  groupSegment.map((g) => `/v1/groups/${g}`),
  groupSegment.map((g) => `/v1/groups/${g}/restore`),
  groupSegment.map((g) => `/v1/groups/${g}/nope`),
  fc.tuple(groupSegment, fc.constantFrom(...GROUP_ROUTES)).map(([g, r]) => `/groups/${g}${r}`),
);

const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  {
    weight: 1,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom('after', 'limit', 'force', 'key', ...INHERITED),
          fc.constantFrom('', '0', '1', '-1', '1001', 'true', 'false', 'yes', 'fz', '%FF', '99999999999999999999'),
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  },
);

/** Valid creates; mutated, one to three of their top-level fields set to something odd. */
const VALID: Record<string, unknown>[] = [
  { size: 3 },
  { size: 5 },
  { size: 3, locations: ['weur', null, 'enam'] },
  { size: 5, locations: [null, null, null, null, 'apac'] },
];
const mutated = fc
  .tuple(
    fc.constantFrom(...VALID),
    fc.array(fc.tuple(fc.constantFrom('size', 'locations', 'learners', 'name', ...INHERITED), weird), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .map(([b, edits]) => JSON.stringify(edits.reduce((o, [k, v]) => withField(o, k, v), b)));
const body = fc.oneof(
  { weight: 3, arbitrary: mutated },
  { weight: 1, arbitrary: fc.constantFrom(...VALID).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '{"__proto__":{"size":3}}', '{"size":"3"}') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"format":"durable-raft-dump","version":1}\n',
      '{"kv":{"key":"YQ==","value":"YQ=="}}\n',
      new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]),
    ),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
);

/** Tokens, the group's own and the administrator's most often, so that most probes get past the front door. */
const auth = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constant('Bearer admin-token-01') },
  { weight: 3, arbitrary: fc.constant('Bearer tenant-fz-0001') },
  { weight: 2, arbitrary: fc.constantFrom('Bearer tenant-other01', 'Bearer reader-token-1', 'Bearer wrong-token-99') },
);

const request = fc.record({
  method: fc.constantFrom('GET', 'GET', 'PUT', 'PUT', 'DELETE', 'POST', 'PATCH', 'HEAD'),
  path,
  query,
  body,
  auth,
  // The open app (anonymous admin) for a third of the probes, the guarded one (tokens) for the rest.
  anonymous: fc.constantFrom(true, false, false),
});
type Probe = typeof request extends fc.Arbitrary<infer T> ? T : never;

/** The routes' view of the path: URL parsing folds `.` and `..` segments first. */
const pathOf = (p: Probe) => new URL(`https://api.test${p.path}`).pathname;

/**
 * A PUT that may create a group (a name a group may have, other than the
 * probed one, which exists), or a DELETE of the probed group: left out (see above).
 */
function changesGroups(p: Probe): boolean {
  const m = /^\/v1\/groups\/([^/]*)\/?$/.exec(pathOf(p));
  if (!m || (p.method !== 'PUT' && p.method !== 'DELETE')) return false;
  let name: string;
  try {
    name = decodeURIComponent(m[1] ?? '');
  } catch {
    return false;
  }
  return p.method === 'PUT' ? name !== GROUP && name !== DEFAULT_GROUP && isGroupName(name) : name === GROUP;
}

interface Footprint {
  readonly groups: string;
  readonly defaultRevision: number;
  readonly groupRevision: number;
}

async function footprint(api: TestApi): Promise<Footprint> {
  const list = await api.fetch('/v1/groups?limit=1000');
  expect(list.status).toBe(200);
  const { groups } = await json<{ groups: { name: string; state: string }[] }>(list);
  const revisionOf = async (prefix: string) => {
    const res = await api.fetch(`${prefix}/v1/kv?count_only=true&consistency=serializable`);
    expect(res.status, `${prefix}/v1/kv: ${await res.clone().text()}`).toBe(200);
    return (await json<{ revision: number }>(res)).revision;
  };
  return {
    groups: JSON.stringify(groups.map((g) => [g.name, g.state])),
    defaultRevision: await revisionOf(''),
    groupRevision: await revisionOf(`/groups/${GROUP}`),
  };
}

/** A 404 or 4xx from the etcd gateway, in etcd's error shape rather than ours. */
function gatewayError(p: Probe, o: Record<string, unknown>): boolean {
  return pathOf(p).includes('/v3/') && typeof o.message === 'string' && typeof o.code === 'number';
}

describe('groups: property-based probe of the group routes', () => {
  it(`${RUNS} random and mutated requests: 2xx or a JSON 4xx (503/504 documented); refusals change nothing`, async () => {
    const api = await newApi();
    const created = await api.fetch(`/v1/groups/${GROUP}`, { method: 'PUT', body: '{"size":3}' });
    expect(created.status, await created.clone().text()).toBe(201);
    const seeded = await api.fetch(`/groups/${GROUP}/v1/kv/a`, { method: 'PUT', body: 'seed' });
    expect(seeded.status).toBe(200);
    const guarded = apiFetch(api.prefix, { allowAnonymous: false, authTokens: TOKENS });
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (p) => {
        fc.pre(!changesGroups(p));
        const before = await footprint(api);
        // The open app has no tokens: one sent there is refused (401), so it gets none.
        const headers: Record<string, string> = p.anonymous || p.auth === undefined ? {} : { authorization: p.auth };
        const init: RequestInit = { method: p.method, headers };
        if (p.method !== 'GET' && p.method !== 'HEAD') init.body = p.body;
        const res = await (p.anonymous ? api.fetch : guarded)(p.path + p.query, init);
        const streaming = res.headers.get('content-type')?.startsWith('text/event-stream') === true;
        let text = '';
        if (streaming) await res.body?.cancel();
        else text = await res.text();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        const what = `${p.method} ${p.path}${p.query} (${p.anonymous ? 'open' : (p.auth ?? 'no token')}) -> ${res.status} ${text.slice(0, 300)}`;
        const ok = (res.status >= 200 && res.status < 300) || res.status === 304;
        const documented = (res.status >= 400 && res.status < 500) || res.status === 503 || res.status === 504;
        expect(ok || documented, what).toBe(true);
        if (res.status >= 400 && p.method !== 'HEAD') {
          expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
          const o = JSON.parse(text) as Record<string, unknown>;
          const e = o.error as { code?: unknown; message?: unknown } | undefined;
          if (!gatewayError(p, o)) {
            expect(typeof e?.code, what).toBe('string');
            expect(typeof e?.message, what).toBe('string');
          }
        }
        // A group nobody created stays uncreated, whatever the request.
        if (/^\/groups\/nobody(\/|$)/.test(pathOf(p)) && res.status !== 401 && res.status !== 400)
          expect([403, 404], what).toContain(res.status);
        if ((res.status >= 400 && res.status < 500) || p.method === 'GET' || p.method === 'HEAD') {
          const after = await footprint(api);
          expect(after, what).toEqual(before);
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // The probed group and the default group still take writes.
    for (const prefix of ['', `/groups/${GROUP}`]) {
      const r = await api.fetch(`${prefix}/v1/kv/after`, { method: 'PUT', body: 'x' });
      expect(r.status).toBe(200);
      await r.body?.cancel();
    }
    console.log(`groups fuzz: ${RUNS} requests (seed ${SEED}), statuses ${JSON.stringify(Object.fromEntries(seen))}`);
    expect([...seen.keys()].some((s) => s >= 200 && s < 300)).toBe(true);
    expect(seen.get(404)).toBeGreaterThan(0);
    expect(seen.get(403)).toBeGreaterThan(0);
  }, 180_000);
});
