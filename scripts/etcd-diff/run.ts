/**
 * Differential test of the v3 gateway against a real etcd:
 *
 *   npm run test:etcd-diff -- [--seeds 3] [--start 1] [--calls 300] [--keep] [--verbose]
 *
 * Starts Debian's etcd (`etcd`, on 127.0.0.1 only, a throwaway data dir) and
 * a fresh local cluster (`wrangler dev --config wrangler.jepsen.toml`), then
 * for each seed sends both the same seeded random sequence of gateway calls
 * (kv range, put, deleterange, txn, compaction; lease grant, revoke,
 * keepalive, timetolive, leases; lock, unlock; election campaign, proclaim,
 * leader, observe, resign), then replays the seed's history with a watch
 * from revision 1, and compares the answers field by field:
 * HTTP status and JSON body, after removing only what must differ (the
 * header's cluster_id, member_id and raft_term, a lease's time left). Each seed runs
 * on keys of its own (a fresh prefix) against both stores as they are, so
 * revisions carry on from seed to seed in step. The first difference fails
 * it, with the seed, the call and both answers. Exits 1 on a difference, 2
 * on a harness error (etcd missing: install Debian's etcd-server).
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */

import { textWithin } from '../../test/integration/json-lines.ts';
import { Cluster } from '../jepsen/cluster.ts';
import { Rng } from '../jepsen/common.ts';
import { childProcess, freePorts, fs, os, path, proc, sleep } from '../jepsen/node-api.ts';
import { callsFor } from './calls.ts';

interface Args {
  seeds: number;
  start: number;
  calls: number;
  keep: boolean;
  verbose: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { seeds: 3, start: 1, calls: 300, keep: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const int = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${flag}: expected a non-negative integer`);
      return n;
    };
    if (flag === '--seeds') a.seeds = int();
    else if (flag === '--start') a.start = int();
    else if (flag === '--calls') a.calls = int();
    else if (flag === '--keep') a.keep = true;
    else if (flag === '--verbose') a.verbose = true;
    else throw new Error(`unknown argument ${flag}`);
  }
  return a;
}

interface Answer {
  status: number;
  body: unknown;
}

async function send(
  base: string,
  path: string,
  body: Record<string, unknown> | string,
  stream = false,
): Promise<Answer> {
  const res = await fetch(base + path, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(stream ? 1000 : 10_000),
  }).catch((e: Error) => e);
  // etcd holds a stream's headers back until its first line; a Worker sends them when it returns the
  // Response. So a stream is compared by the lines it sends within the window: none yet is an empty one.
  if (res instanceof Error && stream) return { status: 200, body: [] };
  // A call that waits (a lock held elsewhere) is an answer too, and a difference if only one store waits.
  if (res instanceof Error) return { status: 0, body: `no answer: ${res.name}` };
  if (stream) {
    const lines = (await textWithin(res, 400)).split('\n').filter((l) => l.trim() !== '');
    return {
      status: res.status,
      body: normalize(
        lines.map((l) => JSON.parse(l)),
        path,
      ),
    };
  }
  const text = await res.text();
  let answer: unknown = text;
  try {
    answer = JSON.parse(text);
  } catch {
    // not JSON: compared as text
  }
  return { status: res.status, body: normalize(answer, path) };
}

/** An error answer as far as it is compared for a malformed body: its status and its gRPC code. */
function errorCode(a: Answer): Answer {
  const code = typeof a.body === 'object' && a.body !== null ? (a.body as { code?: unknown }).code : undefined;
  return { status: a.status, body: { code } };
}

/**
 * Drops what must differ between two clusters (their ids and Raft terms, the
 * time a lease has left) and puts in order what etcd lists in no order (a
 * lease's keys, the leases).
 */
function normalize(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x) => normalize(x, path));
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'cluster_id' || k === 'member_id' || k === 'raft_term') continue;
    if (path === '/v3/lease/timetolive' && k === 'TTL' && x !== '-1') continue;
    out[k] = normalize(x, path);
  }
  if (Array.isArray(out.keys)) out.keys = [...(out.keys as string[])].sort();
  if (Array.isArray(out.leases))
    out.leases = [...(out.leases as { ID: string }[])].sort((a, b) => Number(a.ID) - Number(b.ID));
  return out;
}

/** Where two answers differ (a path into the JSON), or undefined if they agree. */
function difference(a: unknown, b: unknown, at = ''): string | undefined {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null))
    return `${at || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  if (typeof a !== 'object' || a === null)
    return a === b ? undefined : `${at || '.'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  for (const k of new Set([...ka, ...kb])) {
    const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
    if (d) return d;
  }
  return undefined;
}

/**
 * The history of `prefix` as a watch from revision `from` (with prev_kv) replays
 * it, read for a while: whether it was created, every event in order (how
 * the gateway groups them into lines is timing, not content), and a cancel
 * with its compact_revision if the history was compacted.
 */
async function replay(base: string, prefix: string, from: number): Promise<Answer> {
  const enc = new TextEncoder();
  const b64 = (t: string) => btoa(String.fromCharCode(...enc.encode(t)));
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const body = {
    create_request: { key: b64(prefix), range_end: b64(end), start_revision: String(from), prev_kv: true },
  };
  const res = await fetch(`${base}/v3/watch`, { method: 'POST', body: JSON.stringify(body) });
  const text = await textWithin(res, 1500);
  if (proc.env.ETCD_DIFF_DEBUG) console.log(`watch ${base}: ${text.length} bytes: ${text.slice(0, 300)}`);
  const out: { created: boolean; events: unknown[]; canceled?: boolean; compact_revision?: unknown } = {
    created: false,
    events: [],
  };
  for (const l of text.split('\n')) {
    if (l.trim() === '') continue;
    const r = (JSON.parse(l) as { result?: Record<string, unknown> }).result ?? {};
    if (r.created) out.created = true;
    if (Array.isArray(r.events)) out.events.push(...r.events);
    if (r.canceled) {
      out.canceled = true;
      out.compact_revision = r.compact_revision;
    }
  }
  return { status: res.status, body: out };
}

/** Debian's etcd on the given 127.0.0.1 ports, with a throwaway data dir. */
async function startEtcd(dir: string, client: number, peer: number): Promise<{ base: string; stop: () => void }> {
  const log = fs.openSync(path.join(dir, 'etcd.log'), 'w');
  const child = childProcess.spawn(
    'etcd',
    [
      '--data-dir',
      path.join(dir, 'etcd'),
      '--listen-client-urls',
      `http://127.0.0.1:${client}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${client}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${peer}`,
      '--initial-cluster',
      `default=http://127.0.0.1:${peer}`,
    ],
    { stdio: ['ignore', log, log] },
  );
  const base = `http://127.0.0.1:${client}`;
  const stop = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone already
    }
  };
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${base}/v3/kv/range`, { method: 'POST', body: '{"key":"AA=="}' }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { base, stop };
    await sleep(100);
  }
  stop();
  throw new Error(`etcd did not start (see ${path.join(dir, 'etcd.log')})`);
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(proc.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const which = childProcess.spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  if (which.status !== 0) {
    console.error('etcd-diff: no etcd on PATH; install it with: apt-get install -y etcd-server');
    return 2;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durable-raft-etcd-diff-'));
  // All four ports picked at once, so etcd and wrangler never get the same one.
  const [port, inspectorPort, etcdClient, etcdPeer] = await freePorts(4);
  const cluster = new Cluster(['node-0', 'node-1', 'node-2'], port, inspectorPort, dir);
  let etcd: { base: string; stop: () => void } | undefined;
  const cleanup = () => {
    etcd?.stop();
    cluster.kill();
    if (!args.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  proc.on('exit', cleanup);
  const hard = setTimeout(() => {
    console.error('etcd-diff: harness error: the run exceeded its time bound');
    cleanup();
    proc.exit(2);
  }, 600_000);
  try {
    // wrangler dev is started a second time if it exits during its first start (what the log said is printed).
    const startCluster = () =>
      cluster.start().catch(async (e: Error) => {
        console.error(`etcd-diff: starting the cluster once more, as ${e.message}`);
        await cluster.killAndWait();
        await cluster.start();
      });
    [etcd] = await Promise.all([startEtcd(dir, etcdClient, etcdPeer), startCluster()]);
    for (let i = 0; i < 100; i++) {
      const r = await fetch(`${cluster.base}/readyz`).then(
        (x) => x.ok,
        () => false,
      );
      if (r) break;
      await sleep(200);
    }
    let total = 0;
    // A replay starts at the last compaction point (the oldest revision still kept, any seed's), or at 1.
    let from = 1;
    for (let seed = args.start; seed < args.start + args.seeds; seed++) {
      const calls = callsFor(new Rng(seed), seed, `s${seed}/`, args.calls);
      let events = 0;
      const leaders = new Map<string, unknown>();
      const tally = new Map<string, number>();
      for (const [i, call] of calls.entries()) {
        const body = call.raw ?? (typeof call.body === 'function' ? call.body(leaders) : call.body);
        let want = await send(etcd.base, call.path, body, call.stream);
        let got = await send(cluster.base, call.path, body, call.stream);
        if (call.raw !== undefined && want.status !== 200) [want, got] = [errorCode(want), errorCode(got)];
        const seen = `${call.path} ${want.status}`;
        tally.set(seen, (tally.get(seen) ?? 0) + 1);
        if (call.remember && want.status === 200) leaders.set(call.remember, (want.body as { leader: unknown }).leader);
        total++;
        if (call.path === '/v3/kv/compaction' && want.status === 200 && typeof body !== 'string')
          from = Math.max(from, Number(body.revision));
        const d =
          want.status !== got.status ? `status ${want.status} vs ${got.status}` : difference(want.body, got.body);
        if (d) {
          console.log(`DIFFERENCE: seed ${seed}, call ${i}: POST ${call.path} ${JSON.stringify(body)}`);
          console.log(`  at ${d}`);
          console.log(`  etcd:         ${want.status} ${JSON.stringify(want.body)}`);
          console.log(`  durable-raft: ${got.status} ${JSON.stringify(got.body)}`);
          console.log(`replay: npm run test:etcd-diff -- --seeds 1 --start ${seed} --calls ${args.calls}`);
          return 1;
        }
      }
      // Then the history of the seed's keys (kv, then locks and elections), as a watch replays it; once more from 1, compacted.
      for (const prefix of [`s${seed}/`, `c${seed}/`])
        for (const start of from > 1 ? [from, 1] : [1]) {
          const [want, got] = [await replay(etcd.base, prefix, start), await replay(cluster.base, prefix, start)];
          const d =
            want.status !== got.status ? `status ${want.status} vs ${got.status}` : difference(want.body, got.body);
          if (d) {
            console.log(`DIFFERENCE: seed ${seed}, the watch replaying ${prefix} from revision ${start}`);
            console.log(`  at ${d}`);
            console.log(`  etcd:         ${want.status} ${JSON.stringify(want.body).slice(0, 600)}`);
            console.log(`  durable-raft: ${got.status} ${JSON.stringify(got.body).slice(0, 600)}`);
            console.log(`replay: npm run test:etcd-diff -- --seeds 1 --start ${seed} --calls ${args.calls}`);
            return 1;
          }
          if (start === from) events += (want.body as { events: unknown[] }).events.length;
        }
      if (args.verbose) for (const [k, n] of [...tally].sort()) console.log(`  ${k}: ${n}`);
      console.log(`seed ${seed}: ${calls.length} calls and a watch of ${events} events, every answer the same`);
    }
    console.log(`etcd-diff: ${total} calls over ${args.seeds} seeds, no difference`);
    return 0;
  } catch (e) {
    console.error(`etcd-diff: harness error: ${(e as Error).stack ?? e}`);
    return 2;
  } finally {
    clearTimeout(hard);
    cleanup();
  }
}

main().then(
  (code) => {
    proc.exitCode = code;
    setTimeout(() => proc.exit(code), 300);
  },
  (e) => {
    console.error(`etcd-diff: harness error: ${(e as Error).stack ?? e}`);
    proc.exit(2);
  },
);
