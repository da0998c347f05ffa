/**
 * The Worker entry for the Jepsen-style runner (wrangler.jepsen.toml; never
 * deployed). It serves the public API unchanged and adds test-only routes
 * under /__jepsen/ that production never has:
 *
 *   GET  /__jepsen/nodes                 the configured members, and the deployment prefix of object names
 *   PUT  /__jepsen/faults/:node          set a node's fault rules (its /internal/faults)
 *   GET  /__jepsen/status/:node          a node's Raft status (role, term, commit, applied, ...)
 *   GET  /__jepsen/dump/:node            a node's whole key space, read locally (serializable), and its hash
 *   POST /__jepsen/crash/:node           crash one node: ctx.abort() (it restarts on its next event;
 *                                        with ?down_ms=N it refuses everything for N ms first)
 *   POST /__jepsen/compact/:node         compact one node's Raft log up to its applied index now, as it
 *                                        does by itself past COMPACT_AFTER_ENTRIES (a follower behind
 *                                        that index then needs a snapshot)
 *
 * :node is any node name, configured or not: nodes added during a run (node-5,
 * node-6, ...) are not in CLUSTER_NODES. It is the node's full object name,
 * URL-encoded as one path segment: `node-1` for the default group,
 * `g%2Facme%2F7%3Anode-1` for member node-1 of group acme in incarnation 7
 * (src/api/groups/names.ts), `sys%3Anode-1` for the directory of groups.
 * Nothing here bootstraps a group's object: one never bootstrapped refuses
 * its status, dump and compaction (503). The crash and compaction hooks live in
 * a subclass of RaftNode exported under the same class name, so the Durable
 * Object binding and migration match wrangler.toml.
 */
import { createApp } from '../../src/api/app.ts';
import type { RangeReadResult } from '../../src/kv/index.ts';
import type { ReadAnswer } from '../../src/node/raft-node.ts';
import { RaftNode as BaseRaftNode } from '../../src/node/raft-node.ts';
import { parseMembers } from '../../src/node/settings.ts';

const CRASH_PATH = '/__jepsen/crash';
/**
 * Put before every object name by this Worker's API (ApiConfig.clusterPrefix):
 * none, as in a plain deployment. The runner builds group objects' names from it.
 */
const DEPLOYMENT_PREFIX = '';
/** A member id, after a group's prefix (`g/<group>/<incarnation>:`) or the directory's (`sys:`), if any. */
const OBJECT_NAME = /^(?:g\/[a-z0-9-]{1,63}\/[0-9]{1,15}:|sys:)?[A-Za-z0-9_-]{1,64}$/;

/** The object name a control route names (its URL-encoded segment), or undefined if it is not a node's. */
function objectName(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  if (!name.startsWith(DEPLOYMENT_PREFIX)) return undefined;
  return OBJECT_NAME.test(name.slice(DEPLOYMENT_PREFIX.length)) ? name : undefined;
}

/** What a forced compaction did: the log's first index before and after, and the applied index it compacted to. */
export interface CompactResult {
  readonly firstIndexBefore: number;
  readonly firstIndex: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly role: string;
}

export class RaftNode extends BaseRaftNode {
  override async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === CRASH_PATH && req.method === 'POST') {
      // With down_ms, it stays down that long: it refuses its peers and status calls (kept in SQLite,
      // which outlives the crash), as a member that does not answer.
      const downMs = Number(url.searchParams.get('down_ms') ?? 0);
      if (Number.isSafeInteger(downMs) && downMs > 0) {
        this.ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS jepsen_down (until INTEGER NOT NULL)');
        this.ctx.storage.sql.exec('DELETE FROM jepsen_down');
        this.ctx.storage.sql.exec('INSERT INTO jepsen_down (until) VALUES (?)', Date.now() + downMs);
        // Committed before the abort, which would discard writes still in flight.
        await this.ctx.storage.sync();
      }
      // Drops the in-memory object (core, fault rules, timers) as if it crashed; SQLite stays.
      this.ctx.abort('jepsen: crash');
      return Response.json({ crashed: true });
    }
    this.refuseWhileDown();
    return super.fetch(req);
  }

  /**
   * Compacts the log up to the applied index now, keeping nothing behind it
   * (NodeRuntime.compactLog): what the driver does by itself once
   * COMPACT_AFTER_ENTRIES applied entries sit in the log. Synchronous,
   * between events, so no Ready is half done.
   */
  jepsenCompact(): CompactResult {
    this.refuseWhileDown();
    const rt = this.node();
    const firstIndexBefore = rt.driver.status().firstIndex;
    rt.compactLog();
    const st = rt.driver.status();
    return { firstIndexBefore, firstIndex: st.firstIndex, applied: st.applied, lastIndex: st.lastIndex, role: st.role };
  }

  override status(): ReturnType<BaseRaftNode['status']> {
    this.refuseWhileDown();
    return super.status();
  }

  private refuseWhileDown(): void {
    const sql = this.ctx.storage.sql;
    if (sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'jepsen_down'").toArray().length === 0) return;
    const row = sql.exec<{ until: number }>('SELECT until FROM jepsen_down').toArray()[0];
    if (row && Date.now() < row.until) throw new Error('jepsen: this node is down');
  }
}

interface JepsenEnv {
  readonly RAFT_NODE: DurableObjectNamespace;
  readonly CLUSTER_NODES?: string;
}

const app = createApp({ clusterPrefix: DEPLOYMENT_PREFIX });

function stubOf(env: JepsenEnv, name: string): DurableObjectStub<RaftNode> {
  const ns = env.RAFT_NODE as unknown as DurableObjectNamespace<RaftNode>;
  return ns.get(ns.idFromName(name));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: number | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function jepsen(req: Request, env: JepsenEnv): Promise<Response> {
  const url = new URL(req.url);
  const parts = url.pathname.split('/').filter((p) => p !== '');
  const [, what, segment] = parts;
  const members = parseMembers(env.CLUSTER_NODES ?? 'node-0,node-1,node-2').map((m) => m.id);
  if (what === 'nodes' && req.method === 'GET') return Response.json({ nodes: members, prefix: DEPLOYMENT_PREFIX });
  const node = objectName(segment);
  if (node === undefined || parts.length !== 3)
    return Response.json({ error: { code: 'not_found', message: 'unknown jepsen route or node' } }, { status: 404 });
  const stub = stubOf(env, node);
  try {
    if (what === 'faults' && req.method === 'PUT') {
      return await withTimeout(
        stub.fetch('https://node/internal/faults', {
          method: 'PUT',
          headers: { 'x-raft-node': node, 'content-type': 'application/json' },
          body: await req.text(),
        }),
        3000,
      );
    }
    if (what === 'status' && req.method === 'GET') {
      return Response.json(await withTimeout(stub.status(), 3000));
    }
    if (what === 'dump' && req.method === 'GET') {
      const r = await withTimeout(
        stub.range({ start: '\u0001' }, 'serializable', 3000) as unknown as Promise<ReadAnswer<RangeReadResult>>,
        5000,
      );
      if (r.status !== 'ok') return Response.json({ error: { code: r.status, message: 'no read' } }, { status: 503 });
      const kvs = r.value.kvs.map((kv) => ({
        key: kv.key,
        value: new TextDecoder().decode(kv.value),
        mod: kv.modRevision,
        create: kv.createRevision,
        version: kv.version,
      }));
      return Response.json({
        revision: r.revision,
        more: r.value.more,
        count: kvs.length,
        hash: await sha256(JSON.stringify([r.revision, kvs])),
        kvs,
      });
    }
    if (what === 'compact' && req.method === 'POST') {
      return Response.json(await withTimeout(stub.jepsenCompact(), 3000));
    }
    if (what === 'crash' && req.method === 'POST') {
      try {
        const down = new URL(req.url).searchParams.get('down_ms');
        const target = `https://node${CRASH_PATH}${down ? `?down_ms=${encodeURIComponent(down)}` : ''}`;
        const res = await withTimeout(stub.fetch(target, { method: 'POST' }), 3000);
        return Response.json({ crashed: true, status: res.status });
      } catch (e) {
        // abort() fails the request that triggered it: that is the expected outcome.
        return Response.json({ crashed: true, error: String(e) });
      }
    }
  } catch (e) {
    return Response.json({ error: { code: 'unavailable', message: String(e) } }, { status: 503 });
  }
  return Response.json({ error: { code: 'not_found', message: 'unknown jepsen route' } }, { status: 404 });
}

export default {
  fetch(req: Request, env: JepsenEnv, ctx: ExecutionContext): Response | Promise<Response> {
    if (new URL(req.url).pathname.startsWith('/__jepsen/')) return jepsen(req, env);
    return app.fetch(req, env, ctx);
  },
} satisfies ExportedHandler<JepsenEnv>;
