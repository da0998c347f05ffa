/**
 * The watch scenario of `npm run bench` (issue 12), run by bench/run.ts
 * against the 3-node cluster:
 *
 * - watchIdle: many WebSocket watchers (GET /v1/watch with Upgrade:
 *   websocket, each creating one watch on a prefix and waiting for its
 *   `created`) held open while the cluster is quiet; the runner's idle
 *   measurement counts the nodes' invocations over the window (the target
 *   is 0: sockets are accepted for hibernation). Then one put under the
 *   prefix checks that every socket still delivers, and all are closed.
 * - watchDelivery: watchers on one prefix, half Server-Sent Events and half
 *   WebSocket, while the load generator puts keys under it: the latency from
 *   a put's send (load process) to each watcher's receipt (this process),
 *   both on the wall clock, and events delivered per second across watchers;
 *   every watcher must get every event of the run once, in revision order.
 *
 * Everything opened here is closed before the functions return, and every
 * wait is bounded.
 */
import os from 'node:os';
import type { LoadJob, LoadResult, PutRecord } from './load.ts';

/** Wall-clock ms with sub-ms resolution, comparable with PutRecord.sentAt from the load process. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

/** One event a watcher received. */
export interface Received {
  readonly revision: number;
  readonly key: string;
  readonly at: number;
}

export interface Watcher {
  readonly name: string;
  readonly transport: 'sse' | 'ws';
  readonly got: Received[];
  /** The highest revision received. */
  last: number;
  /** Why it stopped watching (canceled, an error, closed by the other side); undefined while it watches. */
  failure: string | undefined;
  close(): void;
  /** Resolves once the connection is gone (after close(), or on its own). */
  done: Promise<void>;
}

/** The events of one watch message (`{revision, events:[{type, kv:{key}}]}`) into `w`. */
function take(w: Watcher, m: { revision?: unknown; events?: unknown }, at: number): void {
  if (typeof m.revision !== 'number' || !Array.isArray(m.events)) return;
  for (const e of m.events as { kv?: { key?: unknown } }[])
    w.got.push({ revision: m.revision, key: String(e.kv?.key), at });
  w.last = Math.max(w.last, m.revision);
}

/** A WebSocket watcher with one watch; resolves once the watch is created. */
export function openSocket(
  name: string,
  url: string,
  create: Record<string, unknown>,
  timeoutMs: number,
): Promise<Watcher> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/watch`);
    let closing = false;
    let created = false;
    let ended: () => void = () => {};
    const w: Watcher = {
      name,
      transport: 'ws',
      got: [],
      last: 0,
      failure: undefined,
      close() {
        closing = true;
        try {
          ws.close(1000, 'bench done');
        } catch {
          ended();
        }
      },
      done: new Promise<void>((r) => {
        ended = r;
      }),
    };
    const timer = setTimeout(() => {
      if (created) return;
      w.close();
      reject(new Error(`${name}: not created within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.addEventListener('open', () => ws.send(JSON.stringify({ create })));
    ws.addEventListener('message', (ev) => {
      const at = now();
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(String(ev.data)) as Record<string, unknown>;
      } catch {
        w.failure = `not JSON: ${String(ev.data).slice(0, 100)}`;
        return;
      }
      if (m.created === true) {
        created = true;
        clearTimeout(timer);
        resolve(w);
      } else if (m.canceled === true) w.failure = `canceled: ${String(m.reason)}`;
      else if (m.error !== undefined) w.failure = `error message: ${JSON.stringify(m.error)}`;
      else take(w, m, at);
    });
    ws.addEventListener('close', (ev) => {
      if (!closing && w.failure === undefined) w.failure = `closed by the server (${ev.code})`;
      clearTimeout(timer);
      if (!created) reject(new Error(`${name}: closed before created (${ev.code})`));
      ended();
    });
    ws.addEventListener('error', () => {
      if (!closing && w.failure === undefined) w.failure = 'socket error';
    });
  });
}

/** A Server-Sent Events watcher; resolves once the stream's headers are in (the watch exists then). */
async function openSse(name: string, url: string, query: string, timeoutMs: number): Promise<Watcher> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  let closing = false;
  let res: Response;
  try {
    res = await fetch(`${url}/v1/watch?${query}`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
  } finally {
    clearTimeout(timer);
  }
  if (res.status !== 200 || !res.body) {
    const text = await res.text().catch(() => '');
    ac.abort();
    throw new Error(`${name}: ${res.status} ${text.slice(0, 200)}`);
  }
  const reader = res.body.getReader();
  const w: Watcher = {
    name,
    transport: 'sse',
    got: [],
    last: 0,
    failure: undefined,
    close() {
      closing = true;
      ac.abort();
    },
    done: Promise.resolve(),
  };
  w.done = (async () => {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const at = now();
        buf += dec.decode(value, { stream: true });
        for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (event === 'change') take(w, JSON.parse(data), at);
          else if (event === 'canceled') w.failure = `canceled: ${data}`;
        }
      }
      if (!closing && w.failure === undefined) w.failure = 'stream ended by the server';
    } catch (e) {
      if (!closing && w.failure === undefined) w.failure = `stream failed: ${String(e)}`;
    }
  })();
  return w;
}

/** Runs `open(i)` for i < n, at most `limit` at a time; the ones that opened, and a sample of failures. */
async function openAll(
  n: number,
  limit: number,
  open: (i: number) => Promise<Watcher>,
): Promise<{ watchers: Watcher[]; failed: number; failures: string[] }> {
  const watchers: Watcher[] = [];
  const failures: string[] = [];
  let failed = 0;
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      try {
        watchers.push(await open(i));
      } catch (e) {
        failed++;
        if (failures.length < 5) failures.push(String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
  return { watchers, failed, failures };
}

/** Waits until every watcher has received `revision` or stopped; true if all got it. */
async function waitFor(watchers: Watcher[], revision: number, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (watchers.every((w) => w.last >= revision || w.failure !== undefined)) break;
    if (Date.now() >= until) break;
    await sleep(20);
  }
  return watchers.every((w) => w.last >= revision);
}

/** Closes every watcher and waits (at most `deadlineMs`) for the connections to end. */
async function closeAll(watchers: Watcher[], deadlineMs = 10_000): Promise<number> {
  for (const w of watchers) w.close();
  let ended = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  await Promise.race([
    Promise.all(watchers.map((w) => w.done.then(() => void ended++))),
    new Promise<void>((r) => {
      timer = setTimeout(r, deadlineMs);
    }),
  ]);
  clearTimeout(timer);
  return ended;
}

async function put(url: string, key: string, value: string): Promise<number> {
  const res = await fetch(`${url}/v1/kv/${key}`, { method: 'PUT', body: value, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`put ${key}: ${res.status} ${text.slice(0, 200)}`);
  return (JSON.parse(text) as { revision: number }).revision;
}

function percentiles(xs: number[]): { p50Ms: number; p99Ms: number; maxMs: number; samples: number } {
  const v = Float64Array.from(xs).sort();
  const at = (q: number) => (v.length ? (v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)] ?? NaN) : NaN);
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(at(1)), samples: v.length };
}

/**
 * CPU over an interval: of this process (the watchers' client side), in
 * cores, and of the whole machine (busy fraction of all cores). The cluster,
 * the load generator and these clients share the machine's cores.
 */
function cpuMeter(): () => { watcherProcessCores: number; machineBusy: number } {
  const proc = process as { cpuUsage(): { user: number; system: number } };
  const machine = () =>
    os.cpus().reduce(
      (a, c) => {
        const t = c.times;
        return {
          busy: a.busy + t.user + t.nice + t.sys + t.irq,
          all: a.all + t.user + t.nice + t.sys + t.irq + t.idle,
        };
      },
      { busy: 0, all: 0 },
    );
  const t0 = performance.now();
  const p0 = proc.cpuUsage();
  const m0 = machine();
  return () => {
    const p1 = proc.cpuUsage();
    const m1 = machine();
    const wallUs = (performance.now() - t0) * 1000;
    return {
      watcherProcessCores: round((p1.user - p0.user + p1.system - p0.system) / wallUs),
      machineBusy: round((m1.busy - m0.busy) / Math.max(1, m1.all - m0.all)),
    };
  };
}

// ---- idle watchers ----

export interface WatchIdleResult<I> {
  prefix: string;
  socketsAsked: number;
  socketsOpened: number;
  openFailures: string[];
  openMs: number;
  /** Open WebSockets per node as each node reports them (ctx.getWebSockets()), after opening. */
  socketsByNode: Record<string, number>;
  /** The runner's idle measurement (the same as the cluster's idle entry), taken with the sockets open. */
  idle: I;
  /** Sockets that stopped watching (closed or canceled by the server) by the end of the window. */
  lostInWindow: number;
  /**
   * After the window: one put under the prefix, how many of the open sockets
   * delivered it, and allMs from its send until all had it (polled every 20 ms).
   */
  probe: { revision: number; delivered: number; of: number; allMs: number | null };
  closed: number;
}

export interface WatchIdleOptions<I> {
  url: string;
  sockets: number;
  prefix: string;
  /** How many handshakes may be in flight at once. */
  concurrency?: number;
  /** Open WebSockets per node (the bench stats of each node). */
  socketsByNode: () => Promise<Record<string, number>>;
  /** The idle measurement: waits for the cluster to go quiet, then counts invocations over the window. */
  measure: () => Promise<I>;
  log: (s: string) => void;
}

export async function watchIdle<I>(o: WatchIdleOptions<I>): Promise<WatchIdleResult<I>> {
  const t0 = Date.now();
  const opened = await openAll(o.sockets, o.concurrency ?? 50, (i) =>
    openSocket(`ws#${i}`, o.url, { prefix: o.prefix }, 15_000),
  );
  const watchers = opened.watchers;
  try {
    const openMs = Date.now() - t0;
    const socketsByNode = await o.socketsByNode();
    o.log(
      `watch idle: ${watchers.length}/${o.sockets} sockets open in ${openMs} ms (${JSON.stringify(socketsByNode)})`,
    );
    const idle = await o.measure();
    const lostInWindow = watchers.filter((w) => w.failure !== undefined).length;
    const open = watchers.filter((w) => w.failure === undefined);
    const sent = Date.now();
    const revision = await put(o.url, `${o.prefix}probe`, 'after the idle window');
    const all = await waitFor(open, revision, 15_000);
    const probe = {
      revision,
      delivered: open.filter((w) => w.got.some((e) => e.revision === revision)).length,
      of: open.length,
      allMs: all ? Date.now() - sent : null,
    };
    const closed = await closeAll(watchers);
    return {
      prefix: o.prefix,
      socketsAsked: o.sockets,
      socketsOpened: watchers.length,
      openFailures: opened.failures,
      openMs,
      socketsByNode,
      idle,
      lostInWindow,
      probe,
      closed,
    };
  } finally {
    // Closing twice is harmless: this closes whatever an error left open.
    await closeAll(watchers);
  }
}

// ---- delivery under load ----

export interface PutFigures {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface WatchDeliveryResult {
  prefix: string;
  watchers: { sse: number; ws: number; failedToOpen: number };
  clients: number;
  startRevision: number;
  endRevision: number;
  /** Events each watcher had to receive: every acknowledged put of the load run (warm-up included) and an end marker. */
  eventsPerWatcher: number;
  latencyNote: string;
  /** Put send to watcher receipt, over every watcher and every put started in the measured window. */
  latency: { p50Ms: number; p99Ms: number; maxMs: number; samples: number };
  latencySse: { p50Ms: number; p99Ms: number; maxMs: number; samples: number };
  latencyWs: { p50Ms: number; p99Ms: number; maxMs: number; samples: number };
  /** Events received in the measured window, summed over watchers, per second. */
  eventsDeliveredPerSec: number;
  /** CPU while the load ran: this process (the watchers' clients) in cores, and the machine's busy fraction. */
  cpu: { watcherProcessCores: number; machineBusy: number };
  /** After the load stopped: until every watcher had the end marker (null: not within the deadline). */
  drainMs: number | null;
  /** The puts of this run (with the watchers on). */
  put: { opsPerSec: number; p50Ms: number; p99Ms: number; errors: number; unknownOutcome: number };
  /** The put rows of this run at the same client count: the cluster without watchers, and the baseline. */
  putWithoutWatchers: PutFigures | null;
  baselinePut: PutFigures | null;
  /** Puts whose outcome is unknown (no 200) that watchers saw anyway (they committed; every watcher owes them). */
  unacknowledgedSeen: number;
  /** Watchers that did not get exactly the events of the run, once each, in revision order. */
  errors: string[];
}

export interface WatchDeliveryOptions {
  url: string;
  watchers: number;
  prefix: string;
  clients: number;
  keys: number;
  warmupMs: number;
  durationMs: number;
  runLoad: (job: LoadJob) => Promise<LoadResult>;
  /** Put figures of this run to report beside (same client count): the cluster without watchers, the baseline. */
  putWithoutWatchers: PutFigures | undefined;
  baselinePut: PutFigures | undefined;
  log: (s: string) => void;
}

export async function watchDelivery(o: WatchDeliveryOptions): Promise<WatchDeliveryResult> {
  // Every watcher starts at the same revision, so they all owe the same events.
  const startRevision = (await put(o.url, 'bench/watch-start', 'x')) + 1;
  const sse = Math.ceil(o.watchers / 2);
  const opened = await openAll(o.watchers, 25, (i) =>
    i < sse
      ? openSse(`sse#${i}`, o.url, `prefix=${encodeURIComponent(o.prefix)}&start_revision=${startRevision}`, 15_000)
      : openSocket(`ws#${i - sse}`, o.url, { prefix: o.prefix, start_revision: startRevision }, 15_000),
  );
  const watchers = opened.watchers;
  try {
    const count = (t: 'sse' | 'ws') => watchers.filter((w) => w.transport === t).length;
    o.log(`watch delivery: ${count('sse')} SSE + ${count('ws')} WebSocket watchers from revision ${startRevision}`);
    const cpu = cpuMeter();
    const load = await o.runLoad({
      base: o.url,
      scenario: 'put',
      clients: o.clients,
      warmupMs: o.warmupMs,
      durationMs: o.durationMs,
      keys: o.keys,
      keyPrefix: `${o.prefix}k`,
      recordPuts: true,
    });
    const loadEnd = Date.now();
    const cpuUsed = cpu();
    const endKey = `${o.prefix}end`;
    const endRevision = await put(o.url, endKey, 'end of the run');
    const all = await waitFor(watchers, endRevision, 30_000);
    const drainMs = all ? Date.now() - loadEnd : null;
    await closeAll(watchers);

    const puts = load.puts ?? [];
    const acked = new Map<number, PutRecord>();
    for (const p of puts) if (p.revision !== null) acked.set(p.revision, p);
    const unknownOutcome = puts.length - acked.size;
    const loadKey = `${o.prefix}k`;
    // A put without an answer may have committed: then every watcher owes its event too.
    const unacknowledged = new Set<number>();
    if (unknownOutcome > 0)
      for (const w of watchers)
        for (const e of w.got)
          if (!acked.has(e.revision) && e.revision !== endRevision && e.key.startsWith(loadKey))
            unacknowledged.add(e.revision);
    const expected = [...acked.keys(), ...unacknowledged, endRevision];
    const errors: string[] = opened.failures.map((f) => `failed to open: ${f}`);
    const lat: Record<'sse' | 'ws', number[]> = { sse: [], ws: [] };
    const ws0 = load.windowStartAt ?? 0;
    const ws1 = load.windowEndAt ?? 0;
    let inWindow = 0;
    for (const w of watchers) {
      const problems: string[] = [];
      if (w.failure !== undefined) problems.push(w.failure);
      let prev = startRevision - 1;
      let repeated = 0;
      let wrongKey = 0;
      let unexpected = 0;
      const seen = new Set<number>();
      for (const e of w.got) {
        if (e.revision <= prev) repeated++;
        prev = Math.max(prev, e.revision);
        seen.add(e.revision);
        if (e.at >= ws0 && e.at < ws1) inWindow++;
        const p = acked.get(e.revision);
        if (p) {
          if (p.key !== e.key) wrongKey++;
          if (p.counted) lat[w.transport].push(e.at - p.sentAt);
        } else if (e.revision === endRevision) {
          if (e.key !== endKey) wrongKey++;
        } else if (!unacknowledged.has(e.revision)) unexpected++;
      }
      const missing = expected.filter((r) => !seen.has(r)).length;
      if (repeated) problems.push(`${repeated} events repeated or out of revision order`);
      if (missing) problems.push(`${missing} of ${expected.length} events missing`);
      if (wrongKey) problems.push(`${wrongKey} events with another key than the put of their revision`);
      if (unexpected) problems.push(`${unexpected} events no put of the run made`);
      if (problems.length) errors.push(`${w.name}: ${problems.join('; ')}`);
    }
    if (opened.failed > 0) o.log(`watch delivery: ${opened.failed} watchers failed to open`);
    const windowS = (ws1 - ws0) / 1000;
    return {
      prefix: o.prefix,
      watchers: { sse: count('sse'), ws: count('ws'), failedToOpen: opened.failed },
      clients: o.clients,
      startRevision,
      endRevision,
      eventsPerWatcher: expected.length,
      latencyNote:
        "from the put's send (load process) to the watcher's receipt (runner process), both on the wall clock; the put commits in between, so this is an upper bound on commit-to-receipt",
      latency: percentiles([...lat.sse, ...lat.ws]),
      latencySse: percentiles(lat.sse),
      latencyWs: percentiles(lat.ws),
      eventsDeliveredPerSec: windowS > 0 ? round(inWindow / windowS, 1) : 0,
      cpu: cpuUsed,
      drainMs,
      put: {
        opsPerSec: round(load.opsPerSec, 1),
        p50Ms: round(load.p50Ms),
        p99Ms: round(load.p99Ms),
        errors: load.errors,
        unknownOutcome,
      },
      putWithoutWatchers: o.putWithoutWatchers ?? null,
      baselinePut: o.baselinePut ?? null,
      unacknowledgedSeen: unacknowledged.size,
      errors: errors.slice(0, 20).concat(errors.length > 20 ? [`... and ${errors.length - 20} more`] : []),
    };
  } finally {
    // Closing twice is harmless: this closes whatever an error left open.
    await closeAll(watchers);
  }
}

// ---- output ----

/** The printed summary lines of the watch scenario. */
export function watchSummary(
  idle: WatchIdleResult<{ invocationsPerIdleMinute: number; quietAfterMs: number | null; windowMs: number }> | null,
  delivery: WatchDeliveryResult | null,
): string[] {
  const out: string[] = [];
  if (idle) {
    const p = idle.probe;
    out.push(
      `watch idle: ${idle.socketsOpened}/${idle.socketsAsked} WebSocket watchers ${JSON.stringify(idle.socketsByNode)}: ${idle.idle.invocationsPerIdleMinute} invocations per idle minute over ${idle.idle.windowMs} ms (quiet after ${idle.idle.quietAfterMs} ms); ${idle.lostInWindow} lost; probe delivered to ${p.delivered}/${p.of}${p.allMs === null ? '' : ` in ${p.allMs} ms`}`,
    );
  }
  if (delivery) {
    const d = delivery;
    const pr = (r: PutFigures | null | undefined) => (r ? `${r.opsPerSec} ops/s p50 ${r.p50Ms} p99 ${r.p99Ms}` : 'n/a');
    out.push(
      `watch delivery: ${d.watchers.sse} SSE + ${d.watchers.ws} WebSocket watchers, ${d.clients} put clients: put send -> receipt p50 ${d.latency.p50Ms} ms, p99 ${d.latency.p99Ms} ms (SSE ${d.latencySse.p50Ms}/${d.latencySse.p99Ms}, WebSocket ${d.latencyWs.p50Ms}/${d.latencyWs.p99Ms}; an upper bound on commit -> receipt), ${d.eventsDeliveredPerSec} events/s across watchers, drained ${d.drainMs} ms after the load; watcher clients used ${d.cpu.watcherProcessCores} cores, machine ${Math.round(d.cpu.machineBusy * 100)}% busy`,
      `watch delivery puts: with watchers ${pr(d.put)}; without ${pr(d.putWithoutWatchers)}; baseline ${pr(d.baselinePut)}`,
      d.errors.length === 0
        ? `watch delivery: every watcher got all ${d.eventsPerWatcher} events once, in revision order`
        : `watch delivery ERRORS: ${d.errors.join(' | ')}`,
    );
  }
  return out;
}
