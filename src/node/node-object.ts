import { DurableObject } from 'cloudflare:workers';
import type { ProposeOutcome, ReadOutcome, StateMachine } from '../driver/index.ts';
import type { ConfChange, NodeId, Rng } from '../raft/index.ts';
import { migrate, type SnapshotTables, type Sql } from '../storage/index.ts';
import { EnvelopeError, FaultLayer, RAFT_PATH, SNAPSHOT_PATH } from '../transport/index.ts';
import { durableObjectSql } from './do-sql.ts';
import { type MetricFamily, NodeMetrics } from './metrics.ts';
import { type Host, NodeRuntime, type Timed, type Upkeep } from './runtime.ts';
import { type NodeSettings, readSettings, type SettingsEnv } from './settings.ts';

export interface NodeEnv extends SettingsEnv {
  readonly RAFT_NODE: DurableObjectNamespace;
}

/**
 * Whether `name` is a node of a group other than the default one: its
 * cluster part (before the last `:`) is `g/<group>/<incarnation>:`, after
 * the deployment's own prefix if any (src/api/groups/names.ts). Such a node
 * exists only once the Worker has bootstrapped it: an object of that name
 * with nothing stored refuses to start (and writes nothing), so a name
 * nobody created, or a deleted group's node, never comes to life by being
 * addressed.
 */
export function isGroupObject(name: string): boolean {
  return /(?:^|:)g\/[^:]*:[^:]*$/.test(name);
}

/** Thrown (and carried over RPC by its message) when a group's node was never bootstrapped or was deleted. */
export const NO_GROUP_NODE = 'durable-raft: no such group node';

/** Where a peer's internal routes live; the public Worker never routes here. */
export const STATUS_PATH = '/internal/status';
export const FAULTS_PATH = '/internal/faults';

/** A node's metrics as its RPC returns them: plain data, with what the Worker needs to find every member. */
export interface MetricsSnapshot {
  readonly id: NodeId;
  readonly role: string;
  readonly term: number;
  /** The membership this node knows (the leader's is the one to trust). */
  readonly conf: { readonly voters: readonly NodeId[]; readonly learners: readonly NodeId[] };
  readonly families: readonly MetricFamily[];
}

/** Randomness for election timeouts: the platform's CSPRNG, behind the core's Rng interface. */
const cryptoRng: Rng = {
  int(n: number): number {
    const buf = new Uint32Array(1);
    crypto.getRandomValues(buf);
    return (buf[0] ?? 0) % n;
  },
};

/**
 * The Durable Object base of a Raft node: it owns nothing but the runtime
 * and translates platform events (fetch, RPC, alarm) into runtime calls.
 * Subclasses choose the state machine.
 */
export abstract class NodeObject<R> extends DurableObject<NodeEnv> {
  private runtime: NodeRuntime<R> | undefined;
  protected readonly settings: NodeSettings;
  private readonly faults: FaultLayer | undefined;
  /** Counters since this object started (they reset with it; Prometheus reads that as a reset). */
  protected readonly meters = new NodeMetrics();

  constructor(ctx: DurableObjectState, env: NodeEnv) {
    super(ctx, env);
    this.settings = readSettings(env);
    this.faults = this.settings.faultInjection ? new FaultLayer(Math.random) : undefined;
  }

  /**
   * The state machine over this object's SQLite storage (called once per
   * instance, with the runtime's Sql), and its snapshot tables if its
   * snapshots are streamed from SQLite.
   */
  protected abstract makeStateMachine(sql: Sql): { sm: StateMachine<R>; tables?: SnapshotTables };

  /** Work of the subclass on its own schedule, run after each event of the new runtime `rt` (see Upkeep). */
  protected makeUpkeep(_rt: NodeRuntime<R>): Upkeep | undefined {
    return undefined;
  }

  /** The node's name (the name it was addressed by) and initial members, remembered across restarts. */
  private identity(hint?: string | null): { name: NodeId; initialMembers: NodeId[] } {
    const claimed = this.ctx.id.name ?? hint;
    if (claimed && isGroupObject(claimed) && !this.bootstrapped()) throw new Error(`${NO_GROUP_NODE}: ${claimed}`);
    const sql = durableObjectSql(this.ctx.storage);
    migrate(sql);
    const row = sql.exec('SELECT name, initial_members FROM node_identity WHERE id = 0')[0];
    const configured = this.settings.members.map((m) => m.id);
    // The initial voters are fixed at the node's first start, as etcd's --initial-cluster: a node whose
    // log holds no configuration change would otherwise take a later CLUSTER_NODES as its voters, without
    // any entry agreeing to it. (A node that started before this rule kept none: it keeps today's.)
    if (row && typeof row.name === 'string') {
      if (typeof row.initial_members === 'string' && row.initial_members !== '')
        return { name: row.name, initialMembers: JSON.parse(row.initial_members) as NodeId[] };
      sql.exec('UPDATE node_identity SET initial_members = ? WHERE id = 0', JSON.stringify(configured));
      return { name: row.name, initialMembers: configured };
    }
    const name = this.ctx.id.name ?? hint;
    if (!name) throw new Error('node name unknown: address nodes by name');
    sql.exec(
      'INSERT INTO node_identity (id, name, initial_members) VALUES (0, ?, ?)',
      name,
      JSON.stringify(configured),
    );
    return { name, initialMembers: configured };
  }

  /**
   * Bootstrap a fresh node of a new cluster with its initial voters (like
   * etcd's --initial-cluster); by default a node takes CLUSTER_NODES. Refused
   * once the node has started: membership then changes only through the log.
   */
  bootstrap(name: string, members: string[]): { ok: boolean; error?: string } {
    if (this.runtime) return { ok: false, error: 'node already started' };
    if (!members.every((m) => /^[A-Za-z0-9_-]{1,64}$/.test(m)) || members.length === 0)
      return { ok: false, error: 'bad member names' };
    const sql = durableObjectSql(this.ctx.storage);
    migrate(sql);
    if (sql.exec('SELECT 1 FROM node_identity')[0]) return { ok: false, error: 'node already bootstrapped' };
    sql.exec('INSERT INTO node_identity (id, name, initial_members) VALUES (0, ?, ?)', name, JSON.stringify(members));
    return { ok: true };
  }

  /** Whether this object holds a node identity, read without writing anything (no schema is created). */
  private bootstrapped(): boolean {
    const sql = this.ctx.storage.sql;
    const table = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'node_identity'").toArray();
    return table.length > 0 && sql.exec('SELECT 1 FROM node_identity').toArray().length > 0;
  }

  /**
   * Deletes this node for good (its group was deleted): its sockets closed,
   * its alarm and every stored row gone. The object then answers as one
   * never bootstrapped (node() refuses to start it again). Just after this
   * answer, the object is reset, so nothing it held in memory lives on:
   * open Server-Sent Events watches end, the old runtime's timers go.
   */
  async destroy(): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.close(1001, 'the group was deleted');
      } catch {
        // already closed
      }
    }
    this.runtime?.stopTimers();
    this.runtime = undefined;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    setTimeout(() => this.ctx.abort('the group was deleted'), 0);
  }

  protected node(hint?: string | null): NodeRuntime<R> {
    if (this.runtime) return this.runtime;
    // "<cluster>:<member>" hosts several clusters in one namespace (tests use
    // a fresh cluster each); the Raft id is the member part.
    const { name: fullName, initialMembers } = this.identity(hint);
    const cut = fullName.lastIndexOf(':') + 1;
    const cluster = fullName.slice(0, cut);
    const id = fullName.slice(cut);
    const ns = this.env.RAFT_NODE;
    const hints = new Map(this.settings.members.map((m) => [m.id, m.locationHint]));
    const sql = durableObjectSql(this.ctx.storage);
    const host: Host = {
      sql,
      now: () => Date.now(),
      setAlarm: (at) => {
        if (at === undefined) void this.ctx.storage.deleteAlarm();
        else void this.ctx.storage.setAlarm(at);
      },
      peer: (to) => {
        const hint = hints.get(to);
        const name = cluster + to;
        const stub = ns.get(ns.idFromName(name), hint ? { locationHint: hint } : undefined);
        // The name travels along in case the runtime does not expose ctx.id.name.
        return {
          fetch: (url: string, init: RequestInit) =>
            stub.fetch(url, { ...init, headers: { ...init.headers, 'x-raft-node': name } }),
        };
      },
      rng: cryptoRng,
      faults: this.faults,
      metrics: this.meters,
      reset: (reason) => {
        console.error(`raft node ${id}: resetting after`, reason);
        this.runtime = undefined;
        this.ctx.abort(`reset: ${String(reason)}`);
      },
    };
    const { sm, tables } = this.makeStateMachine(sql);
    const rt = new NodeRuntime<R>(id, host, this.settings, sm, initialMembers, tables);
    rt.upkeep = this.makeUpkeep(rt);
    this.runtime = rt;
    return rt;
  }

  override async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const hint = req.headers.get('x-raft-node');
    if ((url.pathname === RAFT_PATH || url.pathname === SNAPSHOT_PATH) && req.method === 'POST') {
      const body = new Uint8Array(await req.arrayBuffer());
      let reply: Uint8Array | undefined;
      try {
        if (url.pathname === RAFT_PATH) reply = this.node(hint).receive(body);
        else this.node(hint).receiveStream(body);
      } catch (e) {
        if (e instanceof EnvelopeError)
          return Response.json({ error: { code: 'bad_message', message: e.message } }, { status: 400 });
        throw e;
      }
      // Our messages for the sender ride back in the response (FetchTransport).
      if (reply) return new Response(reply, { status: 200, headers: { 'content-type': 'application/msgpack' } });
      return new Response(null, { status: 204 });
    }
    if (url.pathname === STATUS_PATH && req.method === 'GET') {
      return Response.json(this.node(hint).status());
    }
    if (url.pathname === FAULTS_PATH && this.faults) {
      if (req.method === 'GET') return Response.json(this.faults.get());
      if (req.method === 'PUT') {
        try {
          this.faults.set(FaultLayer.parse(await req.json()));
        } catch (e) {
          return Response.json({ error: { code: 'bad_request', message: (e as Error).message } }, { status: 400 });
        }
        return Response.json(this.faults.get());
      }
    }
    const more = await this.fetchMore(req, url.pathname, hint);
    if (more) return more;
    return Response.json(
      { error: { code: 'not_found', message: `no internal route ${req.method} ${url.pathname}` } },
      { status: 404 },
    );
  }

  /** Internal routes of a subclass (reached only through a stub); undefined: none here. */
  protected async fetchMore(_req: Request, _path: string, _hint: string | null): Promise<Response | undefined> {
    return undefined;
  }

  override async alarm(): Promise<void> {
    this.node().alarm();
  }

  // ---- internal operations (Workers RPC), for the public API and tests ----

  /** Propose a state machine command, waiting at most `timeoutMs`. */
  propose(command: Uint8Array, timeoutMs: number): Promise<Timed<ProposeOutcome<R>> & { leader?: NodeId }> {
    return this.timed('propose', () => this.withLeaderHint(this.node().propose(command, timeoutMs)));
  }

  /** Linearizable read barrier (ReadIndex); once ready, the caller may read this node's state. */
  readBarrier(timeoutMs: number): Promise<Timed<ReadOutcome> & { leader?: NodeId }> {
    return this.timed('read_barrier', () => this.barrier(timeoutMs));
  }

  /** The read barrier of readBarrier, for the subclass's reads (which time themselves). */
  protected barrier(timeoutMs: number): Promise<Timed<ReadOutcome> & { leader?: NodeId }> {
    return this.withLeaderHint(this.node().readBarrier(timeoutMs));
  }

  changeMembership(cc: ConfChange, timeoutMs: number): Promise<Timed<ProposeOutcome<R | undefined>>> {
    return this.timed('change_membership', () => this.node().proposeConfChange(cc, timeoutMs));
  }

  transferLeadership(to: NodeId): void {
    this.node().transferLeader(to);
  }

  status(): ReturnType<NodeRuntime<R>['status']> & { leaderHint: NodeId } {
    const rt = this.node();
    return { ...rt.status(), leaderHint: rt.leaderHint() };
  }

  /**
   * This node's metrics (see src/node/metrics.ts). Like `status`, it observes
   * without acting: it neither ticks nor wakes a quiet node, and sets no alarm.
   */
  metrics(): MetricsSnapshot {
    const rt = this.node();
    const m = this.meters;
    rt.collectMetrics(m);
    m.dbSize.set({}, this.ctx.storage.sql.databaseSize);
    this.collectMetrics(m);
    const st = rt.driver.status();
    return {
      id: rt.id,
      role: st.role,
      term: st.term,
      conf: { voters: [...st.conf.voters], learners: [...st.conf.learners] },
      families: m.snapshot(),
    };
  }

  /** Gauges of the subclass, set when a scrape asks. */
  protected collectMetrics(_m: NodeMetrics): void {}

  /**
   * Request latency, measured here rather than in the Worker: the Worker's
   * isolates are many and short-lived, so a histogram kept in one would show
   * only the requests that isolate happened to serve, and vanish with it.
   * Each member keeps one histogram per operation for as long as it runs,
   * and a scrape gathers every member's. It is the time the node took (the
   * Worker's hops and retries come on top); a `notLeader` redirect is not a
   * served request and is not recorded.
   */
  protected async timed<T extends { readonly status: string }>(op: string, serve: () => Promise<T>): Promise<T> {
    const start = Date.now();
    const out = await serve();
    if (out.status !== 'notLeader') this.meters.requestDone(op, start, Date.now());
    return out;
  }

  private async withLeaderHint<T extends { status: string }>(p: Promise<T>): Promise<T & { leader?: NodeId }> {
    const out = await p;
    if (out.status === 'notLeader') return { ...out, leader: this.node().leaderHint() };
    return out;
  }
}
