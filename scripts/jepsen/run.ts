/**
 * Jepsen-style fault run against a local durable-raft cluster (wrangler dev):
 *
 *   npm run jepsen -- [--workload kv|lock|lease] [--nodes 3|5] [--clients 8] [--duration 30] [--seed 7]
 *                     [--faults partition,crash,restart,slow,transfer,member,compact] [--cover]
 *                     [--history out.jsonl] [--op-timeout-ms 3000] [--recovery-ms 5000] [--keep]
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
 * (5) the watchers saw the whole history. Exits 1
 * on an anomaly (printing the seed and the replay command), 2 on a harness
 * error. Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { checkLinearizable } from '../../test/support/linearizability.ts';
import { Cluster } from './cluster.ts';
import {
  type Check,
  DEFAULT_FAULTS,
  FAULT_KINDS,
  type FaultClock,
  type FaultEvent,
  type FaultKind,
  type HttpResult,
  http,
  nowNs,
  nowS,
  Rng,
  type Workload,
} from './common.ts';
import { describe, type JRecord, toFileLine, toHistory } from './history.ts';
import { leaseWorkload } from './lease-workload.ts';
import { lockWorkload } from './lock-workload.ts';
import { heal, nemesis } from './nemesis.ts';
import { freePorts, fs, os, path, proc, sleep } from './node-api.ts';
import { checkWatchers, newWatcher, runWatcher, type Watcher } from './watchers.ts';

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
}

const USAGE =
  'usage: npm run jepsen -- [--workload kv|lock|lease] [--nodes 3|5] [--clients N] [--duration S]\n' +
  `                         [--faults K,K,...|none] [--cover] [--seed N] [--history out.jsonl] [--op-timeout-ms MS]\n` +
  '                         [--recovery-ms MS] [--keep] [--watchers N]\n' +
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

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
const PROBE_KEY = 'jepsen-probe';

// ---- HTTP ----

/** Fills in ok/output/error of a write from its HTTP answer. */
function settleWrite(rec: JRecord, r: HttpResult): void {
  if ('error' in r) {
    rec.ok = r.refused ? false : null;
    rec.error = r.error;
    return;
  }
  if (r.status === 200 || (rec.op === 'delete' && r.status === 404)) {
    rec.ok = true;
    return;
  }
  rec.error = String(r.status);
  // 504 (outcome unknown) and 500 (anything unexpected) may have applied; the rest never did.
  rec.ok = r.status === 504 || (r.status >= 500 && r.status !== 503) ? null : false;
}

async function runOp(base: string, rec: JRecord, timeoutMs: number): Promise<void> {
  const key = encodeURIComponent(rec.key);
  if (rec.op === 'get') {
    const r = await http(base, 'GET', `/v1/kv/${key}`, undefined, timeoutMs);
    if ('error' in r) {
      rec.ok = r.refused ? false : null;
      rec.error = r.error;
    } else if (r.status === 200) {
      rec.ok = true;
      rec.output = r.text;
    } else if (r.status === 404 && r.text.includes('key_not_found')) {
      rec.ok = true;
      rec.output = null;
    } else {
      rec.ok = r.status === 503 ? false : null;
      rec.error = String(r.status);
    }
  } else if (rec.op === 'put' || rec.op === 'delete') {
    const r = await http(base, rec.op === 'put' ? 'PUT' : 'DELETE', `/v1/kv/${key}`, rec.value ?? undefined, timeoutMs);
    settleWrite(rec, r);
    // A delete that found nothing (404) wrote no revision.
    if (!('error' in r) && r.status === 200) rec.revision = (JSON.parse(r.text) as { revision: number }).revision;
  } else {
    const expect = rec.expected === null ? { absent: true } : { value: rec.expected };
    const r = await http(
      base,
      'POST',
      '/v1/cas',
      JSON.stringify({ key: rec.key, expect, value: rec.value }),
      timeoutMs,
    );
    if (!('error' in r) && r.status === 200) {
      const body = JSON.parse(r.text) as { succeeded: boolean; revision: number; current?: { value?: string } };
      rec.ok = body.succeeded;
      rec.output = body.current?.value ?? null;
      if (body.succeeded) rec.revision = body.revision;
    } else settleWrite(rec, r);
  }
  rec.return = nowNs();
}

// ---- clients ----

async function client(
  id: number,
  base: string,
  rng: Rng,
  stop: { at: number },
  out: JRecord[],
  opTimeoutMs: number,
): Promise<void> {
  let n = 0;
  const seen = new Map<string, string | null>();
  while (nowS() < stop.at) {
    const key = rng.pick(KEYS);
    const x = rng.next();
    const op: JRecord['op'] = x < 0.4 ? 'get' : x < 0.65 ? 'put' : x < 0.9 ? 'cas' : 'delete';
    const value = op === 'put' || op === 'cas' ? `v${id}-${n++}` : null;
    const expected = op === 'cas' ? (rng.next() < 0.15 ? null : (seen.get(key) ?? null)) : null;
    const rec: JRecord = {
      client: id,
      op,
      key,
      value,
      expected,
      ok: null,
      output: null,
      call: nowNs(),
      return: null,
      error: null,
    };
    out.push(rec);
    await runOp(base, rec, opTimeoutMs);
    if (rec.ok === true && op === 'get') seen.set(key, rec.output);
    else if (rec.ok === true && (op === 'put' || op === 'cas')) seen.set(key, value);
    else if (rec.ok === true && op === 'delete') seen.set(key, null);
    else if (op === 'cas' && rec.ok === false && rec.error === null) seen.set(key, rec.output);
    if (rec.error !== null) await sleep(50 + rng.int(150));
  }
}

// ---- checks ----

/** Reads every key (linearizable) until it succeeds, as recorded ops of client `id`. */
async function finalReads(base: string, id: number, out: JRecord[], opTimeoutMs: number, deadline: number) {
  const result = new Map<string, string | null>();
  for (const key of KEYS) {
    while (nowS() < deadline) {
      const rec: JRecord = {
        client: id,
        op: 'get',
        key,
        value: null,
        expected: null,
        ok: null,
        output: null,
        call: nowNs(),
        return: null,
        error: null,
      };
      out.push(rec);
      await runOp(base, rec, opTimeoutMs);
      if (rec.ok === true) {
        result.set(key, rec.output);
        break;
      }
      await sleep(200);
    }
  }
  return result;
}

function lostWrites(records: readonly JRecord[], finals: Map<string, string | null>): string[] {
  const lost: string[] = [];
  for (const w of records) {
    const wrote = (w.op === 'put' && w.ok === true) || (w.op === 'cas' && w.ok === true);
    if (!wrote || w.return === null) continue;
    if (!finals.has(w.key) || finals.get(w.key) === w.value) continue;
    // Another write on the key that had not finished before w started may come after it.
    const later = records.some(
      (o) => o !== w && o.key === w.key && o.op !== 'get' && o.ok !== false && (o.return === null || o.return > w.call),
    );
    if (!later) lost.push(`${describe(w)} — final value ${JSON.stringify(finals.get(w.key))}`);
  }
  return lost;
}

/**
 * Every member of the final membership (the leader's voters and learners,
 * nodes added during the run included, removed ones not) has the same
 * applied index and the same key-space hash.
 */
async function convergence(cluster: Cluster, timeoutMs: number): Promise<Check> {
  const name = 'replicas converge';
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const m = await cluster.membership();
      if (!m) throw new Error('no leader answers');
      const members = [...m.voters, ...m.learners].sort();
      const sts = await Promise.all(members.map((n) => cluster.status(n)));
      const dumps = await Promise.all(members.map((n) => cluster.dump(n)));
      const applied = sts.map((s) => s.applied);
      const hashes = dumps.map((d) => d.hash.slice(0, 12));
      const removed = cluster.nodes.filter((n) => !members.includes(n));
      last =
        members
          .map(
            (n, i) =>
              `${n}${m.learners.includes(n) ? ' (learner)' : ''}: applied ${applied[i]} rev ${dumps[i]?.revision} ${hashes[i]}`,
          )
          .join('; ') + (removed.length > 0 ? `; removed: ${removed.join(', ')}` : '');
      if (new Set(applied).size === 1 && new Set(hashes).size === 1) return { name, ok: true, detail: last };
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(500);
  }
  return { name, ok: false, detail: `not within ${timeoutMs} ms: ${last}` };
}

/** Writes the probe key until one succeeds; the time from `since` (s) in ms, or undefined. */
async function recovery(
  base: string,
  since: number,
  boundMs: number,
  opTimeoutMs: number,
): Promise<number | undefined> {
  const deadline = since + (boundMs + opTimeoutMs) / 1000;
  for (let i = 0; nowS() < deadline; i++) {
    const r = await http(base, 'PUT', `/v1/kv/${PROBE_KEY}`, `p${i}`, opTimeoutMs);
    if (!('error' in r) && r.status === 200) return Math.round((nowS() - since) * 1000);
    await sleep(100);
  }
  return undefined;
}

// ---- main ----

/**
 * Lets the watchers run until they reach the store's revision now (or 20 s),
 * reads the whole history once more with a fresh watcher, and compares.
 */
async function watchCheck(
  base: string,
  watchers: Watcher[],
  watching: Promise<void>[],
  records: readonly JRecord[],
  setDeadline: (ms: number) => void,
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
  const c = checkWatchers(watchers, reference.seen, until, records);
  return { name, ok: c.ok, detail: c.detail };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(proc.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const replay = `npm run jepsen -- ${args.workload === 'kv' ? '' : `--workload ${args.workload} `}--nodes ${args.nodes} --clients ${args.clients} --duration ${args.duration} --faults ${args.faults.join(',') || 'none'} --seed ${args.seed}${args.watchers > 0 ? ` --watchers ${args.watchers}` : ''}${args.cover ? ' --cover' : ''}`;
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
    if (!args.keep) fs.rmSync(path.join(workDir, 'state'), { recursive: true, force: true });
  };
  proc.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    proc.on(sig, () => {
      console.error(`\n${sig}: stopping the cluster`);
      cleanup();
      proc.exit(130);
    });
  }
  const hardLimitS = args.duration + 150;
  const hard = setTimeout(() => {
    console.error(`harness error: the run exceeded its ${hardLimitS} s bound; seed ${args.seed}; replay: ${replay}`);
    cleanup();
    proc.exit(2);
  }, hardLimitS * 1000);

  console.log(
    `jepsen: ${args.workload === 'kv' ? '' : `workload ${args.workload}, `}${args.nodes} nodes, ${args.clients} clients, ${args.duration} s, faults ${args.faults.join(',') || 'none'}, seed ${args.seed}`,
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

  const rng = new Rng(args.seed);
  const records: JRecord[] = [];
  const events: FaultEvent[] = [];
  const live: FaultClock = { active: false, lastHeal: 0 };
  const t0 = nowS();
  const stop = { at: t0 + args.duration };
  const clients =
    args.workload === 'kv'
      ? Array.from({ length: args.clients }, (_, i) =>
          client(i, cluster.base, new Rng(args.seed * 1000 + i + 1), stop, records, args.opTimeoutMs),
        )
      : [];
  // The lock and lease workloads run their own clients (same seeds per client, same nemesis schedule).
  const ctx = {
    base: cluster.base,
    clients: args.clients,
    seed: args.seed,
    opTimeoutMs: args.opTimeoutMs,
    stop,
    t0,
    faults: live,
    events,
  };
  const work: Workload | undefined =
    args.workload === 'lock' ? lockWorkload(ctx) : args.workload === 'lease' ? leaseWorkload(ctx) : undefined;
  // A client that throws is a harness error (exit 2), caught at once (never an unhandled rejection).
  let workError: unknown;
  const working = work?.running.catch((e) => {
    console.error(
      `harness error in the ${args.workload} clients: ${(e as Error).stack}; seed ${args.seed}; replay: ${replay}`,
    );
    workError = e ?? new Error('workload failed');
  });
  // Watchers (half SSE, half WebSocket) follow every change through the faults, resuming after each cut.
  const watchers = Array.from({ length: args.watchers }, (_, i) => newWatcher(i));
  let watchDeadline = Number.POSITIVE_INFINITY;
  const watching = watchers.map((w) => runWatcher(w, cluster.base, () => watchDeadline));
  const nemesisOpts = { faults: args.faults, size: args.nodes, cover: args.cover };
  const nem = nemesis(cluster, nemesisOpts, new Rng(rng.int(2 ** 31)), events, t0, stop.at, live).catch((e) => {
    console.error(`harness error in the nemesis: ${(e as Error).stack}`);
    throw e;
  });
  let nemesisError: unknown;
  await nem.catch((e) => {
    nemesisError = e;
  });
  if (nemesisError) {
    stop.at = 0;
    watchDeadline = 0;
    await Promise.all([...clients, ...watching, working]);
    cleanup();
    return 2;
  }
  // Make sure everything is healed (a no-op if the nemesis did so), and time the recovery.
  await heal(cluster);
  const lastHeal = nowS();
  const lastFaultHeal = events.length > 0 ? (events[events.length - 1]?.healed ?? lastHeal - t0) : lastHeal - t0;
  const recoveryMs = await recovery(cluster.base, lastHeal, args.recoveryMs, args.opTimeoutMs);
  await Promise.all(clients);
  await working;
  if (workError) {
    watchDeadline = 0;
    await Promise.all(watching);
    cleanup();
    return 2;
  }
  const runS = nowS() - t0;
  const checks: Check[] = [];
  if (work) {
    checks.push(...(await work.check()));
    fs.writeFileSync(historyPath, `${work.lines().join('\n')}\n`);
  } else await kvChecks(cluster.base, args, records, historyPath, checks);
  // (3) convergence
  checks.push(await convergence(cluster, 20_000));
  // (5) watchers: what each saw against the history read again from the healed cluster
  if (watchers.length > 0) {
    const sorted = [...records].sort((a, b) => a.call - b.call);
    checks.push(await watchCheck(cluster.base, watchers, watching, sorted, (d) => (watchDeadline = d)));
  }
  // (4) recovery
  checks.push({
    name: `writes within ${args.recoveryMs} ms of last heal`,
    ok: recoveryMs !== undefined && recoveryMs <= args.recoveryMs,
    detail:
      recoveryMs === undefined
        ? 'no write succeeded'
        : `first write ${recoveryMs} ms after the final heal (last fault healed at ${lastFaultHeal.toFixed(1)} s)`,
  });

  cleanup();
  clearTimeout(hard);

  // ---- summary ----
  const count = (f: (r: JRecord) => boolean) => records.filter(f).length;
  const byKind = new Map<string, number>();
  for (const e of events) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + 1);
  console.log('');
  if (work) {
    console.log(`  run          ${runS.toFixed(1)} s, ${args.clients} clients`);
    for (const line of work.summary()) console.log(line);
  } else {
    console.log(`  ops          ${records.length} in ${runS.toFixed(1)} s (${(records.length / runS).toFixed(0)}/s)`);
    console.log(
      `  outcomes     ok ${count((r) => r.ok === true)}, fail ${count((r) => r.ok === false && r.error !== null)}, cas-mismatch ${count((r) => r.op === 'cas' && r.ok === false && r.error === null)}, unknown ${count((r) => r.ok === null)}`,
    );
    for (const op of ['get', 'put', 'cas', 'delete'])
      console.log(
        `    ${op.padEnd(10)} ${String(count((r) => r.op === op)).padStart(5)} total, ${String(count((r) => r.op === op && r.ok === true)).padStart(5)} ok, ${String(count((r) => r.op === op && r.ok === null)).padStart(4)} unknown`,
      );
  }
  console.log(
    `  faults       ${events.length}${events.length ? ` (${[...byKind].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}; wrangler starts ${cluster.starts}`,
  );
  console.log(`  history      ${historyPath}`);
  console.log('');
  console.log(`  ${'check'.padEnd(34)} result`);
  for (const c of checks) console.log(`  ${c.name.padEnd(34)} ${c.ok ? 'PASS' : 'FAIL'}  ${c.detail}`);
  console.log(`  total time   ${(nowS() - tStart).toFixed(1)} s (startup ${startupS.toFixed(1)} s)`);
  const bad = checks.filter((c) => !c.ok);
  if (bad.length > 0) {
    console.log(`\nANOMALY (${bad.map((c) => c.name).join('; ')}): seed ${args.seed}`);
    console.log(`replay: ${replay}`);
    console.log(`(faults and op choices replay from the seed; timing does not, so a replay may not hit it again)`);
    return 1;
  }
  console.log('\nOK');
  return 0;
}

/** The kv workload's checks: (1) linearizable, (2) no acknowledged write lost; writes its history file. */
async function kvChecks(
  base: string,
  args: Args,
  records: JRecord[],
  historyPath: string,
  checks: Check[],
): Promise<void> {
  const finals = await finalReads(base, args.clients, records, args.opTimeoutMs, nowS() + 20);

  const sorted = [...records].sort((a, b) => a.call - b.call);
  const lines = sorted.flatMap((r) => {
    const line = toFileLine(r);
    return line ? [JSON.stringify(line)] : [];
  });
  fs.writeFileSync(historyPath, `${lines.join('\n')}\n`);

  // (1) linearizability
  const hist = toHistory(sorted);
  const tCheck = Date.now();
  const lin = checkLinearizable(hist);
  const checkMs = Date.now() - tCheck;
  if (!lin.ok) {
    const lines = (lin.message ?? '').split('\n');
    const shown = lines.length > 40 ? [...lines.slice(0, 40), `    ... (${lines.length - 40} more lines)`] : lines;
    checks.push({ name: 'linearizable', ok: false, detail: shown.join('\n    ') });
  } else {
    checks.push({
      name: 'linearizable',
      ok: true,
      detail: `${lin.explored ?? 0} states, ${checkMs} ms${lin.inconclusive ? `; INCONCLUSIVE on ${lin.inconclusiveKeys?.join(',')}` : ''}`,
    });
  }
  // (2) no acknowledged write lost
  const missing = KEYS.filter((k) => !finals.has(k));
  const lost = lostWrites(sorted, finals);
  checks.push({
    name: 'no acked write lost',
    ok: lost.length === 0 && missing.length === 0,
    detail:
      missing.length > 0
        ? `final reads failed for ${missing.join(',')}`
        : lost.length === 0
          ? `final ${KEYS.map((k) => `${k}=${finals.get(k) ?? 'null'}`).join(' ')}`
          : `${lost.length} lost:\n      ${lost.slice(0, 10).join('\n      ')}`,
  });
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
