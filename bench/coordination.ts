/**
 * The coordination scenario of `npm run bench`, run by bench/run.ts against
 * the first cluster (3 nodes) after its idle measurement, before the watch
 * scenario:
 *
 * - locks: clients that each hold a lease of their own (granted once, TTL
 *   60 s) loop on ONE lock name: POST /v1/locks/{name} {"lease", "wait_ms"},
 *   then DELETE /v1/locks/{name}?key=K. Acquisitions per second, acquire
 *   latency (at 16 clients mostly the wait in the queue), and per acquisition
 *   the Durable Object invocations and log entries it cost.
 * - keepalives: leases granted once (TTL 3600 s), then clients loop on POST
 *   /v1/leases/{id}/keepalive over them: a read barrier on the leader and a
 *   renewal in memory, no log write.
 * - idle with leases: those leases left alive and nothing else happening;
 *   the invocations over an idle window once the cluster is quiet (the
 *   leader keeps one alarm, at its next lease expiry or checkpoint).
 * - idle with an expiry: one more lease, with a key attached and a
 *   (hibernating) WebSocket watcher on that key, whose TTL ends inside the
 *   window, after the cluster has gone quiet (and, in Miniflare, after idle
 *   objects have been evicted): when the key's deletion reaches the watcher,
 *   and when the invocations of the window happened.
 *
 * Invocations are counted by bench/worker.ts: peer fetches, RPCs from the
 * API Worker (each counted once), alarms, WebSocket events; the runner's own
 * status queries are left out.
 */
import type { LoadJob, LoadResult } from './load.ts';
import { openSocket, type PutFigures, type Watcher } from './watch.ts';
import type { BenchStats } from './worker.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);
const ratio = (a: number, b: number | undefined) => (b ? round(a / b, 3) : null);

/** What the coordination scenario needs of the runner's idle measurement (its IdleResult). */
export interface IdleFigures {
  quietAfterMs: number | null;
  windowMs: number;
  windowStartAt: number;
  invocations: number;
  invocationsPerIdleMinute: number;
  alarmsPending: Record<string, number | null>;
  evictedInWindow: string[];
  countersLost: string[];
  times?: Record<string, number[]>;
}

/** The part of a node's status the idle measurement decides on. */
export interface QuietStatus {
  quiet: boolean;
  alarmAt: number | null;
}

export interface CoordinationOptions<I extends IdleFigures> {
  url: string;
  ids: string[];
  lockClients: number[];
  keepaliveClients: number[];
  /** How many leases the keepalive clients renew (and stay alive for the idle window). */
  leases: number;
  warmupMs: number;
  durationMs: number;
  /** The idle window with leases alive (0: no idle measurements). */
  idleMs: number;
  /** How long a leader with nothing to do heartbeats before it goes quiet (quiesceAfterTicks x tickMs). */
  quiesceMs: number;
  /** The TTL (s) of the lease that expires inside the idle window (0: no such window). */
  expiryTtl: number;
  runLoad: (job: LoadJob) => Promise<LoadResult>;
  /** Every node's counters, in `ids` order. */
  stats: () => Promise<BenchStats[]>;
  /** The leader's commit index (undefined: no leader found). */
  leaderCommit: () => Promise<number | undefined>;
  /** The runner's idle measurement: waits until every node is `settled`, then counts invocations over the window. */
  measureIdle: (windowMs: number, settled: (s: QuietStatus, now: number) => boolean, withTimes: boolean) => Promise<I>;
  /** Figures of this run at `clients`, to compare with: the cluster's and the baseline's. */
  figures: (
    scenario: 'put' | 'get-linearizable',
    clients: number,
  ) => { cluster: PutFigures | null; baseline: PutFigures | null };
  /** Durable Object requests per committed put of this run (the cost measurement), if measured. */
  putCost: { clients: number; requestsPerPut: number } | null;
  log: (s: string) => void;
}

/** Per operation (an acquisition, a keepalive), over the whole load run: warm-up, window and drain. */
export interface OpCost {
  /** Operations the counts are divided by. */
  ops: number;
  /** Peer fetches + RPCs + alarms + WebSocket events, all nodes. */
  invocations: number;
  peerMessages: number;
  rpcs: number;
  rpcsByMethod: Record<string, number>;
  alarms: number;
  /** Entries the leader committed (the runner's commit index before and after). */
  logEntries: number;
  rowsWrittenPerNode: number;
}

export interface CoordinationRow {
  scenario: 'lock' | 'keepalive';
  clients: number;
  /** Acquisitions or keepalives per second (started in the measured window). */
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorSample: string[];
  /** lock: the release (DELETE) of each acquisition. */
  release?: { p50Ms: number; p99Ms: number; errors: number };
  /** null: a node's counters were lost during the run. */
  perOp: OpCost | null;
  /** opsPerSec over this run's figures at the same client count. */
  ratioToClusterPut: number | null;
  ratioToBaselinePut: number | null;
  ratioToClusterGetLinearizable: number | null;
  clusterPut: PutFigures | null;
  baselinePut: PutFigures | null;
  clusterGetLinearizable: PutFigures | null;
}

export interface ExpiryResult<I> {
  ttl: number;
  /** When the grant was sent and answered (ms since the epoch); the leader's clock starts in between. */
  grantSentAt: number;
  grantAnsweredAt: number;
  /** From the window's start: when the lease should end (grant answered + ttl), and when the watcher saw its key deleted. */
  dueMs: number;
  deletedSeenMs: number | null;
  /** Seen deleted after its due time by this much (null: not within the window). */
  lateMs: number | null;
  /** After the window: the lease's time left by the leader's clock (null: gone, 404). */
  ttlLeftAfterWindow: number | null;
  /** Invocations of the window before (due - 1 s) and from then on; first and last relative to the due time. */
  invocationsBeforeDue: number;
  invocationsFromDue: number;
  firstFromDueMs: number | null;
  lastFromDueMs: number | null;
  /** Invocations per second of the window, all nodes (index 0 = the window's first second). */
  perSecond: number[];
  idle: I;
}

export interface CoordinationResult<I> {
  lockName: string;
  lockLeaseTtl: number;
  lockWaitMs: number;
  lockNote: string;
  keepaliveLeases: number;
  keepaliveLeaseTtl: number;
  keepaliveNote: string;
  putCost: { clients: number; requestsPerPut: number } | null;
  rows: CoordinationRow[];
  /** The idle window with the keepalive leases alive. */
  idleWithLeases: (I & { leasesAlive: number; leaderAlarmInS: number | null; leaderAlarmNote: string }) | null;
  idleExpiry: ExpiryResult<I> | null;
}

const LOCK_LEASE_TTL = 60;
const LOCK_WAIT_MS = 30_000;
const KEEPALIVE_LEASE_TTL = 3600;

async function call(url: string, method: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

async function grant(url: string, ttl: number): Promise<string> {
  const r = await call(`${url}/v1/leases`, 'POST', { ttl });
  if (r.status !== 200) throw new Error(`lease grant: ${r.status} ${JSON.stringify(r.json)}`);
  return (r.json as { id: string }).id;
}

/** `n` leases of `ttl` seconds, ten grants at a time. */
async function grantMany(url: string, n: number, ttl: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 10)
    ids.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => grant(url, ttl)))));
  return ids;
}

async function revokeMany(url: string, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 10)
    await Promise.all(
      ids.slice(i, i + 10).map(async (id) => {
        const r = await call(`${url}/v1/leases/${id}`, 'DELETE');
        if (r.status !== 200 && r.status !== 404)
          throw new Error(`lease revoke ${id}: ${r.status} ${JSON.stringify(r.json)}`);
      }),
    );
}

/** Runs `run` and divides what every node did meanwhile by its operations. */
async function costed<I extends IdleFigures>(
  o: CoordinationOptions<I>,
  run: () => Promise<LoadResult>,
): Promise<{ r: LoadResult; perOp: OpCost | null }> {
  const before = await o.stats();
  const c0 = await o.leaderCommit();
  const r = await run();
  const c1 = await o.leaderCommit();
  const after = await o.stats();
  const ops = r.totalOps;
  if (ops === 0 || c0 === undefined || c1 === undefined) return { r, perOp: null };
  if (after.some((a, i) => a.countersSince !== before[i]?.countersSince)) return { r, perOp: null };
  const sum = (f: (s: BenchStats) => number) => after.reduce((a, s, i) => a + f(s) - f(before[i] as BenchStats), 0);
  const byMethod: Record<string, number> = {};
  after.forEach((a, i) => {
    const b = before[i] as BenchStats;
    for (const [m, n] of Object.entries(a.rpcsByMethod)) {
      if (m === 'status') continue; // the runner's leader lookups
      const d = n - (b.rpcsByMethod[m] ?? 0);
      if (d > 0) byMethod[m] = (byMethod[m] ?? 0) + d;
    }
  });
  const rpcs = Object.values(byMethod).reduce((a, n) => a + n, 0);
  const fetches = sum((s) => s.fetches);
  const alarms = sum((s) => s.alarms);
  const ws = sum((s) => s.wsMessages + s.wsCloses);
  return {
    r,
    perOp: {
      ops,
      invocations: round((fetches + rpcs + alarms + ws) / ops, 3),
      peerMessages: round(fetches / ops, 3),
      rpcs: round(rpcs / ops, 3),
      rpcsByMethod: Object.fromEntries(Object.entries(byMethod).map(([m, n]) => [m, round(n / ops, 3)])),
      alarms: round(alarms / ops, 3),
      logEntries: round((c1 - c0) / ops, 3),
      rowsWrittenPerNode: round(sum((s) => s.rowsWritten) / ops / o.ids.length, 3),
    },
  };
}

function rowOf<I extends IdleFigures>(
  o: CoordinationOptions<I>,
  scenario: 'lock' | 'keepalive',
  clients: number,
  r: LoadResult,
  perOp: OpCost | null,
): CoordinationRow {
  const put = o.figures('put', clients);
  const get = o.figures('get-linearizable', clients);
  const opsPerSec = round(r.opsPerSec, 1);
  return {
    scenario,
    clients,
    opsPerSec,
    p50Ms: round(r.p50Ms),
    p99Ms: round(r.p99Ms),
    maxMs: round(r.maxMs),
    errors: r.errors,
    errorSample: r.errorSample,
    ...(r.release
      ? { release: { p50Ms: round(r.release.p50Ms), p99Ms: round(r.release.p99Ms), errors: r.release.errors } }
      : {}),
    perOp,
    ratioToClusterPut: ratio(opsPerSec, put.cluster?.opsPerSec),
    ratioToBaselinePut: ratio(opsPerSec, put.baseline?.opsPerSec),
    ratioToClusterGetLinearizable: ratio(opsPerSec, get.cluster?.opsPerSec),
    clusterPut: put.cluster,
    baselinePut: put.baseline,
    clusterGetLinearizable: get.cluster,
  };
}

function logRow(o: { log: (s: string) => void }, row: CoordinationRow): void {
  const p = row.perOp;
  o.log(
    `${row.scenario} c=${row.clients}: ${row.opsPerSec}/s p50 ${row.p50Ms} p99 ${row.p99Ms} errors ${row.errors}` +
      (row.release ? ` (release p50 ${row.release.p50Ms} p99 ${row.release.p99Ms})` : '') +
      (p
        ? `; per op ${p.invocations} invocations (${p.rpcs} RPCs ${JSON.stringify(p.rpcsByMethod)}, ${p.peerMessages} peer messages, ${p.alarms} alarms), ${p.logEntries} log entries`
        : '; per op: counters lost') +
      `; x put ${row.ratioToClusterPut ?? '-'} x baseline put ${row.ratioToBaselinePut ?? '-'}`,
  );
  if (row.errors > 0) o.log(`  errors: ${row.errorSample.join(' | ')}`);
}

export async function coordination<I extends IdleFigures>(o: CoordinationOptions<I>): Promise<CoordinationResult<I>> {
  const lockName = 'bench/coord/lock';
  const rows: CoordinationRow[] = [];

  // ---- locks ----
  const lockLeases = await grantMany(o.url, Math.max(0, ...o.lockClients), LOCK_LEASE_TTL);
  for (const clients of o.lockClients) {
    const { r, perOp } = await costed(o, () =>
      o.runLoad({
        base: o.url,
        scenario: 'lock',
        clients,
        warmupMs: o.warmupMs,
        durationMs: o.durationMs,
        keys: 0,
        leases: lockLeases,
        lockName,
        lockWaitMs: LOCK_WAIT_MS,
      }),
    );
    const row = rowOf(o, 'lock', clients, r, perOp);
    rows.push(row);
    logRow(o, row);
  }
  await revokeMany(o.url, lockLeases);

  // ---- keepalives ----
  const leases = o.leases > 0 ? await grantMany(o.url, o.leases, KEEPALIVE_LEASE_TTL) : [];
  if (leases.length > 0)
    for (const clients of o.keepaliveClients) {
      const { r, perOp } = await costed(o, () =>
        o.runLoad({
          base: o.url,
          scenario: 'keepalive',
          clients,
          warmupMs: o.warmupMs,
          durationMs: o.durationMs,
          keys: 0,
          leases,
        }),
      );
      const row = rowOf(o, 'keepalive', clients, r, perOp);
      rows.push(row);
      logRow(o, row);
    }

  // ---- idle, with the keepalive leases alive ----
  let idleWithLeases: CoordinationResult<I>['idleWithLeases'] = null;
  let idleExpiry: ExpiryResult<I> | null = null;
  if (o.idleMs > 0 && leases.length > 0) {
    const listed = await call(`${o.url}/v1/leases?limit=1000`, 'GET');
    const leasesAlive = listed.status === 200 ? (listed.json as { leases: unknown[] }).leases.length : -1;
    o.log(`idle with leases: ${leasesAlive} leases alive; waiting for quiet (an alarm past the window is allowed)`);
    const window = o.idleMs;
    // The leader keeps an alarm at its next expiry or checkpoint: quiet, with no alarm inside the window.
    const idle = await o.measureIdle(
      window,
      (s, now) => s.quiet && (s.alarmAt === null || s.alarmAt > now + window + 5000),
      true,
    );
    const alarms = Object.values(idle.alarmsPending).filter((a): a is number => a !== null);
    const first = alarms.length ? Math.min(...alarms) : null;
    idleWithLeases = {
      ...idle,
      leasesAlive,
      leaderAlarmInS: first === null ? null : round((first - idle.windowStartAt) / 1000, 1),
      leaderAlarmNote: `${alarms.length} node(s) with an alarm; leases of ${KEEPALIVE_LEASE_TTL} s are checkpointed every LEASE_CHECKPOINT_MS (5 min) after their last renewal, so the leader's alarm is the first checkpoint, not an expiry`,
    };
    o.log(`idle with leases: ${JSON.stringify({ ...idleWithLeases, times: undefined })}`);
  }
  if (leases.length > 0) await revokeMany(o.url, leases);

  // ---- idle, with a lease expiring inside the window ----
  if (o.idleMs > 0 && o.expiryTtl > 0) idleExpiry = await expiryWindow(o);

  return {
    lockName,
    lockLeaseTtl: LOCK_LEASE_TTL,
    lockWaitMs: LOCK_WAIT_MS,
    lockNote:
      "one acquisition + release with a lease of the client's own: 2 log writes (the enqueue txn putting {name}/{lease hex}, the release delete) and at least one linearizable range read (the turn check); a waiter adds a one-shot watch (nextChange) on its predecessor and another range read per wake; perOp counts what every node did per acquisition",
    keepaliveLeases: leases.length,
    keepaliveLeaseTtl: KEEPALIVE_LEASE_TTL,
    keepaliveNote:
      'a keepalive is one RPC to the leader: a read barrier (heartbeat round, shared by concurrent reads) and the renewal in its memory, no log write',
    putCost: o.putCost,
    rows,
    idleWithLeases,
    idleExpiry,
  };
}

/**
 * Grants a lease of `expiryTtl` seconds with a key attached and a WebSocket
 * watcher on the key (opened first: hibernating, it costs nothing idle),
 * waits for the cluster to go quiet (the leader's alarm at the expiry
 * allowed), then counts invocations over a window that spans the due time,
 * the revocation, and the heartbeats until the cluster is quiet again.
 */
async function expiryWindow<I extends IdleFigures>(o: CoordinationOptions<I>): Promise<ExpiryResult<I>> {
  const key = 'bench/coord/expiring';
  let watcher: Watcher | undefined;
  try {
    watcher = await openSocket('expiry', o.url, { key }, 15_000);
    const grantSentAt = Date.now();
    const r = await call(`${o.url}/v1/leases`, 'POST', { ttl: o.expiryTtl });
    const grantAnsweredAt = Date.now();
    if (r.status !== 200) throw new Error(`lease grant: ${r.status} ${JSON.stringify(r.json)}`);
    const { id, ttl } = r.json as { id: string; ttl: number };
    const put = await call(`${o.url}/v1/kv/${key}?lease=${id}`, 'PUT', 'held by the lease');
    if (put.status !== 200) throw new Error(`put ${key}: ${put.status} ${JSON.stringify(put.json)}`);
    const putRevision = (put.json as { revision: number }).revision;
    const dueAt = grantAnsweredAt + ttl * 1000;
    // The window starts about a quiesce after the put and must reach past the due time, the
    // revocation (after an election if the leader was evicted meanwhile) and the quiesce after it.
    const windowMs = Math.max(o.idleMs, dueAt - Date.now() + 6_000);
    o.log(`idle with an expiry: lease ${id} (ttl ${ttl} s) due in ${round((dueAt - Date.now()) / 1000, 1)} s`);
    const idle = await o.measureIdle(windowMs, (s) => s.quiet, true);
    const deleted = watcher.got.find((e) => e.revision > putRevision);
    const status = await call(`${o.url}/v1/leases/${id}`, 'GET');
    const ttlLeftAfterWindow = status.status === 200 ? (status.json as { ttl: number }).ttl : null;
    if (status.status === 200) await revokeMany(o.url, [id]);
    const w0 = idle.windowStartAt;
    const dueMs = dueAt - w0;
    const all = Object.values(idle.times ?? {})
      .flat()
      .sort((a, b) => a - b);
    const perSecond = Array.from({ length: Math.ceil(idle.windowMs / 1000) }, () => 0);
    for (const t of all) {
      const s = Math.floor(t / 1000);
      if (s >= 0 && s < perSecond.length) perSecond[s] = (perSecond[s] ?? 0) + 1;
    }
    const fromDue = all.filter((t) => t >= dueMs - 1000);
    // Receipt times are wall-clock ms (performance.timeOrigin + performance.now()).
    const deletedSeenMs = deleted ? round(deleted.at - w0, 0) : null;
    return {
      ttl,
      grantSentAt,
      grantAnsweredAt,
      dueMs: round(dueMs, 0),
      deletedSeenMs,
      lateMs: deletedSeenMs === null ? null : round(deletedSeenMs - dueMs, 0),
      ttlLeftAfterWindow,
      invocationsBeforeDue: all.length - fromDue.length,
      invocationsFromDue: fromDue.length,
      firstFromDueMs: fromDue.length ? round((fromDue[0] as number) - dueMs, 0) : null,
      lastFromDueMs: fromDue.length ? round((fromDue[fromDue.length - 1] as number) - dueMs, 0) : null,
      perSecond,
      idle,
    };
  } finally {
    if (watcher) {
      watcher.close();
      await Promise.race([watcher.done, sleep(5000)]);
    }
  }
}

// ---- output ----

export function coordinationSummary(c: CoordinationResult<IdleFigures> | null): string[] {
  if (!c) return [];
  const out: string[] = [];
  const per = (p: OpCost | null) =>
    p
      ? `${p.invocations} DO invocations (${p.rpcs} RPCs ${JSON.stringify(p.rpcsByMethod)} + ${p.peerMessages} peer messages + ${p.alarms} alarms), ${p.logEntries} log entries, ${p.rowsWrittenPerNode} rows written per node`
      : 'counters lost';
  for (const r of c.rows) {
    const what =
      r.scenario === 'lock'
        ? `lock acquire+release (one lock, ${r.clients} client(s))`
        : `keepalive (${c.keepaliveLeases} leases, ${r.clients} client(s))`;
    out.push(
      `${what}: ${r.opsPerSec}/s, ${r.scenario === 'lock' ? 'acquire ' : ''}p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms` +
        (r.release ? `, release p50 ${r.release.p50Ms} ms p99 ${r.release.p99Ms} ms` : '') +
        `, errors ${r.errors}; per ${r.scenario === 'lock' ? 'acquisition' : 'keepalive'} ${per(r.perOp)}; ` +
        `x cluster put ${r.ratioToClusterPut ?? 'n/a'} (${r.clusterPut?.opsPerSec ?? 'n/a'}/s), x baseline put ${r.ratioToBaselinePut ?? 'n/a'} (${r.baselinePut?.opsPerSec ?? 'n/a'}/s)` +
        (r.scenario === 'keepalive'
          ? `, x cluster linearizable get ${r.ratioToClusterGetLinearizable ?? 'n/a'} (${r.clusterGetLinearizable?.opsPerSec ?? 'n/a'}/s)`
          : ''),
    );
  }
  if (c.rows.some((r) => r.scenario === 'lock')) out.push(`lock: ${c.lockNote}`);
  if (c.rows.some((r) => r.scenario === 'keepalive'))
    out.push(
      `keepalive: ${c.keepaliveNote}${c.putCost ? `; a committed put costs ${c.putCost.requestsPerPut} DO requests (${c.putCost.clients} clients)` : ''}`,
    );
  const i = c.idleWithLeases;
  if (i)
    out.push(
      `idle with ${i.leasesAlive} leases alive: ${i.invocations} invocations in ${i.windowMs} ms (${i.invocationsPerIdleMinute} per idle minute; quiet after ${i.quietAfterMs} ms); leader's alarm in ${i.leaderAlarmInS ?? 'n/a'} s; evicted in the window: ${i.evictedInWindow.join(',') || 'none'}`,
    );
  const e = c.idleExpiry;
  if (e)
    out.push(
      `idle with a lease (ttl ${e.ttl} s) due ${round(e.dueMs / 1000, 1)} s into a ${e.idle.windowMs} ms window: key deletion seen ${e.lateMs === null ? 'NOT within the window' : `${e.lateMs} ms after the due time`}` +
        (e.ttlLeftAfterWindow === null ? '' : ` (lease still alive after the window, ${e.ttlLeftAfterWindow} s left)`) +
        `; ${e.idle.invocations} invocations, ${e.invocationsBeforeDue} before the due time (-1 s), ${e.invocationsFromDue} from it (first ${e.firstFromDueMs ?? '-'} ms, last ${e.lastFromDueMs ?? '-'} ms after it); per second ${JSON.stringify(e.perSecond)}; evicted in the window: ${e.idle.evictedInWindow.join(',') || 'none'}`,
    );
  return out;
}
