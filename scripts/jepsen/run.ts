/**
 * Jepsen-style fault run against a local durable-raft cluster (wrangler dev):
 *
 *   npm run jepsen -- [--workload kv|lock|lease] [--nodes 3|5] [--clients 8] [--duration 30] [--seed 7]
 *                     [--faults partition,crash,restart,slow,transfer,member,compact] [--cover]
 *                     [--history out.jsonl] [--op-timeout-ms 3000] [--recovery-ms 5000] [--keep]
 *                     [--groups N] [--group-size 3|5]
 *
 * Starts `wrangler dev --config wrangler.jepsen.toml` (127.0.0.1, a free port, a
 * fresh --persist-to dir), runs concurrent clients of one workload while a
 * seeded nemesis (nemesis.ts) partitions, crashes, restarts (kill -9 of the
 * whole workerd) and slows nodes, and, as an operator would through the
 * public API (operator-faults.ts), transfers leadership, changes the
 * membership (remove and re-add a voter, replace one by a fresh node, remove
 * the leader) and compacts the leader's Raft log past a cut-off follower;
 * heals, then checks the workload and the cluster. Every fault kind is
 * drawn by default; --cover injects each listed fault once before drawing.
 *
 * --workload kv (the default): linearizable get, put, cas by value, delete on 5
 * keys, unique values; checks (1) the history is linearizable, (2) no
 * acknowledged write is lost. --workload lock (lock-workload.ts): clients
 * contend for one lock and write a register through fenced txns; checks that
 * holders never overlap, fencing tokens increase, and fenced writes land only
 * inside their holder's interval. --workload lease (lease-workload.ts): leases
 * with keys, renewed then let go; checks that no key goes before its TTL, that
 * every key goes within a bound, and that a lease's keys go in one revision.
 * For every workload: (3) every replica of the final membership (voters and
 * learners) converges (same applied index, same key-space hash), (4) writes
 * succeed again within --recovery-ms of the last heal, and with --watchers,
 * (5) the watchers saw the whole history.
 *
 * --groups N (groups.ts) also creates N groups (PUT /v1/groups/jepsen-i, 3
 * voters each, or --group-size) and runs the workload, with its own clients
 * and watchers, on the default group and on every one of them at once, while
 * each fault hits several groups (nemesis.ts; the directory of groups is hit
 * too). Each group's history is judged on its own by every check above, plus
 * (6) no value written in one group is ever seen in another; then the
 * directory's replicas must converge. Exits 1 on an anomaly in any group
 * (printing the seed and the replay command), 2 on a harness error.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { GROUP_SIZES, memberIds } from '../../src/api/groups/names.ts';
import { Cluster, type RaftGroup } from './cluster.ts';
import {
  type Check,
  DEFAULT_FAULTS,
  FAULT_KINDS,
  type FaultClock,
  type FaultEvent,
  type FaultKind,
  http,
  nowS,
  type Observation,
  Rng,
  type Workload,
  type WorkloadContext,
} from './common.ts';
import {
  createGroup,
  crossGroupCheck,
  deploymentPrefix,
  directoryPlace,
  groupNames,
  valueTag,
  writersOf,
} from './groups.ts';
import type { JRecord } from './history.ts';
import { type KvWorkload, kvWorkload } from './kv-workload.ts';
import { leaseWorkload } from './lease-workload.ts';
import { lockWorkload } from './lock-workload.ts';
import { heal, nemesis, type Target } from './nemesis.ts';
import { freePorts, fs, os, path, proc, sleep } from './node-api.ts';
import { checkWatchers, newWatcher, runWatcher, type Watcher, watchedValues } from './watchers.ts';

const WORKLOADS = ['kv', 'lock', 'lease'] as const;
type WorkloadKind = (typeof WORKLOADS)[number];

interface Args {
  workload: WorkloadKind;
  nodes: number;
  clients: number;
  duration: number;
  faults: FaultKind[];
  seed: number;
  history: string | undefined;
  opTimeoutMs: number;
  recoveryMs: number;
  keep: boolean;
  watchers: number;
  cover: boolean;
  groups: number;
  groupSize: number;
}

const USAGE =
  'usage: npm run jepsen -- [--workload kv|lock|lease] [--nodes 3|5] [--clients N] [--duration S]\n' +
  `                         [--faults K,K,...|none] [--cover] [--seed N] [--history out.jsonl] [--op-timeout-ms MS]\n` +
  '                         [--recovery-ms MS] [--keep] [--watchers N] [--groups N] [--group-size 3|5]\n' +
  `  fault kinds: ${FAULT_KINDS.join(', ')} (default ${DEFAULT_FAULTS.join(',')})\n` +
  '  --cover: inject each listed fault once first, in the order listed, then draw from the seed';

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    workload: 'kv',
    nodes: 3,
    clients: 8,
    duration: 30,
    faults: [...DEFAULT_FAULTS],
    seed: Math.floor(Math.random() * 1e9),
    history: undefined,
    opTimeoutMs: 3000,
    recoveryMs: 5000,
    keep: false,
    watchers: 0,
    cover: false,
    groups: 0,
    groupSize: 3,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = (lo: number, hi: number): number => {
      const n = Number(val());
      if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${flag}: expected an integer in ${lo}..${hi}`);
      return n;
    };
    switch (flag) {
      case '--workload': {
        const v = val();
        if (!(WORKLOADS as readonly string[]).includes(v)) throw new Error(`--workload: expected one of ${WORKLOADS}`);
        a.workload = v as WorkloadKind;
        break;
      }
      case '--nodes':
        a.nodes = int(1, 9);
        break;
      case '--clients':
        a.clients = int(1, 64);
        break;
      case '--duration':
        a.duration = int(5, 3600);
        break;
      case '--seed':
        a.seed = int(0, 2 ** 31);
        break;
      case '--history':
        a.history = val();
        break;
      case '--op-timeout-ms':
        a.opTimeoutMs = int(500, 60_000);
        break;
      case '--recovery-ms':
        a.recoveryMs = int(100, 120_000);
        break;
      case '--keep':
        a.keep = true;
        break;
      case '--cover':
        a.cover = true;
        break;
      case '--watchers':
        a.watchers = int(0, 64);
        break;
      case '--groups':
        a.groups = int(0, 16);
        break;
      case '--group-size': {
        const n = int(1, 9);
        if (!GROUP_SIZES.includes(n)) throw new Error(`--group-size: expected one of ${GROUP_SIZES.join(', ')}`);
        a.groupSize = n;
        break;
      }
      case '--faults': {
        const v = val();
        const list = v === 'none' || v === '' ? [] : v.split(',');
        for (const f of list)
          if (!(FAULT_KINDS as readonly string[]).includes(f)) throw new Error(`--faults: unknown fault ${f}`);
        a.faults = list as FaultKind[];
        break;
      }
      case '--help':
      case '-h':
        console.log(USAGE);
        proc.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return a;
}

const PROBE_KEY = 'jepsen-probe';

/** The self-test of the cross-group check (JEPSEN_SELF_TEST=misroute-reads): see kv-workload.ts. */
const SELF_TEST = proc.env.JEPSEN_SELF_TEST;

// ---- checks ----

/**
 * Every member of the final membership (the leader's voters and learners,
 * nodes added during the run included, removed ones not) has the same
 * applied index and the same key-space hash. `values` gets the values of
 * every member's key space as last read (for the cross-group check).
 */
async function convergence(
  cluster: RaftGroup,
  timeoutMs: number,
  values: Observation[] = [],
  others = 'removed',
): Promise<Check> {
  const name = 'replicas converge';
  const deadline = Date.now() + timeoutMs;
  let last = '';
  let held: Observation[] = [];
  const done = (c: Check): Check => {
    values.push(...held);
    return c;
  };
  while (Date.now() < deadline) {
    try {
      const m = await cluster.membership();
      if (!m) throw new Error('no leader answers');
      const members = [...m.voters, ...m.learners].sort();
      const sts = await Promise.all(members.map((n) => cluster.status(n)));
      const dumps = await Promise.all(members.map((n) => cluster.dump(n)));
      held = dumps.flatMap((d, i) =>
        d.kvs.map((kv) => ({ value: kv.value, what: `replica ${members[i]} holds ${kv.key} (mod ${kv.mod})` })),
      );
      const applied = sts.map((s) => s.applied);
      const hashes = dumps.map((d) => d.hash.slice(0, 12));
      const removed = cluster.nodes.filter((n) => !members.includes(n));
      last =
        members
          .map(
            (n, i) =>
              `${n}${m.learners.includes(n) ? ' (learner)' : ''}: applied ${applied[i]} rev ${dumps[i]?.revision} ${hashes[i]}`,
          )
          .join('; ') + (removed.length > 0 ? `; ${others}: ${removed.join(', ')}` : '');
      if (new Set(applied).size === 1 && new Set(hashes).size === 1) return done({ name, ok: true, detail: last });
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(500);
  }
  return done({ name, ok: false, detail: `not within ${timeoutMs} ms: ${last}` });
}

/**
 * The directory's membership is still the configured nodes: nothing in a run
 * changes it through the log (its member faults act on the groups under
 * test), so any other voter or learner came from somewhere else.
 */
async function directoryMembership(directory: RaftGroup): Promise<Check> {
  const name = 'directory membership unchanged';
  const m = await directory.membership().catch(() => undefined);
  if (!m) {
    const sts = await Promise.all(
      directory.nodes.map(async (n) => {
        const st = await directory.status(n).catch((e) => (e as Error).message.slice(0, 80));
        if (typeof st === 'string') return `${n}: ${st}`;
        return `${n}: ${st.role} term ${st.term} commit ${st.commit} applied ${st.applied} last ${st.lastIndex} voters [${st.conf.voters}] learners [${st.conf.learners}]`;
      }),
    );
    return { name, ok: false, detail: `no leader answers: ${sts.join('; ')}` };
  }
  const want = [...directory.configured].sort().join(',');
  const voters = [...m.voters].sort().join(',');
  if (voters === want && m.learners.length === 0)
    return { name, ok: true, detail: `voters [${voters}] (${m.leader} leads in term ${m.term})` };
  return {
    name,
    ok: false,
    detail: `${m.leader} (term ${m.term}) has voters [${voters}] and learners [${m.learners.sort()}], not the configured [${want}]; no request of this run changed it`,
  };
}

/** Writes the probe key (`<tag>p<i>`) until one succeeds; the time from `since` (s) in ms, or undefined. */
async function recovery(
  base: string,
  tag: string,
  since: number,
  boundMs: number,
  opTimeoutMs: number,
): Promise<number | undefined> {
  const deadline = since + (boundMs + opTimeoutMs) / 1000;
  for (let i = 0; nowS() < deadline; i++) {
    const r = await http(base, 'PUT', `/v1/kv/${PROBE_KEY}`, `${tag}p${i}`, opTimeoutMs);
    if (!('error' in r) && r.status === 200) return Math.round((nowS() - since) * 1000);
    await sleep(100);
  }
  return undefined;
}

/**
 * Lets the watchers run until they reach the store's revision now (or 20 s),
 * reads the whole history once more with a fresh watcher, and compares.
 * `values` gets every value the watchers and that history saw.
 */
async function watchCheck(
  base: string,
  watchers: Watcher[],
  watching: Promise<void>[],
  records: readonly JRecord[],
  setDeadline: (ms: number) => void,
  values: Observation[],
): Promise<Check> {
  const name = 'watchers see the history';
  const r = await http(base, 'GET', '/v1/kv?start=!&end=~&count_only=true', undefined, 10_000);
  if ('error' in r || r.status !== 200) {
    setDeadline(0);
    await Promise.all(watching);
    return { name, ok: false, detail: `could not read the final revision: ${'error' in r ? r.error : r.status}` };
  }
  const until = (JSON.parse(r.text) as { revision: number }).revision;
  for (const w of watchers) w.until = until;
  setDeadline(Date.now() + 20_000);
  const reference = newWatcher(0);
  reference.until = until;
  const referenceDeadline = Date.now() + 20_000;
  await Promise.all([...watching, runWatcher(reference, base, () => referenceDeadline)]);
  values.push(...watchedValues(watchers, reference.seen));
  const c = checkWatchers(watchers, reference.seen, until, records);
  return { name, ok: c.ok, detail: c.detail };
}

// ---- one group's part of the run ----

/** A group under test: its workload, watchers, checks and history file. */
interface GroupRun {
  readonly cluster: RaftGroup;
  readonly tag: string;
  readonly work: Workload;
  /** The kv workload's records (the watchers' check reads them); empty for lock and lease. */
  readonly records: JRecord[];
  readonly watchers: Watcher[];
  readonly watching: Promise<void>[];
  watchDeadline: number;
  readonly historyPath: string;
  readonly checks: Check[];
  recoveryMs: number | undefined;
  /** What the watchers and the replicas' key spaces held, for the cross-group check. */
  readonly seen: Observation[];
}

/** Client seeds of group `index` (0: the default group, seeded as a run of one group always was). */
function groupSeed(seed: number, index: number): number {
  return index === 0 ? seed : seed * 100 + index;
}

function startGroup(
  args: Args,
  cluster: RaftGroup,
  index: number,
  tag: string,
  shared: Omit<WorkloadContext, 'base' | 'tag' | 'clients' | 'seed' | 'opTimeoutMs'>,
  historyPath: string,
  misrouteReadsTo: string | undefined,
): GroupRun {
  const ctx: WorkloadContext = {
    ...shared,
    base: cluster.base,
    tag,
    clients: args.clients,
    seed: groupSeed(args.seed, index),
    opTimeoutMs: args.opTimeoutMs,
  };
  let kv: KvWorkload | undefined;
  let work: Workload;
  if (args.workload === 'lock') work = lockWorkload(ctx);
  else if (args.workload === 'lease') work = leaseWorkload(ctx);
  else {
    kv = kvWorkload(ctx, misrouteReadsTo ? { misrouteReadsTo } : {});
    work = kv;
  }
  // Watchers (half SSE, half WebSocket) follow every change through the faults, resuming after each cut.
  const watchers = Array.from({ length: args.watchers }, (_, i) => newWatcher(i));
  const g: GroupRun = {
    cluster,
    tag,
    work,
    records: kv?.records ?? [],
    watchers,
    watching: [],
    watchDeadline: Number.POSITIVE_INFINITY,
    historyPath,
    checks: [],
    recoveryMs: undefined,
    seen: [],
  };
  for (const w of watchers) g.watching.push(runWatcher(w, cluster.base, () => g.watchDeadline));
  return g;
}

/** The history file of one group: the path asked for with a run of one group, `<path>-<group>.jsonl` with several. */
function historyPathOf(path0: string, group: string, several: boolean): string {
  return several ? `${path0.replace(/\.jsonl$/, '')}-${group}.jsonl` : path0;
}

// ---- main ----

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(proc.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const several = args.groups > 0;
  const replay = `${SELF_TEST ? `JEPSEN_SELF_TEST=${SELF_TEST} ` : ''}npm run jepsen -- ${args.workload === 'kv' ? '' : `--workload ${args.workload} `}--nodes ${args.nodes} --clients ${args.clients} --duration ${args.duration} --faults ${args.faults.join(',') || 'none'} --seed ${args.seed}${args.watchers > 0 ? ` --watchers ${args.watchers}` : ''}${args.cover ? ' --cover' : ''}${several ? ` --groups ${args.groups}${args.groupSize !== 3 ? ` --group-size ${args.groupSize}` : ''}` : ''}`;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'durable-raft-jepsen-'));
  const historyPath = path.resolve(args.history ?? path.join(workDir, 'history.jsonl'));
  const nodes = Array.from({ length: args.nodes }, (_, i) => `node-${i}`);
  const [port, inspectorPort] = await freePorts(2);
  const cluster = new Cluster(nodes, port, inspectorPort, workDir);

  // Whatever happens, stop what we started, and never run unbounded.
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    cluster.kill();
    if (!args.keep) cluster.removeState();
  };
  proc.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    proc.on(sig, () => {
      console.error(`\n${sig}: stopping the cluster`);
      cleanup();
      proc.exit(130);
    });
  }
  const hardLimitS = args.duration + 150 + 60 * args.groups;
  const hard = setTimeout(() => {
    console.error(`harness error: the run exceeded its ${hardLimitS} s bound; seed ${args.seed}; replay: ${replay}`);
    cleanup();
    proc.exit(2);
  }, hardLimitS * 1000);

  console.log(
    `jepsen: ${args.workload === 'kv' ? '' : `workload ${args.workload}, `}${args.nodes} nodes, ${args.clients} clients, ${args.duration} s, faults ${args.faults.join(',') || 'none'}, seed ${args.seed}${several ? `; ${args.groups} more groups of ${args.groupSize}, ${args.clients} clients each` : ''}`,
  );
  console.log(`  work dir ${workDir} (wrangler log: ${cluster.log})`);
  const tStart = nowS();
  await cluster.start();
  // Wait for a leader before the clock starts (a cold start elects in well under a second).
  for (let i = 0; i < 100; i++) {
    const r = await http(cluster.base, 'GET', '/readyz', undefined, 3000);
    if (!('error' in r) && r.status === 200) break;
    await sleep(200);
  }
  const startupS = nowS() - tStart;
  console.log(`  cluster up in ${startupS.toFixed(1)} s`);

  // The groups under test: the default one, then those created now (each must take writes before the clock starts).
  const clusters: RaftGroup[] = [cluster];
  let directory: RaftGroup | undefined;
  if (several) {
    const tGroups = nowS();
    const prefix = await deploymentPrefix(cluster.base);
    const places = await Promise.all(
      groupNames(args.groups).map((name) => createGroup(cluster.base, name, args.groupSize, prefix, nowS() + 60)),
    );
    for (const place of places) clusters.push(cluster.group(place, memberIds(args.groupSize)));
    directory = cluster.group(directoryPlace(prefix), nodes);
    console.log(
      `  groups       ${places.map((p) => `${p.name} (${p.objectPrefix}*)`).join(', ')} created in ${(nowS() - tGroups).toFixed(1)} s`,
    );
  }
  const misroute = SELF_TEST === 'misroute-reads' && clusters.length >= 3 ? clusters[2]?.base : undefined;
  if (SELF_TEST !== undefined) {
    if (!misroute) {
      console.error(`JEPSEN_SELF_TEST=${SELF_TEST}: only misroute-reads, with --groups 2 or more`);
      cleanup();
      return 2;
    }
    console.log(
      `  SELF-TEST    ${clusters[1]?.name}'s client 0 reads from ${clusters[2]?.name}'s routes: the run must fail`,
    );
  }

  const rng = new Rng(args.seed);
  const events: FaultEvent[] = [];
  const live: FaultClock = { active: false, lastHeal: 0 };
  const t0 = nowS();
  const stop = { at: t0 + args.duration };
  // Same seeds per client in every workload, same nemesis schedule; each group its own clients and watchers.
  const shared = { stop, t0, faults: live, events };
  const runs = clusters.map((c, i) =>
    startGroup(
      args,
      c,
      i,
      several ? valueTag(c.name) : '',
      shared,
      historyPathOf(historyPath, c.name, several),
      i === 1 ? misroute : undefined,
    ),
  );
  // A client that throws is a harness error (exit 2), caught at once (never an unhandled rejection).
  let workError: unknown;
  const working = runs.map((g) =>
    g.work.running.catch((e) => {
      console.error(
        `harness error in the ${args.workload} clients of ${g.cluster.name}: ${(e as Error).stack}; seed ${args.seed}; replay: ${replay}`,
      );
      workError = e ?? new Error('workload failed');
    }),
  );
  const stopWatchers = () => {
    for (const g of runs) g.watchDeadline = 0;
  };
  const watching = runs.flatMap((g) => g.watching);
  const targets: Target[] = [
    ...clusters.map((c, i) => ({ cluster: c, size: i === 0 ? args.nodes : args.groupSize, operated: true })),
    ...(directory ? [{ cluster: directory, size: args.nodes, operated: false }] : []),
  ];
  const nemesisOpts = { faults: args.faults, cover: args.cover };
  const nem = nemesis(cluster, targets, nemesisOpts, new Rng(rng.int(2 ** 31)), events, t0, stop.at, live).catch(
    (e) => {
      console.error(`harness error in the nemesis: ${(e as Error).stack}`);
      throw e;
    },
  );
  let nemesisError: unknown;
  await nem.catch((e) => {
    nemesisError = e;
  });
  if (nemesisError) {
    stop.at = 0;
    stopWatchers();
    await Promise.all([...watching, ...working]);
    cleanup();
    return 2;
  }
  // Make sure everything is healed (a no-op if the nemesis did so), and time the recovery of every group.
  await Promise.all(targets.map((t) => heal(t.cluster)));
  const lastHeal = nowS();
  const lastFaultHeal = events.length > 0 ? (events[events.length - 1]?.healed ?? lastHeal - t0) : lastHeal - t0;
  await Promise.all(
    runs.map(async (g) => {
      g.recoveryMs = await recovery(g.cluster.base, g.tag, lastHeal, args.recoveryMs, args.opTimeoutMs);
    }),
  );
  await Promise.all(working);
  if (workError) {
    stopWatchers();
    await Promise.all(watching);
    cleanup();
    return 2;
  }
  const runS = nowS() - t0;
  // The workloads' own checks, one group after the other (the linearizability checker holds the CPU) ...
  for (const g of runs) {
    g.checks.push(...(await g.work.check()));
    fs.writeFileSync(g.historyPath, `${g.work.lines().join('\n')}\n`);
  }
  // ... then (3) convergence, (5) watchers, (4) recovery, every group at once.
  await Promise.all(
    runs.map(async (g) => {
      g.checks.push(await convergence(g.cluster, 20_000, g.seen));
      if (g.watchers.length > 0) {
        const sorted = [...g.records].sort((a, b) => a.call - b.call);
        g.checks.push(
          await watchCheck(g.cluster.base, g.watchers, g.watching, sorted, (d) => (g.watchDeadline = d), g.seen),
        );
      }
      g.checks.push({
        name: `writes within ${args.recoveryMs} ms of last heal`,
        ok: g.recoveryMs !== undefined && g.recoveryMs <= args.recoveryMs,
        detail:
          g.recoveryMs === undefined
            ? 'no write succeeded'
            : `first write ${g.recoveryMs} ms after the final heal (last fault healed at ${lastFaultHeal.toFixed(1)} s)`,
      });
    }),
  );
  // (6) nothing of one group seen in another
  const overall: Check[] = [];
  if (several) {
    const writers = writersOf(runs.map((g) => ({ group: g.cluster.name, written: g.work.written() })));
    for (const g of runs) g.checks.push(crossGroupCheck(g.cluster.name, [...g.work.observed(), ...g.seen], writers));
    if (directory) {
      // The Worker finds the directory on CLUSTER_NODES, which restarts take from the default group's nodes.
      for (const n of cluster.nodes) directory.addNode(n);
      const converged = await convergence(directory, 20_000, [], 'not members');
      overall.push({ ...converged, name: 'directory replicas converge' });
      overall.push(await directoryMembership(directory));
    }
  }

  cleanup();
  clearTimeout(hard);

  // ---- summary ----
  const byKind = new Map<string, number>();
  for (const e of events) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + 1);
  const faultsLine = `  faults       ${events.length}${events.length ? ` (${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}; wrangler starts ${cluster.starts}`;
  const printChecks = (checks: readonly Check[]) => {
    console.log(`  ${'check'.padEnd(34)} result`);
    for (const c of checks) console.log(`  ${c.name.padEnd(34)} ${c.ok ? 'PASS' : 'FAIL'}  ${c.detail}`);
  };
  const summaryOf = (g: GroupRun) =>
    args.workload === 'kv'
      ? g.work.summary(runS)
      : [`  run          ${runS.toFixed(1)} s, ${args.clients} clients`, ...g.work.summary(runS)];
  if (!several) {
    const g = runs[0] as GroupRun;
    console.log('');
    for (const line of summaryOf(g)) console.log(line);
    console.log(faultsLine);
    console.log(`  history      ${g.historyPath}`);
    console.log('');
    printChecks(g.checks);
  } else {
    for (const g of runs) {
      const hit = events.filter((e) => e.groups.includes(g.cluster.name)).length;
      console.log('');
      console.log(
        `  == group ${g.cluster.name} (objects ${g.cluster.objectPrefix}node-*; hit by ${hit} of ${events.length} faults) ==`,
      );
      for (const line of summaryOf(g)) console.log(line);
      console.log(`  history      ${g.historyPath}`);
      console.log('');
      printChecks(g.checks);
    }
    console.log('');
    console.log('  == all groups ==');
    console.log(faultsLine);
    printChecks(overall);
    const verdict = (g: GroupRun) => {
      const bad = g.checks.filter((c) => !c.ok);
      return `${g.cluster.name} ${bad.length === 0 ? 'OK' : `ANOMALY (${bad.map((c) => c.name).join('; ')})`}`;
    };
    console.log(`  verdicts     ${runs.map(verdict).join(', ')}`);
  }
  console.log(`  total time   ${(nowS() - tStart).toFixed(1)} s (startup ${startupS.toFixed(1)} s)`);
  const bad = [
    ...runs.flatMap((g) => g.checks.filter((c) => !c.ok).map((c) => ({ g, c }))),
    ...overall.filter((c) => !c.ok).map((c) => ({ g: undefined, c })),
  ];
  if (bad.length > 0) {
    const names = bad.map(({ g, c }) => (several && g ? `${g.cluster.name}: ${c.name}` : c.name));
    console.log(`\nANOMALY (${names.join('; ')}): seed ${args.seed}`);
    console.log(`replay: ${replay}`);
    console.log(`(faults and op choices replay from the seed; timing does not, so a replay may not hit it again)`);
    return 1;
  }
  console.log('\nOK');
  return 0;
}

main().then(
  (code) => {
    proc.exitCode = code;
    // Keep-alive sockets and stray timers must not hold the process open.
    setTimeout(() => proc.exit(code), 500);
  },
  (e) => {
    console.error(`harness error: ${(e as Error).stack ?? e}`);
    proc.exit(2);
  },
);
