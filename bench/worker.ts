/**
 * The bench Worker (wrangler.bench.toml, `npm run bench`): the public API
 * (anonymous), an unreplicated baseline under /baseline/..., and bench-only
 * control routes under /bench/... that reach nodes through their stubs
 * (status, counters, the fault layer, a crash-restart). Never deploy this.
 */
import { createApp } from '../src/api/app.ts';
import type { ApiEnv } from '../src/api/config.ts';
import type { NodeEnv } from '../src/node/node-object.ts';
import { RaftNode as ProductionRaftNode } from '../src/node/raft-node.ts';
import type { WatchSpec } from '../src/node/watch-streams.ts';
import { BaselineStore } from './baseline.ts';

export { BaselineStore };

/** Billed-operation counters of one node object since it (re)started. */
export interface BenchStats {
  startedAt: number;
  fetches: number;
  rpcs: number;
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
}

/**
 * The production RaftNode with counters: incoming requests (fetch = peer
 * Raft messages and WebSocket upgrades, RPC = API calls, alarms, WebSocket
 * messages and closes) and SQLite rows written/read as reported by each
 * statement's cursor. Counting stays in memory, so an object that
 * hibernates (evicted with its WebSockets open) counts from zero again.
 */
export class RaftNode extends ProductionRaftNode {
  private readonly counters: BenchStats = {
    startedAt: Date.now(),
    fetches: 0,
    rpcs: 0,
    alarms: 0,
    wsMessages: 0,
    wsCloses: 0,
    webSockets: 0,
    rowsWritten: 0,
    rowsRead: 0,
    sqlStatements: 0,
    databaseSize: 0,
    counting: false,
  };

  constructor(ctx: DurableObjectState, env: NodeEnv) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    const exec = sql.exec.bind(sql);
    const c = this.counters;
    try {
      const patched = ((query: string, ...params: SqlStorageValue[]) => {
        const cursor = exec(query, ...params);
        const toArray = cursor.toArray.bind(cursor);
        c.sqlStatements++;
        (cursor as { toArray: () => unknown[] }).toArray = () => {
          const rows = toArray();
          c.rowsWritten += cursor.rowsWritten;
          c.rowsRead += cursor.rowsRead;
          return rows;
        };
        return cursor;
      }) as typeof sql.exec;
      Object.defineProperty(sql, 'exec', { value: patched, configurable: true, writable: true });
      c.counting = ctx.storage.sql.exec === patched;
    } catch {
      c.counting = false;
    }
  }

  override async fetch(req: Request): Promise<Response> {
    this.counters.fetches++;
    return super.fetch(req);
  }

  override async alarm(): Promise<void> {
    this.counters.alarms++;
    return super.alarm();
  }

  // The hibernation handlers, with whatever parameters the production ones take.
  override async webSocketMessage(...args: Parameters<ProductionRaftNode['webSocketMessage']>): Promise<void> {
    this.counters.wsMessages++;
    return super.webSocketMessage(...args);
  }

  override async webSocketClose(...args: Parameters<ProductionRaftNode['webSocketClose']>): Promise<void> {
    this.counters.wsCloses++;
    return super.webSocketClose(...args);
  }

  override async webSocketError(...args: Parameters<ProductionRaftNode['webSocketError']>): Promise<void> {
    this.counters.wsCloses++;
    return super.webSocketError(...args);
  }

  override watchEvents(spec: WatchSpec) {
    this.counters.rpcs++;
    return super.watchEvents(spec);
  }

  override propose(command: Uint8Array, timeoutMs: number) {
    this.counters.rpcs++;
    return super.propose(command, timeoutMs);
  }

  override readBarrier(timeoutMs: number) {
    this.counters.rpcs++;
    return super.readBarrier(timeoutMs);
  }

  override get(key: string, consistency: 'linearizable' | 'serializable', timeoutMs: number) {
    this.counters.rpcs++;
    return super.get(key, consistency, timeoutMs);
  }

  override status() {
    this.counters.rpcs++;
    return super.status();
  }

  /** Not counted, and does not start the node: observing must not wake it. */
  benchStats(): BenchStats {
    return {
      ...this.counters,
      databaseSize: this.ctx.storage.sql.databaseSize,
      webSockets: this.ctx.getWebSockets().length,
    };
  }

  /** A crash: the in-memory object is dropped, the next request restarts it from SQLite. */
  benchAbort(): void {
    this.ctx.abort('bench: crash-restart');
  }
}

type Env = ApiEnv & NodeEnv & { readonly BASELINE: DurableObjectNamespace };

interface BenchNodeStub {
  status(): Promise<unknown>;
  benchStats(): Promise<BenchStats>;
  benchAbort(): Promise<void>;
  fetch(url: string, init?: RequestInit): Promise<Response>;
}

const app = createApp();

async function control(req: Request, env: Env, url: URL): Promise<Response> {
  const m = /^\/bench\/node\/([A-Za-z0-9_-]{1,64})\/(status|stats|faults|abort)$/.exec(url.pathname);
  if (!m) return Response.json({ error: { code: 'not_found', message: url.pathname } }, { status: 404 });
  const [, id = '', op] = m;
  const stub = env.RAFT_NODE.get(env.RAFT_NODE.idFromName(id)) as unknown as BenchNodeStub;
  try {
    if (op === 'status') return Response.json(await stub.status());
    if (op === 'stats') return Response.json(await stub.benchStats());
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

export default {
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname.startsWith('/baseline/')) {
      const target = new URL(url.pathname.slice('/baseline'.length) + url.search, url);
      const stub = env.BASELINE.get(env.BASELINE.idFromName('baseline'));
      return stub.fetch(new Request(target, req));
    }
    if (url.pathname.startsWith('/bench/')) return control(req, env, url);
    return app.fetch(req, env, ctx);
  },
} satisfies ExportedHandler<Env>;
