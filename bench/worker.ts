/**
 * The bench Worker (wrangler.bench.toml, `npm run bench`): the public API
 * (anonymous), an unreplicated baseline under /baseline/..., and bench-only
 * control routes under /bench/... that reach nodes through their stubs
 * (status, counters, the fault layer, a crash-restart). Never deploy this.
 */
import { createApp } from '../src/api/app.ts';
import type { ApiEnv } from '../src/api/config.ts';
import { KNOWN_GROUPS_MAX, knownGroupCount } from '../src/api/groups/known.ts';
import type { NodeEnv } from '../src/node/node-object.ts';
import { RaftNode as ProductionRaftNode } from '../src/node/raft-node.ts';
import { BaselineStore } from './baseline.ts';

export { BaselineStore };

/**
 * Billed-operation counters of one node, kept at module level by object id:
 * they outlive the object's eviction (hibernation, or Miniflare's idle
 * eviction) for as long as the isolate lives, so a window in which a node is
 * evicted and started again loses none of its invocations. `countersSince`
 * changes if they were lost anyway (a new isolate); `startedAt` is when the
 * object in memory now started.
 */
export interface BenchStats {
  /** When the object now in memory was constructed. */
  startedAt: number;
  /** When these counters started (counts are comparable between two stats with the same value). */
  countersSince: number;
  fetches: number;
  /** Workers RPC calls from outside the object (the API Worker, the runner), each counted once. */
  rpcs: number;
  /** The same, by method name. */
  rpcsByMethod: Record<string, number>;
  alarms: number;
  /** webSocketMessage calls: a hibernated object wakes for each (a billed invocation). */
  wsMessages: number;
  /** webSocketClose and webSocketError calls (billed invocations too). */
  wsCloses: number;
  /** WebSockets accepted by this object and still open (read when asked, not counted). */
  webSockets: number;
  rowsWritten: number;
  rowsRead: number;
  sqlStatements: number;
  databaseSize: number;
  counting: boolean;
  /** Asked with `since`: when each invocation (fetch, RPC, alarm, WebSocket event) since then began, in ms. */
  times?: number[];
}

type Counters = Omit<BenchStats, 'startedAt' | 'webSockets' | 'databaseSize' | 'counting' | 'times'>;

/** The last TIMES invocation times of each node (a ring), for timelines of idle windows. */
const TIMES = 4096;
/** A node's counters, kept across its resets; `cursors`: statements whose rows are not summed yet. */
interface NodeCounters {
  c: Counters;
  times: Float64Array;
  next: number;
  cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[];
}
const counters = new Map<string, NodeCounters>();

/** Adds the rows of the cursors kept so far to the counters (each was consumed already). */
function settleRows(k: NodeCounters): void {
  for (const cursor of k.cursors) {
    k.c.rowsWritten += cursor.rowsWritten;
    k.c.rowsRead += cursor.rowsRead;
  }
  k.cursors.length = 0;
}

function countersOf(id: string): NodeCounters {
  let k = counters.get(id);
  if (!k) {
    k = {
      c: {
        countersSince: Date.now(),
        fetches: 0,
        rpcs: 0,
        rpcsByMethod: {},
        alarms: 0,
        wsMessages: 0,
        wsCloses: 0,
        rowsWritten: 0,
        rowsRead: 0,
        sqlStatements: 0,
      },
      times: new Float64Array(TIMES),
      next: 0,
      cursors: [],
    };
    counters.set(id, k);
  }
  return k;
}

/**
 * The production RaftNode with counters: incoming requests (fetch = peer
 * Raft messages and WebSocket upgrades, RPC = API calls, alarms, WebSocket
 * messages and closes) and SQLite rows written/read as reported by each
 * statement's cursor.
 */
export class RaftNode extends ProductionRaftNode {
  private readonly startedAt = Date.now();
  private readonly k: NodeCounters;
  private readonly counting: boolean;
  /** Inside a counted RPC's synchronous part: a public method it calls on `this` is not another invocation. */
  private inRpc = false;

  constructor(ctx: DurableObjectState, env: NodeEnv) {
    super(ctx, env);
    const k = countersOf(ctx.id.toString());
    this.k = k;
    const c = k.c;
    const sql = ctx.storage.sql;
    const exec = sql.exec.bind(sql);
    let counting = false;
    try {
      // The node consumes each cursor before its next statement, so the rows of
      // the cursors kept here are summed later: wrapping every cursor's toArray
      // had cost the measured cluster ~2% of its time, which the baseline (not
      // instrumented) did not pay.
      const patched = ((query: string, ...params: SqlStorageValue[]) => {
        if (k.cursors.length >= 256) settleRows(k);
        const cursor = exec(query, ...params);
        c.sqlStatements++;
        k.cursors.push(cursor);
        return cursor;
      }) as typeof sql.exec;
      Object.defineProperty(sql, 'exec', { value: patched, configurable: true, writable: true });
      counting = ctx.storage.sql.exec === patched;
    } catch {
      counting = false;
    }
    this.counting = counting;
  }

  private invoked(): void {
    const k = this.k;
    k.times[k.next % TIMES] = Date.now();
    k.next++;
  }

  /** Counts one RPC of `method`, unless it is called from inside another one (as get calls readBarrier). */
  private rpc<T>(method: string, call: () => T): T {
    if (this.inRpc) return call();
    const c = this.k.c;
    c.rpcs++;
    c.rpcsByMethod[method] = (c.rpcsByMethod[method] ?? 0) + 1;
    this.invoked();
    this.inRpc = true;
    try {
      return call();
    } finally {
      this.inRpc = false;
    }
  }

  override async fetch(req: Request): Promise<Response> {
    this.k.c.fetches++;
    this.invoked();
    return super.fetch(req);
  }

  override async alarm(): Promise<void> {
    this.k.c.alarms++;
    this.invoked();
    return super.alarm();
  }

  // The hibernation handlers, with whatever parameters the production ones take.
  override async webSocketMessage(...args: Parameters<ProductionRaftNode['webSocketMessage']>): Promise<void> {
    this.k.c.wsMessages++;
    this.invoked();
    return super.webSocketMessage(...args);
  }

  override async webSocketClose(...args: Parameters<ProductionRaftNode['webSocketClose']>): Promise<void> {
    this.k.c.wsCloses++;
    this.invoked();
    return super.webSocketClose(...args);
  }

  override async webSocketError(...args: Parameters<ProductionRaftNode['webSocketError']>): Promise<void> {
    this.k.c.wsCloses++;
    this.invoked();
    return super.webSocketError(...args);
  }

  // Every RPC method of the production class (what the API Worker and the runner call).
  override watchEvents(...a: Parameters<ProductionRaftNode['watchEvents']>) {
    return this.rpc('watchEvents', () => super.watchEvents(...a));
  }

  override nextChange(...a: Parameters<ProductionRaftNode['nextChange']>) {
    return this.rpc('nextChange', () => super.nextChange(...a));
  }

  override propose(...a: Parameters<ProductionRaftNode['propose']>) {
    return this.rpc('propose', () => super.propose(...a));
  }

  override readBarrier(...a: Parameters<ProductionRaftNode['readBarrier']>) {
    return this.rpc('readBarrier', () => super.readBarrier(...a));
  }

  override get(...a: Parameters<ProductionRaftNode['get']>) {
    return this.rpc('get', () => super.get(...a));
  }

  override range(...a: Parameters<ProductionRaftNode['range']>) {
    return this.rpc('range', () => super.range(...a));
  }

  override leaseKeepAlive(...a: Parameters<ProductionRaftNode['leaseKeepAlive']>) {
    return this.rpc('leaseKeepAlive', () => super.leaseKeepAlive(...a));
  }

  override leaseStatus(...a: Parameters<ProductionRaftNode['leaseStatus']>) {
    return this.rpc('leaseStatus', () => super.leaseStatus(...a));
  }

  override leaseList(...a: Parameters<ProductionRaftNode['leaseList']>) {
    return this.rpc('leaseList', () => super.leaseList(...a));
  }

  override changeMembership(...a: Parameters<ProductionRaftNode['changeMembership']>) {
    return this.rpc('changeMembership', () => super.changeMembership(...a));
  }

  override transferLeadership(...a: Parameters<ProductionRaftNode['transferLeadership']>) {
    return this.rpc('transferLeadership', () => super.transferLeadership(...a));
  }

  override bootstrap(...a: Parameters<ProductionRaftNode['bootstrap']>) {
    return this.rpc('bootstrap', () => super.bootstrap(...a));
  }

  override status() {
    return this.rpc('status', () => super.status());
  }

  /** Not counted, and does not start the node: observing must not wake it. */
  benchStats(since?: number): BenchStats {
    const k = this.k;
    settleRows(k);
    const out: BenchStats = {
      ...k.c,
      rpcsByMethod: { ...k.c.rpcsByMethod },
      startedAt: this.startedAt,
      counting: this.counting,
      databaseSize: this.ctx.storage.sql.databaseSize,
      webSockets: this.ctx.getWebSockets().length,
    };
    if (since !== undefined) {
      const times: number[] = [];
      for (let i = Math.max(0, k.next - TIMES); i < k.next; i++) {
        const t = k.times[i % TIMES] ?? 0;
        if (t >= since) times.push(t);
      }
      out.times = times;
    }
    return out;
  }

  /** The rows of each of this object's tables, and its database's size (an RPC: it wakes the object). */
  benchRows(): { tables: Record<string, number>; databaseSize: number } {
    const sql = this.ctx.storage.sql;
    const tables: Record<string, number> = {};
    const names = sql
      .exec(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
      )
      .toArray();
    for (const row of names) {
      const name = String(row.name);
      tables[name] = Number(sql.exec(`SELECT count(*) AS n FROM "${name.replaceAll('"', '""')}"`).one().n);
    }
    return { tables, databaseSize: sql.databaseSize };
  }

  /** A crash: the in-memory object is dropped, the next request restarts it from SQLite. */
  benchAbort(): void {
    this.ctx.abort('bench: crash-restart');
  }
}

type Env = ApiEnv & NodeEnv & { readonly BASELINE: DurableObjectNamespace };

interface BenchNodeStub {
  status(): Promise<unknown>;
  benchRows(): Promise<{ tables: Record<string, number>; databaseSize: number }>;
  benchStats(since?: number): Promise<BenchStats>;
  benchAbort(): Promise<void>;
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

const app = createApp();

/** Every object's counters summed (groups: thousands of objects), read without waking any. */
function totals(): Record<string, number> {
  const t = { objects: counters.size, fetches: 0, rpcs: 0, alarms: 0, wsMessages: 0, wsCloses: 0 };
  for (const { c } of counters.values()) {
    t.fetches += c.fetches;
    t.rpcs += c.rpcs;
    t.alarms += c.alarms;
    t.wsMessages += c.wsMessages;
    t.wsCloses += c.wsCloses;
  }
  return t;
}

async function control(req: Request, env: Env, url: URL): Promise<Response> {
  if (url.pathname === '/bench/totals') return Response.json(totals());
  if (url.pathname === '/bench/known-groups')
    return Response.json({ count: knownGroupCount(), limit: KNOWN_GROUPS_MAX });
  if (url.pathname === '/bench/object/rows') {
    const name = url.searchParams.get('name') ?? '';
    const stub = env.RAFT_NODE.get(env.RAFT_NODE.idFromName(name)) as unknown as BenchNodeStub;
    return Response.json(await stub.benchRows());
  }
  const m = /^\/bench\/node\/([A-Za-z0-9_-]{1,64})\/(status|stats|faults|abort)$/.exec(url.pathname);
  if (!m) return Response.json({ error: { code: 'not_found', message: url.pathname } }, { status: 404 });
  const [, id = '', op] = m;
  const stub = env.RAFT_NODE.get(env.RAFT_NODE.idFromName(id)) as unknown as BenchNodeStub;
  try {
    if (op === 'status') return Response.json(await stub.status());
    if (op === 'stats') {
      const since = url.searchParams.get('since');
      return Response.json(await stub.benchStats(since === null ? undefined : Number(since)));
    }
    if (op === 'faults')
      return await stub.fetch('https://node/internal/faults', {
        method: req.method,
        body: req.method === 'PUT' ? await req.text() : undefined,
      });
    try {
      await stub.benchAbort();
    } catch {
      // the abort itself fails the call
    }
    return Response.json({ aborted: id });
  } catch (e) {
    return Response.json({ error: { code: 'unreachable', message: String(e) } }, { status: 503 });
  }
}

async function route(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname.startsWith('/baseline/')) {
    const target = new URL(url.pathname.slice('/baseline'.length) + url.search, url);
    const stub = env.BASELINE.get(env.BASELINE.idFromName('baseline'));
    return stub.fetch(new Request(target, req));
  }
  if (url.pathname.startsWith('/bench/')) return control(req, env, url);
  return app.fetch(req, env, ctx);
}

/**
 * A request of the load generator (it sends `x-bench-timed`) is answered with
 * how long this handler took, in whole ms (`x-bench-served`): the Worker and
 * the objects it called, without the time before the handler started or
 * after it returned. On one saturated thread some requests wait hundreds of
 * ms in workerd before their handler starts while the rest pass, and then
 * the clients' p99 says more about that wait than about the store. Both the
 * cluster's answers and the baseline's are copied to set the header, so both
 * pay the same few microseconds for it.
 */
export default {
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    if (!req.headers.has('x-bench-timed')) return route(req, env, ctx);
    const start = Date.now();
    const res = await route(req, env, ctx);
    const timed = new Response(res.body, res);
    timed.headers.set('x-bench-served', String(Date.now() - start));
    return timed;
  },
} satisfies ExportedHandler<Env>;
