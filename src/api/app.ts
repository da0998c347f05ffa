import { Hono, type MiddlewareHandler } from 'hono';
import { ANONYMOUS, authenticate, type Principal, principalOf } from './auth.ts';
import { ClusterClient, type NodeStatus } from './cluster.ts';
import { conditionals } from './conditions.ts';
import { type ApiConfig, type ApiEnv, type ApiOptions, readConfig } from './config.ts';
import type { C, Env } from './env.ts';
import { ApiError, badRequest, ConfigError } from './errors.ts';
import { DEFAULT_GROUP } from './groups/names.ts';
import { restoreRoutes } from './groups/restore.ts';
import { groupRoutes } from './groups/routes.ts';
import { forgetKnownGroup, groupConfig } from './groups/routing.ts';
import { openApiDocument } from './openapi.ts';
import { errorBody } from './outcomes.ts';
import { rawPathOf, routePathOf, strictInput } from './request.ts';
import { adminRoutes } from './routes/admin.ts';
import { electionRoutes } from './routes/elections.ts';
import { historyRoutes } from './routes/history.ts';
import { kvRoutes } from './routes/kv.ts';
import { leaseRoutes } from './routes/leases.ts';
import { lockRoutes } from './routes/locks.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { snapshotRoutes } from './routes/snapshot.ts';
import { statusRoutes } from './routes/status.ts';
import { v3ClusterRoutes } from './v3/cluster-routes.ts';
import { v3ConcurrencyRoutes } from './v3/concurrency-routes.ts';
import { EtcdError } from './v3/etcd-errors.ts';
import { asEtcdError } from './v3/gateway.ts';
import { v3KvRoutes } from './v3/kv-routes.ts';
import { v3LeaseRoutes } from './v3/lease-routes.ts';
import { v3WatchRoutes } from './v3/watch-route.ts';

export type { ApiEnv, ApiOptions } from './config.ts';
export type { ErrorBody } from './errors.ts';
export { MAX_COMMAND_BYTES } from './outcomes.ts';

/**
 * The public HTTP API (see README "HTTP API" and GET /v1/openapi.json).
 * It reaches nodes only through Durable Object RPC; a node's internal Raft
 * routes (`/internal/*`) are never reachable from here.
 */
export function createApp(options: ApiOptions = {}): Hono<Env> {
  // Routes match the path as sent (see request.ts): an encoded route prefix matches nothing.
  // A `/groups/{name}` prefix names the group; the routes see the path after it.
  const app = new Hono<Env>({ getPath: (req) => routePathOf(req.url) });
  let cached: { key: readonly unknown[]; config: Promise<ApiConfig> } | undefined;
  const configOf = (env: ApiEnv): Promise<ApiConfig> => {
    // One parse per set of values, which may differ between requests (a test's own env);
    // compared one by one, not serialized: this runs on every request.
    const key = [
      env.AUTH_TOKENS,
      env.ALLOW_ANONYMOUS,
      env.CLUSTER_NODES,
      env.MAX_VALUE_BYTES,
      env.REQUEST_TIMEOUT_MS,
      env.TICK_MS,
      env.HEARTBEAT_TICKS,
      env.ELECTION_TICKS,
      env.ELECTION_JITTER_TICKS,
    ];
    if (!cached || key.some((v, i) => v !== cached?.key[i])) cached = { key, config: readConfig(env, options) };
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
    // A group found gone while serving (deleted through another isolate): ask the directory next time.
    const config = c.get('config') as ApiConfig | undefined;
    if (err instanceof ApiError && err.code === 'group_not_found' && config && config.group !== DEFAULT_GROUP)
      forgetKnownGroup(config, config.group);
    // The /v3 gateway answers as etcd does, whatever failed.
    if (routePathOf(c.req.url).startsWith('/v3/') && (err instanceof EtcdError || err instanceof ApiError)) {
      const e = err instanceof EtcdError ? err : asEtcdError(err);
      return c.json(e.body(), e.status as 400);
    }
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

  // HEAD: Hono answers it with the GET route's headers and drops the body without
  // cancelling it, so a stream the route opened (a watch, a dump) would stay open at
  // its node, a watcher nobody reads. Cancel it: that closes the stream at the node.
  app.use('*', async function headWithoutStream(c, next) {
    await next();
    const body = c.res.body;
    if (c.req.method !== 'HEAD' || body === null) return;
    // A stream that failed already has nothing left to close.
    await body.cancel().catch(() => {});
    c.res = new Response(null, c.res);
  });

  // Every request: an id (in X-Request-Id and in logs), then its input decoded once, then its conditionals.
  app.use('*', async function requestIds(c, next) {
    const id = crypto.randomUUID();
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
  });
  app.use('*', strictInput(), conditionals());

  // The routes that ask for no token answer for a group only if it exists, as /readyz does:
  // /groups/{name}/healthz of a group deleted or never created is its 404, not a healthy answer.
  const groupExists: MiddlewareHandler<Env> = async function groupExists(c, next) {
    const group = c.get('input').group;
    if (group !== undefined) await groupConfig(c.env.RAFT_NODE, await configOf(c.env), group, ANONYMOUS);
    await next();
  };
  for (const path of ['/healthz', '/v1/openapi.json', '/', '/status.js']) app.use(path, groupExists);

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.get('/readyz', async (c) => {
    // A group's readiness says no more than whether it exists: no token is asked for here.
    const config = await groupConfig(c.env.RAFT_NODE, await configOf(c.env), c.get('input').group, ANONYMOUS);
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
  statusRoutes(app);

  // Everything else under /v1, and /metrics, needs a principal.
  const authenticated: MiddlewareHandler<Env> = async function authenticated(c, next) {
    const base = await configOf(c.env);
    const p = await principal(c, base);
    const config = await groupConfig(c.env.RAFT_NODE, base, c.get('input').group, p);
    c.set('config', config);
    c.set('principal', p);
    c.set('client', clientFor(c, config));
    await next();
  };
  app.use('/v1/*', authenticated);
  app.use('/metrics', authenticated);

  // etcd's v3 JSON gateway: the same tokens, also without the Bearer scheme.
  app.use('/v3/*', async function etcdAuthenticated(c, next) {
    const base = await configOf(c.env);
    const p = await principal(c, base, true);
    const config = await groupConfig(c.env.RAFT_NODE, base, c.get('input').group, p);
    c.set('config', config);
    c.set('principal', p);
    c.set('client', clientFor(c, config));
    await next();
  });

  // One file per resource (routes/); keys first: `/v1/kv/*` also matches `/v1/kv`.
  groupRoutes(app);
  restoreRoutes(app);
  kvRoutes(app);
  snapshotRoutes(app);
  historyRoutes(app);
  leaseRoutes(app);
  lockRoutes(app);
  electionRoutes(app);
  adminRoutes(app);
  metricsRoutes(app);
  v3KvRoutes(app);
  v3LeaseRoutes(app);
  v3ClusterRoutes(app);
  v3WatchRoutes(app);
  v3ConcurrencyRoutes(app);
  return app;
}

function hasActiveQuorum(st: NodeStatus): boolean {
  const active = st.conf.voters.filter((v) => v === st.id || st.progress[v]?.recentActive).length;
  return active > st.conf.voters.length / 2 && st.commit > 0;
}

/**
 * The caller, from `Authorization: Bearer <token>`; with `bareToken` (the
 * /v3 gateway, as etcd's clients send it) also `Authorization: <token>`.
 */
async function principal(c: C, config: ApiConfig, bareToken = false): Promise<Principal> {
  const h = c.req.header('authorization');
  if (h === undefined) {
    if (config.allowAnonymous) return ANONYMOUS;
    throw new ApiError(401, 'unauthorized', 'a bearer token is required', {}, { 'WWW-Authenticate': 'Bearer' });
  }
  const m = (bareToken ? /^(?:Bearer )?([\x21-\x7e]{1,512})$/i : /^Bearer ([\x21-\x7e]{1,512})$/i).exec(h.trim());
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

/** The app for the deployed Worker: configured from its vars and secrets. */
export const app = createApp();
