import type { Principal } from '../api/auth.ts';
import { memberId } from '../api/v3/ids.ts';
import type { StateMachine } from '../driver/index.ts';
import {
  encodeCommand,
  type KeyValue,
  type KvEvent,
  type KvResult,
  type KvStateMachine,
  type Lease,
  type RangeQuery,
  type RangeReadResult,
  type WatchFilter,
} from '../kv/index.ts';
import type { SnapshotTables, Sql } from '../storage/index.ts';
import { SqliteKvStateMachine } from '../storage/index.ts';
import { LeaseClockStore } from './lease-clock-store.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import { Lessor } from './lessor.ts';
import type { NodeMetrics } from './metrics.ts';
import { NodeObject } from './node-object.ts';
import type { NodeRuntime, Timed, Upkeep } from './runtime.ts';
import { electionTimeoutMs } from './settings.ts';
import { WatchHub } from './watch-hub.ts';
import { WatchSockets, watchProtocolOf } from './watch-sockets.ts';
import { openSseWatch, type WatchSpec } from './watch-streams.ts';

/** The internal route a WebSocket watch is upgraded on (the Worker forwards the upgrade here). */
export const WATCH_SOCKET_PATH = '/internal/watch';

/** The answer to a read: the value (or nothing) and the revision it was read at, or why there is none. */
export type ReadAnswer<T> =
  | {
      readonly status: 'ok';
      readonly value: T;
      readonly revision: number;
      readonly stale: boolean;
      /** The Raft term this replica is in (etcd's header raft_term). */
      readonly term: number;
    }
  | { readonly status: 'notLeader'; readonly leader: string }
  | { readonly status: 'timeout' }
  /** A read at a revision below the compaction point (etcd's ErrCompacted). */
  | { readonly status: 'compacted'; readonly compacted: number }
  /** A read at a revision past this replica's (etcd's ErrFutureRev). */
  | { readonly status: 'futureRevision'; readonly revision: number };

/** How long an automatic compaction may take to commit before the leader tries again. */
const COMPACT_TIMEOUT_MS = 10_000;
/** Events one catch-up step reads for the watchers behind, before other events get a turn. */
const CATCH_UP_EVENTS = 512;

/** How long the leader's own lease proposals (expiry, checkpoints) may take before it tries again. */
const LEASE_PROPOSE_TIMEOUT_MS = 5_000;
/** The most keys a lease's status lists. */
export const MAX_LEASE_KEYS = 10_000;
/** The most leases one leaseStatuses call answers for. */
export const MAX_LEASE_STATUSES = 1000;

/** A lease as the leader sees it: granted TTL and whole seconds left by its clock (etcd's LeaseTimeToLive). */
export interface LeaseStatus {
  readonly id: number;
  readonly grantedTtl: number;
  readonly ttl: number;
  /** With `keys`: the keys attached, in key order (at most MAX_LEASE_KEYS). */
  readonly keys?: readonly string[];
}

/** The answer of nextChange. */
export type ChangeAnswer =
  | { readonly status: 'change'; readonly revision: number; readonly events: readonly KvEvent[] }
  | { readonly status: 'timeout' }
  | { readonly status: 'compacted' };

/** A watch opened, or why not: its start is below the compaction point. */
export type WatchAnswer =
  | { readonly status: 'ok'; readonly stream: ReadableStream<Uint8Array>; readonly revision: number }
  | { readonly status: 'compacted'; readonly compacted: number; readonly revision: number };

/**
 * One replica of the key-value store: a Raft node whose state machine is
 * the KvStateMachine over this object's SQLite storage.
 */
export class RaftNode extends NodeObject<KvResult> {
  private kv: KvStateMachine | undefined;
  private hub: WatchHub | undefined;
  private sockets: WatchSockets | undefined;
  private compacting = false;
  private catchingUp = false;
  private lessor: Lessor | undefined;
  private keeper: LeaseKeeper | undefined;
  private sql: Sql | undefined;

  protected makeStateMachine(sql: Sql): { sm: StateMachine<KvResult>; tables: SnapshotTables } {
    const kv = new SqliteKvStateMachine(sql);
    const hub = new WatchHub(kv);
    this.kv = kv;
    this.hub = hub;
    this.sql = sql;
    // Right after each applied batch commits, from the same event: watchers get its events in apply order.
    kv.onEvents = (events) => {
      hub.onEvents(events);
      this.maybeCompact(kv);
    };
    // A snapshot skipped revisions no batch fed the watchers: they catch up from its history.
    kv.onRestored = () => {
      hub.resync();
      void this.catchUp();
    };
    kv.onLeases = (changes) => {
      for (const ch of changes) {
        if (ch.type === 'granted') this.meters.leasesGranted.inc();
        else if (ch.type === 'revoked') this.meters.leasesRevoked.inc();
      }
      this.keeper?.onLeases(changes);
    };
    // Before anything applies: sockets that outlived the object's memory get their watches back.
    this.sockets = new WatchSockets(
      hub,
      {
        revision: () => kv.revision(),
        compacted: () => kv.compacted(),
        term: () => this.node().driver.node.basicStatus().term,
      },
      () => void this.catchUp(),
    );
    this.sockets.restore(this.ctx.getWebSockets());
    return { sm: kv, tables: kv.snapshots };
  }

  /** The leader's lease clock, run after every event of the runtime (see LeaseKeeper). */
  protected override makeUpkeep(rt: NodeRuntime<KvResult>): Upkeep {
    const lessor = new Lessor({
      extendMs: electionTimeoutMs(this.settings),
      checkpointMs: this.settings.leaseCheckpointMs,
      retryMs: 1000,
    });
    const keeper = new LeaseKeeper(
      lessor,
      this.kv as KvStateMachine,
      {
        leading: () => rt.leading(),
        quiet: () => rt.isQuiet(),
        term: () => rt.driver.node.basicStatus().term,
        priorTerm: () => rt.priorTerm(),
        otherLeader: () => {
          const { leader } = rt.driver.node.basicStatus();
          return leader !== '' && leader !== rt.id;
        },
        propose: async (data) => {
          const out = await rt.propose(data, LEASE_PROPOSE_TIMEOUT_MS);
          if (out.status === 'applied') return 'applied';
          return out.status === 'notLeader' || out.status === 'refused' ? 'refused' : 'pending';
        },
      },
      new LeaseClockStore(this.sql as Sql),
      () => Date.now(),
    );
    this.lessor = lessor;
    this.keeper = keeper;
    if (keeper.sleptAsLeader()) queueMicrotask(() => rt.campaign());
    return {
      afterEvent: () => {
        keeper.upkeep();
        // Removed from the cluster: nothing new will reach this replica, so its watchers resume elsewhere.
        const hub = this.hub as WatchHub;
        if (hub.size > 0 && !this.isMember(rt.id)) hub.closeAll('this member was removed from the cluster');
      },
      wakeAt: (quiet) => keeper.wakeAt(quiet),
    };
  }

  /**
   * Renews lease `id` on the leader (etcd's LeaseKeepAlive): its TTL, or
   * undefined if there is no such lease. The read barrier first proves this
   * node still leads, so a deposed leader acknowledges no renewal its
   * successor does not honour. A renewal of a lease whose remaining TTL was
   * checkpointed clears that checkpoint through the log before it answers.
   */
  async leaseKeepAlive(id: number, timeoutMs: number): Promise<ReadAnswer<{ ttl: number } | undefined>> {
    return this.timed('lease_keepalive', () => this.keepAlive(id, timeoutMs));
  }

  private async keepAlive(id: number, timeoutMs: number): Promise<ReadAnswer<{ ttl: number } | undefined>> {
    return this.onLeader(timeoutMs, async (rt, lessor, kv) => {
      if (!kv.getLease(id)) return undefined;
      const renewed = lessor.renew(id, Date.now());
      if (!renewed) return undefined;
      // Too late: its revocation is under way. Answer once it applied: the lease is gone.
      if (renewed === 'expired')
        return (await within(timeoutMs, (this.keeper as LeaseKeeper).whenRevoked(id))) ? undefined : 'timeout';
      if (renewed.clearCheckpoint) {
        const cmd = encodeCommand({ cmd: { type: 'leaseCheckpoint', checkpoints: [{ id, remaining: 0 }] } });
        const out = await rt.propose(cmd, timeoutMs);
        if (out.status !== 'applied') return 'timeout';
      }
      this.meters.leasesRenewed.inc();
      return { ttl: renewed.ttl };
    });
  }

  /** A lease's granted TTL and seconds left by the leader's clock (etcd's LeaseTimeToLive); undefined if none. */
  async leaseStatus(id: number, withKeys: boolean, timeoutMs: number): Promise<ReadAnswer<LeaseStatus | undefined>> {
    return this.timed('lease_status', () =>
      this.onLeader(timeoutMs, (_rt, lessor, kv) => {
        const lease = kv.getLease(id);
        if (!lease) return undefined;
        const left = lessor.timeLeft(id, Date.now()) ?? 0;
        // Whole seconds, rounded down as etcd does: never more than there is.
        const status = { id, grantedTtl: lease.ttl, ttl: Math.floor(left / 1000) };
        return withKeys ? { ...status, keys: kv.leaseKeys(id, MAX_LEASE_KEYS) } : status;
      }),
    );
  }

  /**
   * Several leases' granted TTLs and seconds left by the leader's clock (the
   * ones that exist, in the order asked; at most MAX_LEASE_STATUSES): what a
   * dump says of the leases its keys name, one call per page of keys.
   */
  async leaseStatuses(ids: readonly number[], timeoutMs: number): Promise<ReadAnswer<LeaseStatus[]>> {
    return this.timed('lease_statuses', () =>
      this.onLeader(timeoutMs, (_rt, lessor, kv) => {
        const now = Date.now();
        const out: LeaseStatus[] = [];
        for (const id of ids.slice(0, MAX_LEASE_STATUSES)) {
          const lease = kv.getLease(id);
          if (lease) out.push({ id, grantedTtl: lease.ttl, ttl: Math.floor((lessor.timeLeft(id, now) ?? 0) / 1000) });
        }
        return out;
      }),
    );
  }

  /** Leases in id order after `after` (at most `limit`), linearizable. */
  async leaseList(after: number, limit: number, timeoutMs: number): Promise<ReadAnswer<Lease[]>> {
    return this.timed('lease_list', () =>
      this.read('linearizable', timeoutMs, undefined, (kv) => kv.leases(after, limit)),
    );
  }

  /** Runs `fn` on the leader once a read barrier proves it leads; elsewhere, `notLeader` with the leader to try. */
  private async onLeader<T>(
    timeoutMs: number,
    fn: (rt: NodeRuntime<KvResult>, lessor: Lessor, kv: KvStateMachine) => T | 'timeout' | Promise<T | 'timeout'>,
  ): Promise<ReadAnswer<T>> {
    const rt = this.node();
    const barrier: Timed<{ status: string }> = await rt.readBarrier(timeoutMs);
    if (barrier.status === 'notLeader') return { status: 'notLeader', leader: rt.leaderHint() };
    if (barrier.status !== 'ready') return { status: 'timeout' };
    const lessor = this.lessor as Lessor;
    if (!rt.leading() || !lessor.isPrimary()) return { status: 'notLeader', leader: rt.leaderHint() };
    const kv = this.kv as KvStateMachine;
    const value = await fn(rt, lessor, kv);
    if (value === 'timeout') return { status: 'timeout' };
    return { status: 'ok', value, revision: kv.revision(), stale: false, term: rt.driver.node.basicStatus().term };
  }

  /**
   * A WebSocket watch: the Worker forwards the upgrade with the caller's
   * principal and the protocol the socket speaks (/v1's, or etcd's gateway's
   * with the ids its headers carry), and the socket is accepted for
   * hibernation, so an idle watcher keeps no object in memory.
   */
  protected override async fetchMore(req: Request, path: string, hint: string | null): Promise<Response | undefined> {
    if (path !== WATCH_SOCKET_PATH || req.headers.get('upgrade')?.toLowerCase() !== 'websocket') return undefined;
    const principal = principalOf(req.headers.get('x-watch-principal'));
    if (!principal) return Response.json({ error: { code: 'bad_request', message: 'no principal' } }, { status: 400 });
    const protocol = watchProtocolOf(req.headers);
    if (!protocol) return Response.json({ error: { code: 'bad_request', message: 'no protocol' } }, { status: 400 });
    const id = this.node(hint).id;
    if (!this.isMember(id))
      return Response.json({ error: { code: 'not_a_member', message: `${id} serves no watch` } }, { status: 503 });
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    const etcd =
      protocol.kind === 'v3'
        ? { clusterId: protocol.clusterId, memberId: memberId(protocol.clusterPrefix, id) }
        : undefined;
    server.serializeAttachment(WatchSockets.attachment(principal, etcd));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.node();
    this.sockets?.onMessage(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets?.onClose(ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets?.onClose(ws);
  }

  /**
   * Opens a watch on this replica as a stream of Server-Sent Events. A start
   * below the compaction point is refused before any stream exists.
   */
  async watchEvents(spec: WatchSpec): Promise<WatchAnswer> {
    return this.timed('watch_open', () => this.openWatch(spec));
  }

  /**
   * Whether `id` is in the configuration this replica has applied (and no
   * member has told it it was removed: NodeRuntime.heedRemoval). A removed
   * member serves no watch: it hears of no later revision, so a watch there
   * would stall (the Worker tries another member when this one refuses).
   */
  private isMember(id: string): boolean {
    if (this.node().removedFromCluster()) return false;
    const conf = (this.kv as KvStateMachine).conf();
    return conf === undefined || conf.voters.includes(id) || conf.learners.includes(id);
  }

  private refuseUnlessMember(): void {
    const id = this.node().id;
    if (!this.isMember(id)) throw new Error(`${id} is no longer a member of the cluster: it serves no watch`);
  }

  private async openWatch(spec: WatchSpec): Promise<WatchAnswer> {
    this.refuseUnlessMember();
    const kv = this.kv as KvStateMachine;
    const hub = this.hub as WatchHub;
    const start = spec.startRevision;
    if (start !== undefined && start !== 0 && start < kv.compacted())
      return { status: 'compacted', compacted: kv.compacted(), revision: kv.revision() };
    const rt = this.node();
    const etcd = spec.etcd && {
      ctx: {
        clusterId: spec.etcd.clusterId,
        memberId: memberId(spec.etcd.clusterPrefix, rt.id),
        term: () => rt.driver.node.basicStatus().term,
        compacted: () => kv.compacted(),
      },
      revision: kv.revision(),
    };
    const stream = openSseWatch(hub, spec, () => void this.catchUp(), etcd);
    return { status: 'ok', stream, revision: kv.revision() };
  }

  /**
   * Waits for the first revision at or after `fromRevision` with an event
   * `filter` lets through (a one-shot watch, for the lock and election
   * recipes): its events, or `timeout`, or `compacted` if `fromRevision` is
   * below the compaction point.
   */
  async nextChange(filter: WatchFilter, fromRevision: number, timeoutMs: number): Promise<ChangeAnswer> {
    this.refuseUnlessMember();
    const hub = this.hub as WatchHub;
    return new Promise<ChangeAnswer>((resolve) => {
      let id: number | undefined;
      let done = false;
      const finish = (a: ChangeAnswer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (id !== undefined) hub.remove(id);
        resolve(a);
      };
      const timer = setTimeout(() => finish({ status: 'timeout' }), timeoutMs);
      id = hub.add(filter, fromRevision, {
        send: (m) => {
          if (m.kind === 'batch') finish({ status: 'change', revision: m.batch.revision, events: [...m.batch.events] });
          else if (m.kind === 'canceled')
            finish(m.compactRevision !== undefined ? { status: 'compacted' } : { status: 'timeout' });
          return true;
        },
      });
      if (done && id !== undefined) hub.remove(id);
      void this.catchUp();
    });
  }

  /** Feeds watchers that are behind from the history, a bounded step per turn, until all are synced. */
  private async catchUp(): Promise<void> {
    if (this.catchingUp) return;
    this.catchingUp = true;
    try {
      while ((this.hub as WatchHub).catchUp(CATCH_UP_EVENTS)) await new Promise((r) => setTimeout(r, 0));
    } finally {
      this.catchingUp = false;
    }
  }

  /**
   * A key's record, now or as of `revision`. `linearizable` reads go through
   * ReadIndex; `serializable` ones read this replica as it is.
   */
  async get(
    key: string,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision?: number,
  ): Promise<ReadAnswer<KeyValue | undefined>> {
    return this.timed('get', () =>
      this.read(consistency, timeoutMs, revision, (kv) =>
        revision === undefined ? kv.get(key) : kv.getAt(key, revision),
      ),
    );
  }

  async range(
    query: RangeQuery,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision?: number,
  ): Promise<ReadAnswer<RangeReadResult>> {
    return this.timed('range', () =>
      this.read(consistency, timeoutMs, revision, (kv) =>
        revision === undefined ? kv.range(query) : kv.rangeAt(query, revision),
      ),
    );
  }

  private async read<T>(
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision: number | undefined,
    fn: (kv: KvStateMachine) => T,
  ): Promise<ReadAnswer<T>> {
    const node = this.node();
    const kv = this.kv as KvStateMachine;
    if (consistency === 'linearizable') {
      const barrier: Timed<{ status: string; leader?: string }> = await this.barrier(timeoutMs);
      if (barrier.status === 'notLeader') return { status: 'notLeader', leader: barrier.leader ?? '' };
      if (barrier.status !== 'ready') return { status: 'timeout' };
    }
    // Synchronous from here: (linearizable) applied >= read index, and nothing else runs until we return.
    const why = revision === undefined ? undefined : kv.unreadable(revision);
    if (why === 'compacted') return { status: 'compacted', compacted: kv.compacted() };
    if (why === 'future_revision') return { status: 'futureRevision', revision: kv.revision() };
    const stale = consistency === 'serializable' && node.driver.node.basicStatus().role !== 'leader';
    const term = node.driver.node.basicStatus().term;
    return { status: 'ok', value: fn(kv), revision: kv.revision(), stale, term };
  }

  /**
   * Watchers, leases (the leader's clock holds them all: only it reports the
   * gauge) and the log's bytes. The log's size is summed over its rows, one
   * row read per stored batch: compaction keeps that bounded
   * (COMPACT_AFTER_ENTRIES), and only a scrape pays for it.
   */
  protected override collectMetrics(m: NodeMetrics): void {
    m.watchers.set({}, this.hub?.size ?? 0);
    const lessor = this.lessor;
    m.leasesActive.clear();
    if (lessor?.isPrimary()) m.leasesActive.set({}, lessor.size);
    const row = this.sql?.exec('SELECT COALESCE(SUM(length(data)), 0) AS bytes FROM raft_log')[0];
    m.logSize.set({}, Number(row?.bytes ?? 0));
  }

  /**
   * The leader keeps HISTORY_KEEP_REVISIONS revisions of history: once the
   * history has grown a tenth past that, it proposes a compaction through the
   * log, so every replica drops the same events. Called after each applied
   * batch; the proposal leaves once this event is done.
   */
  private maybeCompact(kv: KvStateMachine): void {
    const keep = this.settings.historyKeepRevisions;
    if (keep === 0 || this.compacting) return;
    const target = kv.revision() - keep;
    if (target - kv.compacted() < Math.max(1, Math.floor(keep / 10))) return;
    if (this.node().driver.node.basicStatus().role !== 'leader') return;
    this.compacting = true;
    queueMicrotask(() => {
      this.node()
        .propose(encodeCommand({ cmd: { type: 'compact', revision: target } }), COMPACT_TIMEOUT_MS)
        .catch((e: unknown) => console.warn('automatic compaction failed:', e))
        .finally(() => {
          this.compacting = false;
        });
    });
  }
}

/** Whether `p` settles within `ms`. */
async function within(ms: number, p: Promise<void>): Promise<boolean> {
  let timer: number | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** The principal the Worker forwarded (an internal header, but decoded strictly all the same). */
function principalOf(header: string | null): Principal | undefined {
  if (header === null) return undefined;
  try {
    const v = JSON.parse(header) as Record<string, unknown>;
    const roles = ['read', 'write', 'admin'];
    if (typeof v.id !== 'string' || typeof v.role !== 'string' || !roles.includes(v.role)) return undefined;
    const prefixes = v.prefixes;
    if (prefixes !== undefined && !(Array.isArray(prefixes) && prefixes.every((x) => typeof x === 'string')))
      return undefined;
    return { id: v.id, role: v.role as Principal['role'], ...(prefixes ? { prefixes: prefixes as string[] } : {}) };
  } catch {
    return undefined;
  }
}
