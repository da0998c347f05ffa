import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  CompactedError,
  ConflictError,
  DurableRaftError,
  ForbiddenError,
  NotFoundError,
  OutcomeUnknownError,
  PreconditionFailedError,
  UnauthorizedError,
  UnavailableError,
} from '../../src/client/index.ts';
import { errorResponse, newClient } from './helpers.ts';

/** How answers map to typed errors, and which requests are retried with which Idempotency-Key. */

describe('client: errors', () => {
  it('each status becomes its class, carrying the code and message', async () => {
    const { client, intercept } = await newClient();
    const cases: [number, string, new (...a: never[]) => DurableRaftError][] = [
      [400, 'bad_request', BadRequestError],
      [401, 'unauthorized', UnauthorizedError],
      [403, 'forbidden', ForbiddenError],
      [404, 'lease_not_found', NotFoundError],
      [409, 'lock_busy', ConflictError],
      [413, 'too_large', BadRequestError],
      [422, 'idempotency_key_reused', BadRequestError],
      [500, 'internal', DurableRaftError],
    ];
    for (const [status, code, cls] of cases) {
      intercept(() => errorResponse(status, code));
      const e = await client.leases.timeToLive('1').catch((x: unknown) => x);
      expect(e, String(status)).toBeInstanceOf(cls);
      expect((e as DurableRaftError).status).toBe(status);
      expect((e as DurableRaftError).code).toBe(code);
      expect((e as DurableRaftError).message).toBe(`${code} (test)`);
    }
    intercept(() =>
      Response.json({ error: { code: 'compacted', message: 'm', compact_revision: 17 } }, { status: 410 }),
    );
    const c = await client.get('k', { revision: 1 }).catch((x: unknown) => x);
    expect(c).toBeInstanceOf(CompactedError);
    expect((c as CompactedError).compactRevision).toBe(17);
    intercept(() =>
      errorResponse(412, 'precondition_failed', {
        current: { key: 'k', create_revision: 3, mod_revision: 9, version: 2 },
        revision: 11,
      }),
    );
    const p = await client.put('k', 'v', { ifMatch: 3 }).catch((x: unknown) => x);
    expect(p).toBeInstanceOf(PreconditionFailedError);
    expect((p as PreconditionFailedError).current?.modRevision).toBe(9);
    expect((p as PreconditionFailedError).revision).toBe(11);
  });

  it('401 and 403 from the real app: no token, and a read token writing', async () => {
    const authTokens = 'read:read-token-0001, write:write-token-0001';
    const anon = await newClient({ api: { allowAnonymous: false, authTokens } });
    expect(await anon.client.get('k').catch((x: unknown) => x)).toBeInstanceOf(UnauthorizedError);
    const reader = await newClient({ api: { allowAnonymous: false, authTokens }, token: 'read-token-0001' });
    const e = await reader.client.put('k', 'v').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ForbiddenError);
    expect((e as ForbiddenError).code).toBe('forbidden');
    expect((await reader.client.get('k')).kv).toBeUndefined();
    expect(reader.sent[0]?.headers.get('authorization')).toBe('Bearer read-token-0001');
  });

  it('a write retried after 503, a 504 and a lost answer keeps its Idempotency-Key and applies once', async () => {
    const { client, sent, intercept, api } = await newClient();
    let applied: Response | undefined;
    intercept((s, n) => {
      if (n === 1) return errorResponse(503, 'unavailable');
      if (n === 2) return new TypeError('connection reset');
      if (n === 3) {
        // The write applies, but its answer is lost behind a 504.
        return api.fetch(s.path, { method: 'PUT', body: 'v', headers: s.headers }).then((r) => {
          applied = r;
          return errorResponse(504, 'outcome_unknown', { outcome: 'unknown' });
        });
      }
      return undefined;
    });
    const w = await client.put('once', 'v');
    expect(sent).toHaveLength(4);
    const keys = new Set(sent.map((s) => s.headers.get('idempotency-key')));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
    if (!applied) throw new Error('the third attempt did not reach the app');
    expect(applied.status).toBe(200);
    // The retry answered the first application's result: one revision, version 1.
    expect(w.revision).toBe(((await applied.json()) as { revision: number }).revision);
    expect((await client.get('once')).kv?.version).toBe(1);
    // A second call is another write, with another key.
    intercept(undefined);
    await client.put('once', 'v');
    expect(sent[4]?.headers.get('idempotency-key')).not.toBe(sent[0]?.headers.get('idempotency-key'));
    expect((await client.get('once')).kv?.version).toBe(2);
  });

  it('out of time: UnavailableError after only 503s, OutcomeUnknownError once an attempt may have applied', async () => {
    const { client, sent, intercept } = await newClient({ timeoutMs: 400 });
    intercept(() => errorResponse(503, 'unavailable'));
    const a = await client.put('k', 'v').catch((x: unknown) => x);
    expect(a).toBeInstanceOf(UnavailableError);
    expect(sent.length).toBeGreaterThan(2);
    intercept(() => errorResponse(504, 'outcome_unknown', { outcome: 'unknown' }));
    const before = sent.length;
    const b = await client.put('k', 'v').catch((x: unknown) => x);
    expect(b).toBeInstanceOf(OutcomeUnknownError);
    expect(sent.length - before).toBeGreaterThan(1);
    // A read is retried on 503 the same way and never carries a key.
    intercept(() => errorResponse(503, 'unavailable'));
    expect(await client.get('k').catch((x: unknown) => x)).toBeInstanceOf(UnavailableError);
    expect(sent.at(-1)?.headers.get('idempotency-key')).toBeNull();
  });

  it('routes that refuse Idempotency-Key get none; a 504 or a lost answer there is not retried', async () => {
    const { client, sent, intercept } = await newClient();
    const held = await client.lock('l');
    const lease = await client.leases.grant(5);
    const lockPost = sent.find((s) => s.method === 'POST' && s.path.startsWith('/v1/locks/'));
    expect(lockPost?.headers.get('idempotency-key')).toBeNull();
    intercept(() => errorResponse(504, 'outcome_unknown', { outcome: 'unknown' }));
    let before = sent.length;
    expect(await client.lock('m').catch((x: unknown) => x)).toBeInstanceOf(OutcomeUnknownError);
    expect(sent.length - before).toBe(1);
    intercept(() => new TypeError('connection reset'));
    before = sent.length;
    const c = await client.elections.campaign('e', { lease: lease.id, value: 'x' }).catch((x: unknown) => x);
    expect(c).toBeInstanceOf(OutcomeUnknownError);
    expect(sent.length - before).toBe(1);
    // A 503 there changed nothing, so it is retried.
    let refused = 0;
    intercept((s) => (s.path === '/v1/locks/m' && refused++ === 0 ? errorResponse(503, 'unavailable') : undefined));
    const again = await client.lock('m');
    expect(refused).toBe(2);
    expect(again.revision).toBeGreaterThan(held.revision);
    intercept(undefined);
    await held.unlock();
    await again.unlock();
    await lease.revoke();
  });
});
