import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apiFetch, newApi } from './api-helpers.ts';
import { footprint, fuzzKnob, INHERITED, weird, withField } from './fuzz-helpers.ts';
import { textWithin } from './json-lines.ts';

/**
 * The property-based probe of the etcd v3 gateway: every /v3 route (and
 * some that etcd has and we answer Unimplemented, and some nobody has) with
 * valid gateway bodies mutated at the top and one level down (wrong types,
 * huge numbers, bytes that are not base64, inherited names), random JSON and
 * bytes, and every way of sending a token. Every answer must be a 2xx, or an
 * error in etcd's shape `{"error","message","code"}` with the HTTP status
 * grpc-gateway gives its code. The only 5xx allowed are etcd's own: 500
 * Unknown with the messages etcd's lock and election servers pass on, 501
 * Unimplemented, 503 Unavailable, 504 DeadlineExceeded. An error never moves
 * the store's revision; an input error we raise before the log (any
 * InvalidArgument that is not etcd's own, a bad token, a refused permission)
 * leaves the leader's applied index where it was too.
 *
 * `npm test` runs 600 requests from a fixed seed; FUZZ_RUNS and FUZZ_SEED
 * (as for `npm run test:fuzz`) run more.
 */

const RUNS = fuzzKnob('FUZZ_RUNS', 600);
const SEED = fuzzKnob('FUZZ_SEED', 20_261_204);

const TOKENS = JSON.stringify([
  { token: 'reader-token-1', role: 'read' },
  { token: 'writer-token-1', role: 'write', prefixes: ['p/'] },
  { token: 'admin-token-01', role: 'admin' },
]);

/** The one lease a lock or campaign may name: contenders of one lease never wait for each other. */
const LEASE = 77;

const b64 = (s: string) => btoa(s);
const KEYS = ['a', 'p/1', 'p/2', 'q', ''].map(b64);
const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KEYS, b64('\u0000')) },
  { weight: 1, arbitrary: fc.constantFrom('not base64!', '====', 'YQ', '_-8', '/w==', '//8=', 'wK8=') },
);

/** A valid gateway body for each route, some fields drawn at random. */
const VALID: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  '/v3/kv/range': fc.record(
    { key, range_end: key, limit: fc.nat(3), revision: fc.nat(8), count_only: fc.boolean() },
    { requiredKeys: ['key'] },
  ),
  '/v3/kv/put': fc.record(
    { key, value: key, prev_kv: fc.boolean(), lease: fc.constantFrom('77', '5'), ignore_value: fc.boolean() },
    { requiredKeys: ['key'] },
  ),
  '/v3/kv/deleterange': fc.record({ key, range_end: key, prev_kv: fc.boolean() }, { requiredKeys: ['key'] }),
  '/v3/kv/txn': fc.record({
    compare: fc.array(
      fc.record({
        key,
        target: fc.constantFrom('VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE', 'nope'),
        result: fc.constantFrom('EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'),
        version: fc.constantFrom('0', '1', 2),
        value: key,
      }),
      { maxLength: 2 },
    ),
    success: fc.array(
      fc.oneof(
        fc.record({ request_put: fc.record({ key, value: key }) }),
        fc.record({ request_range: fc.record({ key, limit: fc.nat(2), revision: fc.nat(6) }) }),
        fc.record({ request_delete_range: fc.record({ key }) }),
      ),
      { maxLength: 3 },
    ),
  }),
  '/v3/kv/compaction': fc.record({ revision: fc.constantFrom('1', '2', '3', 99), physical: fc.boolean() }),
  '/v3/lease/grant': fc.record({ TTL: fc.constantFrom('60', 3600, '0'), ID: fc.constantFrom('77', '78', '0') }),
  '/v3/lease/revoke': fc.record({ ID: fc.constantFrom('78', '5') }),
  '/v3/kv/lease/revoke': fc.record({ ID: fc.constantFrom('78', '5') }),
  '/v3/lease/keepalive': fc.record({ ID: fc.constantFrom('77', '5') }),
  '/v3/lease/timetolive': fc.record({ ID: fc.constantFrom('77', '5'), keys: fc.boolean() }),
  '/v3/lease/leases': fc.constant({}),
  '/v3/watch': fc.record({
    create_request: fc.record({
      key,
      range_end: key,
      start_revision: fc.constantFrom('1', '2', 5),
      prev_kv: fc.boolean(),
    }),
  }),
  '/v3/lock/lock': fc.record({ name: key, lease: fc.constant(String(LEASE)) }),
  '/v3/lock/unlock': fc.record({ key }),
  '/v3/election/campaign': fc.record({ name: key, lease: fc.constant(String(LEASE)), value: key }),
  '/v3/election/proclaim': fc.record({
    leader: fc.record({ name: key, key, rev: fc.constantFrom('0', '1', '2', '9'), lease: fc.constant('77') }),
    value: key,
  }),
  '/v3/election/resign': fc.record({
    leader: fc.record({ name: key, key, rev: fc.constantFrom('0', '1', '2'), lease: fc.constant('77') }),
  }),
  '/v3/election/leader': fc.record({ name: key }),
  '/v3/election/observe': fc.record({ name: key }),
  '/v3/cluster/member/list': fc.constant({}),
  '/v3/maintenance/status': fc.constant({}),
  // etcd has these (we answer Unimplemented), or nobody does.
  '/v3/maintenance/defragment': fc.constant({}),
  '/v3/auth/enable': fc.constant({}),
  '/v3/kv/nope': fc.constant({}),
  '/v3/': fc.constant({}),
};
const ROUTES = Object.keys(VALID);
const FIELDS = ['key', 'range_end', 'value', 'lease', 'ID', 'TTL', 'revision', 'limit', 'name', 'leader'];

/** Sets a field of the body, or of one object one level down, to a hostile value. */
const mutation = fc.tuple(fc.constantFrom(...FIELDS, ...INHERITED), weird, fc.boolean());
function mutate(
  body: Record<string, unknown>,
  [name, value, deep]: [string, unknown, boolean],
): Record<string, unknown> {
  if (deep) {
    for (const [k, v] of Object.entries(body)) {
      const inner = Array.isArray(v) ? v[0] : v;
      if (typeof inner === 'object' && inner !== null && !Array.isArray(inner)) {
        const changed = withField(inner as Record<string, unknown>, name, value);
        return withField(body, k, Array.isArray(v) ? [changed, ...v.slice(1)] : changed);
      }
    }
  }
  return withField(body, name, value);
}

const probe = fc.constantFrom(...ROUTES).chain((route) =>
  fc.record({
    route: fc.constant(route),
    method: fc.oneof(
      { weight: 9, arbitrary: fc.constant('POST') },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT') },
    ),
    body: fc.oneof(
      { weight: 3, arbitrary: (VALID[route] as fc.Arbitrary<Record<string, unknown>>).map((b) => JSON.stringify(b)) },
      {
        weight: 4,
        arbitrary: fc
          .tuple(
            VALID[route] as fc.Arbitrary<Record<string, unknown>>,
            fc.array(mutation, { minLength: 1, maxLength: 2 }),
          )
          .map(([b, edits]) => JSON.stringify(edits.reduce(mutate, b))),
      },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '',
          '{',
          '[]',
          'null',
          '5',
          '1.5',
          '"x"',
          '{"key":"YQ=="}{}',
          '{"__proto__":{"key":"YQ=="}}',
        ),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) },
    ),
    // Mostly anonymous calls without a token, so most get past the front door.
    auth: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      {
        weight: 3,
        arbitrary: fc.constantFrom(
          'writer-token-1',
          'Bearer writer-token-1',
          'reader-token-1',
          'admin-token-01',
          'wrong-token-1',
          'Bearer ',
          'Basic YTpi',
        ),
      },
    ),
    anonymous: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  }),
);

type Probe = typeof probe extends fc.Arbitrary<infer T> ? T : never;

/** A lock or campaign with a lease of its own could wait for another holder: leave it out. */
function mayWait(p: Probe): boolean {
  if (p.route !== '/v3/lock/lock' && p.route !== '/v3/election/campaign') return false;
  try {
    const o = JSON.parse(typeof p.body === 'string' ? p.body : '') as Record<string, unknown>;
    const lease = Object.hasOwn(o, 'lease') ? Number(o.lease) : 0;
    return Number.isSafeInteger(lease) && lease > 0 && lease !== LEASE;
  } catch {
    return false;
  }
}

/** grpc-gateway's HTTP status for each gRPC code. */
const HTTP_OF: Record<number, number> = {
  2: 500,
  3: 400,
  5: 404,
  6: 409,
  7: 403,
  9: 412,
  11: 400,
  12: 501,
  14: 503,
  16: 401,
  4: 504,
};
/** The Unknown (500) answers etcd's lock and election servers give, word for word. */
const UNKNOWN_MESSAGES = ['election: no leader', 'election: not leader', 'etcdserver: requested lease not found'];

describe('v3 gateway: property-based probe', () => {
  it(
    `${RUNS} random and mutated gateway calls: 2xx or etcd's errors, and errors change nothing`,
    async () => {
      const api = await newApi({ minLeaseTtl: 3600 });
      const guarded = apiFetch(api.prefix, { allowAnonymous: false, authTokens: TOKENS, minLeaseTtl: 3600 });
      const open = apiFetch(api.prefix, { allowAnonymous: true, authTokens: TOKENS, minLeaseTtl: 3600 });
      const grant = await api.fetch('/v3/lease/grant', {
        method: 'POST',
        body: JSON.stringify({ ID: String(LEASE), TTL: '3600' }),
      });
      expect(grant.status).toBe(200);
      await grant.body?.cancel();
      const seen = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(probe, async (p) => {
          fc.pre(!mayWait(p));
          const before = await footprint(api);
          const headers: Record<string, string> = p.auth === undefined ? {} : { authorization: p.auth };
          const init: RequestInit = { method: p.method, headers };
          if (p.method !== 'GET') init.body = p.body;
          const res = await (p.anonymous ? open : guarded)(p.route, init);
          // Streams (watch, observe, keepalive) are cut after what they send in 300 ms.
          const text = await textWithin(res, 300);
          const what = `${p.method} ${p.route} ${typeof p.body === 'string' ? p.body.slice(0, 200) : '<bytes>'} (auth ${p.auth}) -> ${res.status} ${text.slice(0, 300)}`;
          let code: number | undefined;
          if (res.status >= 300) {
            expect(res.headers.get('content-type'), what).toMatch(/^application\/json/);
            const e = JSON.parse(text) as { error?: unknown; message?: unknown; code?: unknown };
            // A route etcd does not have (or a method it does not take) may be our 404; anything else is etcd's shape.
            const known = ROUTES.slice(0, -2).includes(p.route) && p.method === 'POST';
            if (known || res.status !== 404) {
              expect(typeof e.error, what).toBe('string');
              expect(e.message, what).toBe(e.error);
              expect(typeof e.code, what).toBe('number');
              code = e.code as number;
              expect(HTTP_OF[code], what).toBe(res.status);
              if (code === 2) expect(UNKNOWN_MESSAGES, what).toContain(e.message);
            }
          }
          seen.set(`${res.status}/${code ?? ''}`, (seen.get(`${res.status}/${code ?? ''}`) ?? 0) + 1);
          if (res.status >= 300) {
            const after = await footprint(api);
            expect(after.revision, what).toBe(before.revision);
            const message = JSON.parse(text).message as string | undefined;
            const ours = code === 3 && !message?.startsWith('etcdserver: ');
            const refused = ours || code === 16 || code === 7 || (res.status === 404 && code === undefined);
            if (refused && after.leader === before.leader && after.term === before.term)
              expect(after.applied, `${what} (refused before the log)`).toBe(before.applied);
          }
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      console.log(`v3 fuzz: ${RUNS} calls (seed ${SEED}), status/code ${JSON.stringify(Object.fromEntries(seen))}`);
      expect([...seen.keys()].some((s) => s.startsWith('200'))).toBe(true);
      expect(seen.get('400/3')).toBeGreaterThan(0);
    },
    Math.max(120_000, RUNS * 60),
  );
});
