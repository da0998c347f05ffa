import { type Context, Hono } from 'hono';
import {
  type Compare,
  compareKeys,
  encodeCommand,
  type KeyValue,
  type KvCommand,
  KvDecodeError,
  type KvResult,
  prefixEnd,
  type TxnOp,
} from '../kv/index.ts';
import { ANONYMOUS, authenticate, type Principal, principalOf } from './auth.ts';
import { ClusterClient, type Consistency, type NodeStatus, type WriteOutcome } from './cluster.ts';
import { casCommand, needKey, needRole, rangeBounds, rangeJson, txnCommand, txnResultJson } from './commands.ts';
import { conditionals, etagsMatch, type Preconditions, writeGuards } from './conditions.ts';
import { type ApiConfig, type ApiEnv, type ApiOptions, readConfig } from './config.ts';
import { ApiError, badRequest, ConfigError, compactedError, type ErrorBody, futureRevisionError } from './errors.ts';
import { checkKey, kvJson, nat, obj, queryBool, queryInt, readBody, readJson, toBase64 } from './input.ts';
import { openApiDocument } from './openapi.ts';
import { type DecodedInput, pathTail, queryOf, rawPathOf, strictInput } from './request.ts';
import { WATCH_QUERY, watchSpecOf } from './watch-route.ts';

export type { ApiEnv, ApiOptions } from './config.ts';
export type { ErrorBody } from './errors.ts';

/** A log entry must fit one SQLite row (2 MB) with room to spare. */
export const MAX_COMMAND_BYTES = 1_835_008;
/** A JSON body (cas, txn, cluster) at most this large; the command size is checked again after parsing. */
const MAX_JSON_BYTES = 3 * 1024 * 1024;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const MEMBER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The actions of POST /v1/cluster/members, by name (a Map: inherited names like toString are not actions). */
const MEMBER_ACTIONS = new Map<string, 'addLearner' | 'addVoter' | 'remove'>([
  ['add_learner', 'addLearner'],
  ['promote', 'addVoter'],
  ['remove', 'remove'],
]);

type Env = {
  Bindings: ApiEnv;
  Variables: {
    requestId: string;
    input: DecodedInput;
    preconditions: Preconditions;
    config: ApiConfig;
    principal: Principal;
    client: ClusterClient;
  };
};
type C = Context<Env>;

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

function unavailable(detail: string): ApiError {
  return new ApiError(
    503,
    'unavailable',
    `no leader with a quorum answered in time (${detail})`,
    {},
    { 'Retry-After': '1' },
  );
}

function outcomeUnknown(detail: string): ApiError {
  return new ApiError(
    504,
    'outcome_unknown',
    `the write may or may not have been applied (${detail}); read the key, or retry with the same Idempotency-Key`,
    { outcome: 'unknown' },
  );
}

/**
 * The public HTTP API (see README "HTTP API" and GET /v1/openapi.json).
 * It reaches nodes only through Durable Object RPC; a node's internal Raft
 * routes (`/internal/*`) are never reachable from here.
 */
export function createApp(options: ApiOptions = {}): Hono<Env> {
  // Routes match the path as sent (see request.ts): an encoded route prefix matches nothing.
  const app = new Hono<Env>({ getPath: (req) => rawPathOf(req.url) });
  let cached: { key: string; config: Promise<ApiConfig> } | undefined;
  const configOf = (env: ApiEnv): Promise<ApiConfig> => {
    const key = JSON.stringify([
      env.AUTH_TOKENS,
      env.ALLOW_ANONYMOUS,
      env.CLUSTER_NODES,
      env.MAX_VALUE_BYTES,
      env.REQUEST_TIMEOUT_MS,
    ]);
    if (cached?.key !== key) cached = { key, config: readConfig(env, options) };
    return cached.config;
  };

  const clientFor = (c: C, config: ApiConfig): ClusterClient => {
    let timeout = config.requestTimeoutMs;
    const h = c.req.header('x-request-timeout-ms');
    if (h !== undefined) {
      if (!/^\d{1,9}$/.test(h) || Number(h) < 1)
        throw badRequest('X-Request-Timeout-Ms', 'expected a positive integer');
      timeout = Math.min(timeout, Number(h));
    }
    return new ClusterClient(c.env.RAFT_NODE, config.members, config.clusterPrefix, Date.now() + timeout);
  };

  app.onError((err, c) => {
    if (err instanceof ApiError) {
      return c.json(err.body(), err.status, err.headers);
    }
    if (err instanceof ConfigError) {
      console.error('configuration error:', err.message);
      return c.json(errorBody('misconfigured', 'the service is misconfigured; see its logs'), 500);
    }
    const requestId = c.get('requestId');
    console.error(`request ${requestId}: unhandled error`, err);
    return c.json({ ...errorBody('internal', `internal error (request ${requestId})`), request_id: requestId }, 500);
  });

  app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${rawPathOf(c.req.url)}`), 404));

  // Every request: an id (in X-Request-Id and in logs), then its input decoded once, then its conditionals.
  app.use('*', async function requestIds(c, next) {
    const id = crypto.randomUUID();
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
  });
  app.use('*', strictInput(), conditionals());

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.get('/readyz', async (c) => {
    const config = await configOf(c.env);
    const client = clientFor(c, { ...config, requestTimeoutMs: Math.min(config.requestTimeoutMs, 3000) });
    const st = await client.findLeader();
    if (st) {
      const ok = st.quiet || hasActiveQuorum(st) || (await client.barrier(st.id));
      if (ok) return c.json({ ready: true, leader: st.id, term: st.term });
    }
    return c.json({ error: { code: 'not_ready', message: 'no leader with a quorum' }, ready: false }, 503, {
      'Retry-After': '1',
    });
  });

  app.get('/v1/openapi.json', (c) => c.json(openApiDocument));

  // Everything else under /v1 needs a principal.
  app.use('/v1/*', async (c, next) => {
    const config = await configOf(c.env);
    c.set('config', config);
    c.set('principal', await principal(c, config));
    c.set('client', clientFor(c, config));
    await next();
  });

  // ---- ranges ----

  app.get('/v1/kv', async (c) => {
    const p = c.get('principal');
    const config = c.get('config');
    needRole(p, 'read');
    const q = queryOf(c.get('input'), [
      'prefix',
      'start',
      'end',
      'limit',
      'cursor',
      'keys_only',
      'count_only',
      'consistency',
      'revision',
    ]);
    const consistency = consistencyOf(q);
    const revision = revisionOf(q);
    const bounds = rangeBounds(Object.fromEntries(q), 'query', p);
    const limit = queryInt(q, 'limit', 1, config.maxRangeLimit) ?? config.defaultRangeLimit;
    const keysOnly = queryBool(q, 'keys_only');
    const countOnly = queryBool(q, 'count_only');
    let start = bounds.start;
    const cursor = q.get('cursor');
    if (cursor !== undefined) {
      const from = decodeCursor(cursor);
      const lo = bounds.prefix ?? bounds.start ?? '';
      const hi = bounds.prefix !== undefined ? prefixEnd(bounds.prefix) : bounds.end;
      if (compareKeys(from, lo) < 0 || (hi !== undefined && compareKeys(from, hi) >= 0))
        throw badRequest('cursor', 'not a cursor of this range');
      start = from;
    }
    const r = await c
      .get('client')
      .range({ prefix: bounds.prefix, start, end: bounds.end, limit, keysOnly, countOnly }, consistency, revision);
    if (r.kind !== 'ok') throw readFailed(r, revision);
    const v = r.value;
    const body: Record<string, unknown> = countOnly
      ? { count: v.count, revision: v.revision }
      : { ...rangeJson(v, keysOnly), revision: v.revision };
    if (!countOnly && v.more && v.next !== undefined) body.cursor = encodeCursor(v.next);
    return c.json(body, 200, readHeaders(consistency, v.revision));
  });

  app.delete('/v1/kv', async (c) => {
    const p = c.get('principal');
    needRole(p, 'write');
    const q = queryOf(c.get('input'), ['prefix', 'start', 'end']);
    const bounds = rangeBounds(Object.fromEntries(q), 'query', p);
    let cmd: KvCommand;
    if (bounds.prefix !== undefined) cmd = { type: 'deletePrefix', prefix: bounds.prefix };
    else if (bounds.start !== undefined && bounds.end !== undefined)
      cmd = { type: 'deleteRange', start: bounds.start, end: bounds.end };
    else throw badRequest('prefix', 'give prefix, or both start and end');
    const result = await write(c, cmd);
    if (result.type !== 'delete') throw new Error(`unexpected result ${result.type}`);
    return c.json({ deleted: result.deleted, revision: result.revision }, 200, {
      'X-Revision': String(result.revision),
    });
  });

  // ---- single keys (after the ranges: `/v1/kv/*` matches `/v1/kv` too) ----

  app.get('/v1/kv/*', async (c) => {
    const key = pathKey(c);
    const p = c.get('principal');
    needRole(p, 'read');
    needKey(p, key, 'key');
    const q = queryOf(c.get('input'), ['consistency', 'revision']);
    const consistency = consistencyOf(q);
    const revision = revisionOf(q);
    const r = await c.get('client').get(key, consistency, revision);
    if (r.kind !== 'ok') throw readFailed(r, revision);
    const headers = readHeaders(consistency, r.revision);
    const { ifMatch, ifNoneMatch } = c.get('preconditions');
    if (ifMatch !== undefined && !etagsMatch(ifMatch, r.value)) throw preconditionFailed(key, r.value, r.revision);
    if (!r.value) {
      return c.json(
        { ...errorBody('key_not_found', `no key ${JSON.stringify(key)}`), revision: r.revision },
        404,
        headers,
      );
    }
    const kv = r.value;
    Object.assign(headers, kvHeaders(kv));
    if (ifNoneMatch !== undefined && etagsMatch(ifNoneMatch, kv)) return c.body(null, 304, headers);
    if (wantsJson(c.req.header('accept'))) return c.json({ ...kvJson(kv), revision: r.revision }, 200, headers);
    return c.body(kv.value as Uint8Array<ArrayBuffer>, 200, { ...headers, 'Content-Type': 'application/octet-stream' });
  });

  app.put('/v1/kv/*', async (c) => {
    const key = pathKey(c);
    const p = c.get('principal');
    needRole(p, 'write');
    needKey(p, key, 'key');
    queryOf(c.get('input'), []);
    const pre = c.get('preconditions');
    const guards = writeGuards(key, pre);
    const value = await readBody(c.req.raw, c.get('config').maxValueBytes);
    const put: KvCommand = { type: 'put', key, value };
    const result = await write(c, guarded(key, guards, put));
    if (result.type === 'txn' && !result.succeeded) throw preconditionFailed(key, currentOf(result), result.revision);
    // Created only if the write required the key to be absent (If-None-Match: *).
    return c.json({ revision: result.revision }, pre.ifNoneMatch === '*' ? 201 : 200, {
      'X-Revision': String(result.revision),
      ETag: etag(result.revision),
    });
  });

  app.delete('/v1/kv/*', async (c) => {
    const key = pathKey(c);
    const p = c.get('principal');
    needRole(p, 'write');
    needKey(p, key, 'key');
    queryOf(c.get('input'), []);
    const guards = writeGuards(key, c.get('preconditions'));
    const result = await write(c, guarded(key, guards, { type: 'delete', key }));
    const headers = { 'X-Revision': String(result.revision) };
    if (result.type === 'txn' && !result.succeeded) throw preconditionFailed(key, currentOf(result), result.revision);
    const deleted =
      result.type === 'delete'
        ? result.deleted
        : result.type === 'txn' && result.results[0]?.type === 'delete'
          ? result.results[0].deleted
          : 0;
    if (deleted === 0)
      return c.json(
        { ...errorBody('key_not_found', `no key ${JSON.stringify(key)}`), revision: result.revision },
        404,
        headers,
      );
    return c.json({ deleted, revision: result.revision }, 200, headers);
  });

  // ---- cas and txn ----

  app.post('/v1/cas', async (c) => {
    const p = c.get('principal');
    needRole(p, 'write');
    queryOf(c.get('input'), []);
    const body = await readJson(c.req.raw, MAX_JSON_BYTES);
    const cmd = casCommand(body, p, c.get('config').maxValueBytes);
    const result = await write(c, cmd);
    if (result.type !== 'cas') throw new Error(`unexpected result ${result.type}`);
    return c.json(
      {
        succeeded: result.succeeded,
        revision: result.revision,
        ...(result.current ? { current: kvJson(result.current) } : {}),
      },
      200,
      { 'X-Revision': String(result.revision) },
    );
  });

  app.post('/v1/txn', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    queryOf(c.get('input'), []);
    const body = await readJson(c.req.raw, MAX_JSON_BYTES);
    const { cmd, writes } = txnCommand(body, p, c.get('config').maxValueBytes);
    if (writes) needRole(p, 'write');
    const result = await write(c, cmd);
    if (result.type !== 'txn') throw new Error(`unexpected result ${result.type}`);
    return c.json(
      { succeeded: result.succeeded, revision: result.revision, results: result.results.map(txnResultJson) },
      200,
      { 'X-Revision': String(result.revision) },
    );
  });

  // ---- history and watch ----

  app.get('/v1/watch', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    if (c.req.header('upgrade')?.toLowerCase() === 'websocket') {
      // Watches are created by messages on the socket (watch-sockets.ts), checked against the same principal.
      queryOf(c.get('input'), []);
      const res = await c.get('client').watchSocket(p);
      if (!res) throw unavailable('no replica accepted the WebSocket');
      return res;
    }
    const spec = watchSpecOf(queryOf(c.get('input'), WATCH_QUERY), c.req.header('last-event-id'), p);
    const out = await c.get('client').watch(spec);
    if (out.kind === 'compacted') throw compactedError(spec.startRevision ?? 0, out.compacted);
    if (out.kind === 'unavailable') throw unavailable(out.detail);
    return c.body(out.stream, 200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Revision': String(out.revision),
    });
  });

  app.post('/v1/compact', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['revision']);
    const revision = nat(body.revision, 'revision');
    const result = await write(c, { type: 'compact', revision });
    if (result.type !== 'compact') throw new Error(`unexpected result ${result.type}`);
    return c.json({ revision: result.revision, compact_revision: result.compacted }, 200, {
      'X-Revision': String(result.revision),
    });
  });

  // ---- cluster administration ----

  app.get('/v1/cluster', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const config = c.get('config');
    const client = c.get('client');
    const lead = await client.findLeader();
    const ids = new Set(config.members.map((m) => m.id));
    for (const id of [...(lead?.conf.voters ?? []), ...(lead?.conf.learners ?? [])]) ids.add(id);
    const statuses = await Promise.all([...ids].map(async (id) => [id, await client.status(id)] as const));
    const members = statuses.map(([id, st]) => {
      const pr = lead?.progress[id];
      const hint = config.members.find((m) => m.id === id)?.locationHint;
      return {
        name: id,
        membership: lead
          ? lead.conf.voters.includes(id)
            ? 'voter'
            : lead.conf.learners.includes(id)
              ? 'learner'
              : 'none'
          : 'unknown',
        location_hint: hint ?? null,
        reachable: st !== undefined,
        role: st?.role ?? null,
        term: st?.term ?? null,
        commit_index: st?.commit ?? null,
        applied_index: st?.applied ?? null,
        last_index: st?.lastIndex ?? null,
        match_index: pr?.match ?? null,
        recent_active: id === lead?.id ? true : (pr?.recentActive ?? null),
        // When the leader last heard from this member (ISO time), as the leader's clock says.
        last_contact:
          id === lead?.id ? null : lead?.lastContact[id] ? new Date(lead.lastContact[id]).toISOString() : null,
        quiet: st?.quiet ?? null,
      };
    });
    return c.json({
      leader: lead?.id ?? null,
      term: lead?.term ?? null,
      commit_index: lead?.commit ?? null,
      members,
    });
  });

  app.post('/v1/cluster/members', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['action', 'node']);
    const type = typeof body.action === 'string' ? MEMBER_ACTIONS.get(body.action) : undefined;
    if (type === undefined) throw badRequest('action', `expected one of ${[...MEMBER_ACTIONS.keys()].join(', ')}`);
    if (typeof body.node !== 'string' || !MEMBER_NAME.test(body.node))
      throw badRequest('node', 'expected 1-64 of [A-Za-z0-9_-]');
    const out = await c.get('client').changeMembership({ type, node: body.node });
    settle(out);
    const lead = await c.get('client').findLeader();
    return c.json({ ok: true, conf: lead ? { voters: lead.conf.voters, learners: lead.conf.learners } : null });
  });

  app.post('/v1/cluster/leader', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['to']);
    if (typeof body.to !== 'string' || !MEMBER_NAME.test(body.to)) throw badRequest('to', 'expected a member name');
    const to = body.to;
    const client = c.get('client');
    const lead = await client.findLeader();
    if (!lead) throw unavailable('no leader to transfer from');
    if (!lead.conf.voters.includes(to)) throw new ApiError(409, 'not_a_voter', `${to} is not a voter`);
    if (lead.id !== to) await client.transferLeadership(lead.id, to);
    for (let attempt = 0; ; attempt++) {
      const st = await client.status(to);
      if (st?.role === 'leader') return c.json({ leader: to, term: st.term });
      if (!(await client.pause(attempt))) break;
    }
    throw new ApiError(
      503,
      'transfer_incomplete',
      `leadership did not move to ${to} in time`,
      {},
      { 'Retry-After': '1' },
    );
  });

  /** Proposes `cmd` (with the Idempotency-Key, if any) and returns its result, or throws the right error. */
  async function write(c: C, cmd: KvCommand): Promise<Exclude<KvResult, { type: 'error' }>> {
    const p = c.get('principal');
    const idem = c.req.header('idempotency-key');
    if (idem !== undefined && !IDEMPOTENCY_KEY.test(idem))
      throw badRequest('Idempotency-Key', '1-200 printable ASCII characters');
    const requestId = idem === undefined ? undefined : `${p.id}:${idem}`;
    let bytes: Uint8Array;
    try {
      bytes = encodeCommand({ requestId, cmd });
    } catch (e) {
      if (e instanceof KvDecodeError) throw badRequest('body', e.message);
      throw e;
    }
    if (bytes.byteLength > MAX_COMMAND_BYTES)
      throw new ApiError(413, 'too_large', `the command is larger than ${MAX_COMMAND_BYTES} bytes`);
    const result = settle(await c.get('client').propose(bytes, requestId !== undefined));
    if (result.type === 'error') {
      if (result.error === 'request_id_reused')
        throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with another request');
      if (result.error === 'result_unavailable')
        throw new ApiError(409, 'result_unavailable', 'this request was applied before, but its result was not kept');
      if (result.error === 'compacted' && cmd.type === 'compact')
        throw compactedError(cmd.revision, result.compacted ?? 0);
      if (result.error === 'future_revision' && cmd.type === 'compact')
        throw futureRevisionError(cmd.revision, result.current ?? 0);
      // bad_command or stale_entry: the API encodes with the state machine's own validator, so this is a bug.
      throw new Error(`state machine error ${result.error}: ${result.message}`);
    }
    return result;
  }

  return app;
}

function settle<R>(out: WriteOutcome<R>): R {
  switch (out.kind) {
    case 'applied':
      return out.result;
    case 'unknown':
      throw outcomeUnknown(out.detail);
    case 'unavailable':
      throw unavailable(out.detail);
    case 'rejected':
      throw new ApiError(409, 'rejected', out.detail);
  }
}

function hasActiveQuorum(st: NodeStatus): boolean {
  const active = st.conf.voters.filter((v) => v === st.id || st.progress[v]?.recentActive).length;
  return active > st.conf.voters.length / 2 && st.commit > 0;
}

async function principal(c: C, config: ApiConfig): Promise<Principal> {
  const h = c.req.header('authorization');
  if (h === undefined) {
    if (config.allowAnonymous) return ANONYMOUS;
    throw new ApiError(401, 'unauthorized', 'a bearer token is required', {}, { 'WWW-Authenticate': 'Bearer' });
  }
  const m = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(h.trim());
  const entry = m?.[1] ? await authenticate(m[1], config.tokens) : undefined;
  if (!entry)
    throw new ApiError(
      401,
      'unauthorized',
      'invalid bearer token',
      {},
      {
        'WWW-Authenticate': 'Bearer error="invalid_token"',
      },
    );
  return principalOf(entry);
}

/** The key: the decoded path after the literal `/v1/kv/` the route matched (so %2F and the like decode once). */
function pathKey(c: C): string {
  return checkKey(pathTail(c.get('input'), '/v1/kv/'), 'key');
}

/** `op` on `key`, or, when the request carried conditions, a txn that runs it only if they hold. */
function guarded(key: string, guards: Compare[], op: TxnOp): KvCommand {
  if (guards.length === 0) return op as KvCommand;
  return { type: 'txn', compare: guards, success: [op], failure: [{ type: 'get', key }] };
}

/** `?revision=N`: read the store as of revision N (undefined: now). */
function revisionOf(q: Map<string, string>): number | undefined {
  return queryInt(q, 'revision', 0, Number.MAX_SAFE_INTEGER);
}

/** The error for a read that did not answer: no leader, or a revision outside the history. */
function readFailed(
  r:
    | { kind: 'unavailable'; detail: string }
    | { kind: 'compacted'; compacted: number }
    | { kind: 'futureRevision'; revision: number },
  revision: number | undefined,
): ApiError {
  if (r.kind === 'compacted') return compactedError(revision ?? 0, r.compacted);
  if (r.kind === 'futureRevision') return futureRevisionError(revision ?? 0, r.revision);
  return unavailable(r.detail);
}

function consistencyOf(q: Map<string, string>): Consistency {
  const v = q.get('consistency') ?? 'linearizable';
  if (v !== 'linearizable' && v !== 'serializable')
    throw badRequest('consistency', 'expected linearizable or serializable');
  return v;
}

function readHeaders(consistency: Consistency, revision: number): Record<string, string> {
  const h: Record<string, string> = { 'X-Revision': String(revision), 'X-Consistency': consistency };
  if (consistency === 'serializable') h['X-Stale'] = 'possible';
  return h;
}

function kvHeaders(kv: KeyValue): Record<string, string> {
  return {
    ETag: etag(kv.modRevision),
    'X-Create-Revision': String(kv.createRevision),
    'X-Mod-Revision': String(kv.modRevision),
    'X-Version': String(kv.version),
  };
}

function etag(rev: number): string {
  return `"${rev}"`;
}

function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /application\/json/i.test(accept);
}

function currentOf(r: KvResult): KeyValue | undefined {
  if (r.type === 'cas') return r.current;
  if (r.type === 'txn') {
    const first = r.results[0];
    return first?.type === 'get' ? first.kv : undefined;
  }
  return undefined;
}

function preconditionFailed(key: string, current: KeyValue | undefined, revision: number): ApiError {
  return new ApiError(
    412,
    'precondition_failed',
    current
      ? `key ${JSON.stringify(key)} is at mod_revision ${current.modRevision}`
      : `key ${JSON.stringify(key)} does not exist`,
    { current: current ? kvJson(current, true) : null, revision },
    current ? { ETag: etag(current.modRevision) } : {},
  );
}

function encodeCursor(next: string): string {
  return toBase64(new TextEncoder().encode(next)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function decodeCursor(s: string): string {
  try {
    if (!/^[A-Za-z0-9_-]{1,8000}$/.test(s)) throw new Error();
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    return checkKey(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes), 'cursor');
  } catch {
    throw badRequest('cursor', 'not a cursor from this API');
  }
}

/** The app for the deployed Worker: configured from its vars and secrets. */
export const app = createApp();
