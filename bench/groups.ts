/**
 * The groups scenario of `npm run bench` (issue 19), run by bench/run.ts
 * against the first cluster's deployment, last:
 *
 * - create: `count` groups of 3 voters through PUT /v1/groups/{name}
 *   (`concurrency` at a time), each then written once: the create and the
 *   first write's latencies, and the rows a group's node stores before its
 *   first write (one more group, left empty);
 * - memory: workerd's resident memory (the runtime, Worker and objects
 *   together) before, after creating and writing, and after reading every
 *   group once more, with the number of groups the Worker remembers (its
 *   cache is bounded): a second pass over the same groups must not grow it;
 * - idle: once no object has been invoked for a while, the invocations of
 *   every object of the deployment (all groups, the directory, the default
 *   group) over an idle window, from bench/worker.ts's counters, which are
 *   read without waking any object;
 * - spread: the same load (`clients` closed-loop put clients) on 1 group,
 *   then spread over 10 and 100 groups (each operation to a group drawn at
 *   random, so every group of the spread takes a share), `repeat` times
 *   interleaved, each run from quiet (the groups a run woke heartbeat until
 *   they go quiet, and would load the next run) with its groups woken first:
 *   the aggregate ops/s and its ratio to one group's, the invocations per
 *   put, and those per second of the run's groups awake without load, with
 *   workerd's CPU time (from /proc) per put and per second awake. Miniflare
 *   runs every object on one thread, so this shows there is no shared
 *   bottleneck (directory, Worker state, routing), not the production gain.
 *   The same clients then read one key serializably, each read one call to
 *   one node: what a request costs in the parts every group shares, without
 *   the Raft round whose batching a put loses when its group's load is thinner;
 * - matched: one group alone under each spread's per-group load (clients /
 *   groups, at least one), its CPU time per put: what the thinner load costs
 *   a group by itself, to set beside the spread's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { LoadJob, LoadResult } from './load.ts';

/** The serializable reads of a spread read key `${READ_KEY}0`, written in every group of the spread first. */
const READ_KEY = 'bench/read';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

export interface GroupsOptions {
  readonly url: string;
  readonly count: number;
  readonly concurrency: number;
  readonly spreads: readonly number[];
  readonly clients: number;
  readonly repeat: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The idle window over every group (0: none). */
  readonly idleMs: number;
  /** How long an idle leader heartbeats before it goes quiet (quiesceAfterTicks x tickMs). */
  readonly quiesceMs: number;
  /** Runs one load; `label` names it (a profile's file, with --profile) and `rep` is its repeat. */
  readonly runLoad: (job: LoadJob, label: string, rep: number) => Promise<LoadResult>;
  readonly log: (s: string) => void;
}

interface Latencies {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** bench/worker.ts /bench/totals: every object's counters summed, read without waking any. */
interface Totals {
  readonly objects: number;
  readonly fetches: number;
  readonly rpcs: number;
  readonly alarms: number;
  readonly wsMessages: number;
  readonly wsCloses: number;
}

/** What a spread's clients do: puts, or serializable reads (no Raft round). */
export type SpreadLoad = 'put' | 'get-serializable';

export interface SpreadRow {
  readonly load: SpreadLoad;
  readonly groups: number;
  readonly repeat: number;
  readonly opsPerSec: number;
  readonly p99Ms: number;
  /** The p99 of the bench Worker's own time for the operations (see bench/worker.ts), where it said. */
  readonly servedP99Ms?: number;
  readonly errors: number;
  /** Durable Object invocations (peer messages, RPCs, alarms) per successful operation, warm-up included. */
  readonly invocationsPerPut: number;
  /** Of those, alarms (heartbeat rounds, timeouts). */
  readonly alarmsPerOp: number;
  /** Invocations per second of the spread's groups awake but without load (their leaders' heartbeats, until they go quiet). */
  readonly awakePerSec: number;
  /** workerd's CPU time (ms, every thread) per successful operation, warm-up included. */
  readonly cpuMsPerOp: number;
  /** workerd's CPU time (ms) per second of the spread's groups awake without load. */
  readonly awakeCpuMsPerSec: number;
}

/**
 * One group under the load each group of a spread takes (clients / groups,
 * at least one client): what a put costs at that thinner load with no other
 * group beside it. Against the spread's CPU per put, it tells apart what
 * the thinner load costs each group from anything the groups share.
 */
export interface MatchedRow {
  /** The spread whose per-group load this is. */
  readonly groups: number;
  readonly clients: number;
  readonly repeat: number;
  readonly opsPerSec: number;
  readonly cpuMsPerOp: number;
}

export interface GroupsResult {
  readonly count: number;
  readonly createWallS: number;
  readonly create: Latencies;
  readonly firstWrite: Latencies;
  readonly createErrors: number;
  /** Rows and bytes a group's node holds before its first write. */
  readonly emptyGroup: {
    rowsPerNode: number;
    rowsPerGroup: number;
    tables: Record<string, number>;
    bytesPerNode: number;
  };
  readonly memory: {
    readonly workerdRssMb: { before: number; afterCreate: number; afterSecondPass: number; afterIdle: number | null };
    readonly knownGroups: { afterCreate: number; afterSecondPass: number; limit: number };
  };
  readonly idle: {
    readonly quietAfterMs: number | null;
    readonly windowMs: number;
    readonly objects: number;
    readonly invocations: number;
    readonly invocationsPerIdleMinute: number;
  } | null;
  readonly spread: SpreadRow[];
  /** Per spread: the median aggregate ops/s and its ratio to one group's median. */
  readonly spreadMedians: {
    load: SpreadLoad;
    groups: number;
    opsPerSec: number;
    p99Ms: number;
    ratio: number;
    invocationsPerPut: number;
    alarmsPerOp: number;
    awakePerSec: number;
    cpuMsPerOp: number;
    awakeCpuMsPerSec: number;
  }[];
  readonly matched: MatchedRow[];
  /** Per spread of more than one group: the median of its matched runs. */
  readonly matchedMedians: { groups: number; clients: number; opsPerSec: number; cpuMsPerOp: number }[];
}

function percentiles(xs: number[]): Latencies {
  const v = [...xs].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))] ?? Number.NaN;
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(v[v.length - 1] ?? Number.NaN) };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  const ms = performance.now() - t0;
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, ms };
}

/** Runs `fn` over `items`, `n` at a time. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** The /proc entries of the workerd processes this runner started (Miniflare's children). */
function workerdProcs(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (/^Name:\s+workerd$/m.test(status) && Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1]) === process.pid)
        out.push(`/proc/${pid}`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The resident memory (MB) of the workerd processes this runner started. */
function workerdRssMb(): number {
  let kb = 0;
  for (const dir of workerdProcs()) {
    try {
      kb += Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`${dir}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return round(kb / 1024, 1);
}

/** Clock ticks per second of /proc/PID/stat's CPU times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/** The CPU time (ms, user and system, every thread) the workerd processes this runner started have used. */
function workerdCpuMs(): number {
  let ticks = 0;
  for (const dir of workerdProcs()) {
    try {
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = readFileSync(`${dir}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return (ticks * 1000) / USER_HZ;
}

const invocationsOf = (t: Totals) => t.fetches + t.rpcs + t.alarms + t.wsMessages + t.wsCloses;

async function totals(url: string): Promise<Totals> {
  return (await call(`${url}/bench/totals`)).body as Totals;
}

/** Waits until no object has been invoked for 5 s (at most the quiesce time and two minutes); how long it took, or null. */
async function untilQuiet(o: GroupsOptions): Promise<number | null> {
  const started = Date.now();
  let last = invocationsOf(await totals(o.url));
  let stableSince = Date.now();
  while (Date.now() - started < o.quiesceMs + 120_000) {
    await sleep(1000);
    const now = invocationsOf(await totals(o.url));
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 5_000) return stableSince - started;
  }
  return null;
}

export async function groupsScenario(o: GroupsOptions): Promise<GroupsResult> {
  const names = Array.from({ length: o.count }, (_, i) => `bench-g${i}`);
  const rss0 = workerdRssMb();

  // ---- create, and write each once ----
  const createMs: number[] = [];
  const writeMs: number[] = [];
  let createErrors = 0;
  const t0 = Date.now();
  await pool(names, o.concurrency, async (name) => {
    const c = await call(`${o.url}/v1/groups/${name}`, { method: 'PUT', body: '{"size":3}' });
    if (c.status !== 201 && c.status !== 200) {
      createErrors++;
      if (createErrors <= 3) o.log(`groups: create ${name}: ${c.status} ${JSON.stringify(c.body)}`);
      return;
    }
    createMs.push(c.ms);
    const w = await call(`${o.url}/groups/${name}/v1/kv/k`, { method: 'PUT', body: 'v' });
    if (w.status === 200) writeMs.push(w.ms);
    else createErrors++;
  });
  const createWallS = round((Date.now() - t0) / 1000, 1);
  o.log(`groups: ${createMs.length} created and written in ${createWallS} s (${createErrors} errors)`);

  // ---- an empty group's rows ----
  const empty = await call(`${o.url}/v1/groups/bench-empty`, { method: 'PUT', body: '{"size":3}' });
  const incarnation = (empty.body as { incarnation?: number }).incarnation;
  const tables: Record<string, number> = {};
  let rows = 0;
  let bytes = 0;
  for (let i = 0; i < 3; i++) {
    const r = await call(
      `${o.url}/bench/object/rows?name=${encodeURIComponent(`g/bench-empty/${incarnation}:node-${i}`)}`,
    );
    const b = r.body as { tables: Record<string, number>; databaseSize: number };
    if (r.status !== 200 || !b.tables)
      throw new Error(
        `rows of bench-empty: ${r.status} ${JSON.stringify(r.body)} (create: ${empty.status} ${JSON.stringify(empty.body)})`,
      );
    for (const [t, n] of Object.entries(b.tables)) tables[t] = (tables[t] ?? 0) + n / 3;
    rows += Object.values(b.tables).reduce((a, n) => a + n, 0);
    bytes += b.databaseSize;
  }

  const rss1 = workerdRssMb();
  const known1 = (await call(`${o.url}/bench/known-groups`)).body as { count: number; limit: number };
  // ---- every group read once more: the Worker's caches and the runtime must not grow ----
  await pool(names, o.concurrency, async (name) => {
    await call(`${o.url}/groups/${name}/v1/kv/k`);
  });
  const rss2 = workerdRssMb();
  const known2 = (await call(`${o.url}/bench/known-groups`)).body as { count: number; limit: number };
  o.log(`groups: workerd RSS ${rss0} -> ${rss1} -> ${rss2} MB; groups remembered ${known1.count} -> ${known2.count}`);

  // ---- idle: every object of the deployment ----
  let idle: GroupsResult['idle'] = null;
  let rss3: number | null = null;
  if (o.idleMs > 0) {
    const quietAfterMs = await untilQuiet(o);
    const before = await totals(o.url);
    await sleep(o.idleMs);
    const after = await totals(o.url);
    const invocations = invocationsOf(after) - invocationsOf(before);
    idle = {
      quietAfterMs,
      windowMs: o.idleMs,
      objects: after.objects,
      invocations,
      invocationsPerIdleMinute: round((invocations * 60_000) / o.idleMs, 2),
    };
    rss3 = workerdRssMb();
    o.log(`groups idle: ${JSON.stringify(idle)}; workerd RSS ${rss3} MB`);
  }

  // ---- the same load over 1, 10, 100 groups ----
  const spread: SpreadRow[] = [];
  const matched: MatchedRow[] = [];
  const perGroupClients = (n: number) => Math.max(1, Math.round(o.clients / n));
  const loads: readonly SpreadLoad[] = ['put', 'get-serializable'];
  for (let rep = 0; rep < o.repeat; rep++) {
    for (const n of o.spreads) {
      const bases = names.slice(0, n).map((g) => `${o.url}/groups/${g}`);
      // From quiet (a spread's groups heartbeat for a while after it, which would load the next run),
      // then every group of the spread woken, and the key the reads read written.
      await untilQuiet(o);
      await pool(bases, o.concurrency, async (b) => {
        await call(`${b}/v1/kv/${READ_KEY}0`, { method: 'PUT', body: 'v' });
      });
      const awake0 = invocationsOf(await totals(o.url));
      const awakeCpu0 = workerdCpuMs();
      await sleep(1000);
      const awakeCpuMsPerSec = round(workerdCpuMs() - awakeCpu0, 0);
      let before = await totals(o.url);
      const awakePerSec = invocationsOf(before) - awake0;
      for (const load of loads) {
        const cpu0 = workerdCpuMs();
        const r = await o.runLoad(
          {
            base: bases[0] as string,
            bases,
            basePerOp: true,
            scenario: load,
            clients: o.clients,
            warmupMs: o.warmupMs,
            durationMs: o.durationMs,
            ...(load === 'put' ? { keys: 100 } : { keys: 1, keyPrefix: READ_KEY }),
          },
          `groups-${n}-${load}`,
          rep,
        );
        const cpuMs = workerdCpuMs() - cpu0;
        const after = await totals(o.url);
        const ops = Math.max(1, r.totalOps);
        const row = {
          load,
          groups: n,
          repeat: rep,
          opsPerSec: round(r.opsPerSec, 1),
          p99Ms: round(r.p99Ms),
          ...(r.servedMs?.length ? { servedP99Ms: percentiles(r.servedMs).p99Ms } : {}),
          errors: r.errors,
          invocationsPerPut: round((invocationsOf(after) - invocationsOf(before)) / ops, 3),
          alarmsPerOp: round((after.alarms - before.alarms) / ops, 3),
          awakePerSec,
          cpuMsPerOp: round(cpuMs / ops, 3),
          awakeCpuMsPerSec,
        };
        before = after;
        spread.push(row);
        o.log(
          `groups spread ${n} ${load}${o.repeat > 1 ? ` #${rep + 1}` : ''}: ${row.opsPerSec} ops/s p99 ${row.p99Ms}${row.servedP99Ms === undefined ? '' : ` (served ${row.servedP99Ms})`}, ${row.invocationsPerPut} invocations/op (${row.alarmsPerOp} alarms; ${awakePerSec}/s awake without load), workerd CPU ${row.cpuMsPerOp} ms/op (${awakeCpuMsPerSec} ms/s awake), errors ${row.errors}`,
        );
        if (r.errors > 0) o.log(`  errors: ${r.errorSample.join(' | ')}`);
      }
    }
    // One group under each spread's per-group load, from quiet as the spreads are.
    for (const n of o.spreads.filter((x) => x > 1)) {
      const base = `${o.url}/groups/${names[0]}`;
      await untilQuiet(o);
      await call(`${base}/v1/kv/${READ_KEY}0`, { method: 'PUT', body: 'v' });
      await sleep(1000);
      const clients = perGroupClients(n);
      const cpu0 = workerdCpuMs();
      const r = await o.runLoad(
        { base, scenario: 'put', clients, warmupMs: o.warmupMs, durationMs: o.durationMs, keys: 100 },
        `groups-matched-${n}`,
        rep,
      );
      const row = {
        groups: n,
        clients,
        repeat: rep,
        opsPerSec: round(r.opsPerSec, 1),
        cpuMsPerOp: round((workerdCpuMs() - cpu0) / Math.max(1, r.totalOps), 3),
      };
      matched.push(row);
      o.log(
        `groups matched ${n}${o.repeat > 1 ? ` #${rep + 1}` : ''}: one group, ${clients} put clients: ${row.opsPerSec} ops/s, workerd CPU ${row.cpuMsPerOp} ms/put, errors ${r.errors}`,
      );
    }
  }
  const spreadMedians = loads.flatMap((load) => {
    const of = spread.filter((s) => s.load === load);
    const one = median(of.filter((s) => s.groups === o.spreads[0]).map((s) => s.opsPerSec));
    return o.spreads.map((n) => {
      const same = of.filter((s) => s.groups === n);
      const ops = median(same.map((s) => s.opsPerSec));
      return {
        load,
        groups: n,
        opsPerSec: round(ops, 1),
        p99Ms: round(median(same.map((s) => s.p99Ms))),
        ratio: round(ops / one, 3),
        invocationsPerPut: round(median(same.map((s) => s.invocationsPerPut)), 3),
        alarmsPerOp: round(median(same.map((s) => s.alarmsPerOp)), 3),
        awakePerSec: median(same.map((s) => s.awakePerSec)),
        cpuMsPerOp: round(median(same.map((s) => s.cpuMsPerOp)), 3),
        awakeCpuMsPerSec: median(same.map((s) => s.awakeCpuMsPerSec)),
      };
    });
  });
  const matchedMedians = o.spreads
    .filter((n) => n > 1)
    .map((n) => {
      const same = matched.filter((m) => m.groups === n);
      return {
        groups: n,
        clients: perGroupClients(n),
        opsPerSec: round(median(same.map((m) => m.opsPerSec)), 1),
        cpuMsPerOp: round(median(same.map((m) => m.cpuMsPerOp)), 3),
      };
    });

  return {
    count: names.length,
    createWallS,
    create: percentiles(createMs),
    firstWrite: percentiles(writeMs),
    createErrors,
    emptyGroup: {
      rowsPerNode: round(rows / 3, 1),
      rowsPerGroup: rows,
      tables: Object.fromEntries(Object.entries(tables).map(([t, n]) => [t, round(n, 1)])),
      bytesPerNode: Math.round(bytes / 3),
    },
    memory: {
      workerdRssMb: { before: rss0, afterCreate: rss1, afterSecondPass: rss2, afterIdle: rss3 },
      knownGroups: { afterCreate: known1.count, afterSecondPass: known2.count, limit: known1.limit },
    },
    idle,
    spread,
    spreadMedians,
    matched,
    matchedMedians,
  };
}

export function groupsSummary(r: GroupsResult | null): string[] {
  if (!r) return [];
  const lines = [
    `groups: ${r.count} created in ${r.createWallS} s (create p50 ${r.create.p50Ms} ms, p99 ${r.create.p99Ms} ms; first write p50 ${r.firstWrite.p50Ms} ms, p99 ${r.firstWrite.p99Ms} ms; ${r.createErrors} errors)`,
    `groups: an empty group stores ${r.emptyGroup.rowsPerGroup} rows (${r.emptyGroup.rowsPerNode} per node, ${r.emptyGroup.bytesPerNode} bytes per node)`,
    `groups: workerd RSS ${r.memory.workerdRssMb.before} MB before, ${r.memory.workerdRssMb.afterCreate} after creating, ${r.memory.workerdRssMb.afterSecondPass} after a second pass, ${r.memory.workerdRssMb.afterIdle ?? '-'} after idling; the Worker remembers ${r.memory.knownGroups.afterSecondPass} groups (limit ${r.memory.knownGroups.limit})`,
  ];
  if (r.idle)
    lines.push(
      `groups idle: ${r.idle.invocations} invocations over ${r.idle.windowMs} ms across ${r.idle.objects} objects (${r.idle.invocationsPerIdleMinute} per idle minute; quiet after ${r.idle.quietAfterMs} ms)`,
    );
  for (const m of r.spreadMedians)
    lines.push(
      `groups spread over ${m.groups}, ${m.load}: ${m.opsPerSec} ops/s, p99 ${m.p99Ms} ms, ratio to one group ${m.ratio}; ${m.invocationsPerPut} Durable Object invocations per operation; ${m.awakePerSec} invocations/s with the groups awake and no load; workerd CPU ${m.cpuMsPerOp} ms per operation (${m.awakeCpuMsPerSec} ms/s awake without load)`,
    );
  for (const m of r.matchedMedians)
    lines.push(
      `groups matched load: one group under ${m.clients} put clients (each group's share over ${m.groups} groups): ${m.opsPerSec} ops/s, workerd CPU ${m.cpuMsPerOp} ms per put`,
    );
  return lines;
}
