/**
 * The bridge beside a real etcd (Debian's etcd-server, 3.4): a differential
 * run, the same etcdctl calls against both with their `-w json` outputs
 * compared once ids, terms and remaining TTLs are removed; and a migration
 * with etcd's own tool, `etcdctl make-mirror` from etcd into durable-raft
 * through the bridge, 1,000 keys and then live writes, after which the two
 * key spaces are equal.
 */
import { childProcess, fs, path, proc, sleep } from '../jepsen/node-api.ts';
import type { Check } from './etcd3.ts';
import { ctl, etcdctl, type Run } from './processes.ts';

/** Debian's etcd (`binary`) on the given 127.0.0.1 ports, with a data dir under `dir`; its gRPC endpoint. */
export async function startEtcd(
  binary: string,
  dir: string,
  client: number,
  peer: number,
): Promise<{ endpoint: string; stop(): void }> {
  const log = fs.openSync(path.join(dir, 'etcd.log'), 'w');
  const child = childProcess.spawn(
    binary,
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
  fs.closeSync(log);
  const stop = (): void => {
    child.kill('SIGKILL');
  };
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${client}/v3/kv/range`, { method: 'POST', body: '{"key":"AA=="}' }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { endpoint: `127.0.0.1:${client}`, stop };
    await sleep(100);
  }
  stop();
  throw new Error(`etcd did not start (see ${path.join(dir, 'etcd.log')})`);
}

/** Fields that differ between any two clusters (ids, terms) or between two reads (time left). */
const UNSTABLE = new Set(['cluster_id', 'member_id', 'raft_term', 'ID', 'id', 'TTL', 'ttl', 'lease']);

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!UNSTABLE.has(k)) out[k] = normalize(x);
  return out;
}

/** A run's output as compared: each JSON line normalized, or the text; the exit code; etcdctl's error line. */
function comparable(r: Run, stream = false): string {
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  const shown = lines.map((l) => {
    try {
      return JSON.stringify(normalize(JSON.parse(l)));
    } catch {
      return l;
    }
  });
  // A watch's events as one list: how a server groups them into answers is timing.
  const body = stream
    ? JSON.stringify(lines.flatMap((l) => (JSON.parse(l) as { Events?: unknown[] }).Events ?? []).map(normalize))
    : shown.join('\n');
  const error = r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? '';
  return `exit ${r.code}\n${body}\n${error}`;
}

interface Step {
  readonly args: (lease: string) => string[];
  readonly input?: string;
}

const STEPS: Step[] = [
  { args: () => ['put', 'df/a', '1', '-w', 'json'] },
  { args: () => ['put', 'df/b', '2', '-w', 'json'] },
  { args: () => ['put', 'df/a', '3', '--prev-kv', '-w', 'json'] },
  { args: () => ['put', 'df/c', '', '-w', 'json'] },
  { args: () => ['get', 'df/', '--prefix', '-w', 'json'] },
  { args: () => ['get', 'df/a', '--rev=2', '-w', 'json'] },
  { args: () => ['get', 'df/', '--prefix', '--keys-only', '-w', 'json'] },
  { args: () => ['get', 'df/', '--prefix', '--sort-by=CREATE', '--order=DESCEND', '--limit=2', '-w', 'json'] },
  { args: () => ['get', 'df/', '--prefix', '--sort-by=MODIFY', '--consistency=s', '-w', 'json'] },
  { args: () => ['get', 'df/a', 'df/c', '-w', 'json'] },
  { args: () => ['get', 'df/', '--from-key', '-w', 'json'] },
  { args: () => ['get', 'df/nothing', '-w', 'json'] },
  { args: () => ['del', 'df/b', '--prev-kv', '-w', 'json'] },
  { args: () => ['del', 'df/nothing', '-w', 'json'] },
  {
    args: () => ['txn', '-w', 'json'],
    input: 'value("df/a") = "3"\nmod("df/c") > "0"\n\nput df/t yes\nget df/a\ndel df/c\n\nput df/t no\n\n',
  },
  { args: () => ['txn', '-w', 'json'], input: 'version("df/a") = "9"\n\nput df/t never\n\nget df/t\n\n' },
  { args: () => ['txn', '-w', 'json'], input: '\nput df/x 1\nput df/x 2\n\n\n' },
  { args: () => ['lease', 'grant', '100', '-w', 'json'] },
  { args: (l) => ['put', 'df/l', 'leased', `--lease=${l}`, '-w', 'json'] },
  { args: (l) => ['lease', 'timetolive', l, '--keys', '-w', 'json'] },
  { args: (l) => ['lease', 'revoke', l, '-w', 'json'] },
  { args: (l) => ['lease', 'revoke', l, '-w', 'json'] },
  { args: () => ['get', 'df/', '--prefix', '-w', 'json'] },
  { args: () => ['put', 'df/m', 'x', '--lease=123456', '-w', 'json'] },
  { args: () => ['compaction', '4'] },
  { args: () => ['get', 'df/a', '--rev=3', '-w', 'json'] },
  { args: () => ['get', 'df/a', '--rev=99', '-w', 'json'] },
  { args: () => ['compaction', '3'] },
];

/**
 * The same etcdctl calls, in order, against etcd and against the bridge,
 * each store fresh but for reads (its revisions start where etcd's do), and
 * then a watch of everything from revision 5 (after the compaction): each
 * output compared. One check; the first difference fails it.
 */
export async function differential(etcd: string, bridge: string): Promise<Check> {
  const leases = { etcd: '0', bridge: '0' };
  let n = 0;
  for (const step of STEPS) {
    const [a, b] = [
      await ctl(etcd, step.args(leases.etcd), step.input),
      await ctl(bridge, step.args(leases.bridge), step.input),
    ];
    n++;
    if (step.args('0')[1] === 'grant') {
      leases.etcd = leaseOf(a);
      leases.bridge = leaseOf(b);
    }
    const [x, y] = [comparable(a), comparable(b)];
    if (proc.env.VERBOSE) console.log(`etcdctl ${step.args('LEASE').join(' ')}\n${x}\n`);
    if (x !== y) return difference(`etcdctl ${step.args('LEASE').join(' ')}`, x, y);
  }
  const watch = async (ep: string): Promise<Run> => {
    const w = etcdctl(ep, ['watch', 'df/', '--prefix', '--rev=5', '-w', 'json']);
    await w.until(() => false, 1500);
    await w.stop();
    return w.run();
  };
  const [a, b] = await Promise.all([watch(etcd), watch(bridge)]);
  const [x, y] = [comparable({ ...a, code: 0 }, true), comparable({ ...b, code: 0 }, true)];
  if (x !== y) return difference('etcdctl watch df/ --prefix --rev=5 -w json', x, y);
  return { name: `differential: ${n + 1} etcdctl calls, etcd and the bridge answer alike`, ok: true, detail: '' };
}

/** The lease id a `lease grant -w json` printed, in hex (read from the text: it may be beyond 2^53). */
function leaseOf(r: Run): string {
  const id = /"ID":(\d+)/.exec(r.stdout)?.[1];
  return id === undefined ? '0' : BigInt(id).toString(16);
}

function difference(what: string, etcd: string, bridge: string): Check {
  return {
    name: 'differential: etcdctl calls, etcd and the bridge answer alike',
    ok: false,
    detail: `${what}\n  etcd:   ${JSON.stringify(etcd)}\n  bridge: ${JSON.stringify(bridge)}`,
  };
}

/** The keys and values under `prefix`, as etcdctl reads them. */
async function keySpace(ep: string, prefix: string): Promise<Map<string, string>> {
  const r = await ctl(ep, ['get', prefix, '--prefix', '-w', 'json']);
  const kvs = (JSON.parse(r.stdout) as { kvs?: { key: string; value?: string }[] }).kvs ?? [];
  return new Map(kvs.map((kv) => [atob(kv.key), atob(kv.value ?? '')]));
}

const same = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/**
 * `etcdctl make-mirror` from etcd into durable-raft through the bridge:
 * 1,000 keys written to etcd first (through its JSON gateway, 16 at a time),
 * mirrored (`store`: durable-raft's URL, where the copy's progress is
 * counted); then live writes to etcd (puts, overwrites, deletes) while the
 * mirror runs; then the key spaces under the prefix must be equal.
 */
export async function mirror(etcd: string, bridge: string, store: string): Promise<Check> {
  const prefix = 'mm/';
  const put = (key: string, value: string): Promise<unknown> =>
    fetch(`http://${etcd}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: btoa(key), value: btoa(value) }) });
  for (let i = 0; i < 1000; i += 16)
    await Promise.all(
      Array.from({ length: Math.min(16, 1000 - i) }, (_, j) =>
        put(`${prefix}${String(i + j).padStart(4, '0')}`, `v${i + j}`),
      ),
    );
  const m = etcdctl(etcd, ['make-mirror', '--prefix', prefix, bridge]);
  // Counted first through each store's JSON gateway (cheap while the copy runs), then compared key by key.
  const count = async (base: string): Promise<string> => {
    const body = JSON.stringify({ key: btoa(prefix), range_end: btoa('mm0'), count_only: true });
    const r = await fetch(`${base}/v3/kv/range`, { method: 'POST', body });
    return ((await r.json()) as { count?: string }).count ?? '0';
  };
  const settled = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (
        (await count(`http://${etcd}`)) === (await count(store)) &&
        same(await keySpace(etcd, prefix), await keySpace(bridge, prefix))
      )
        return true;
      await sleep(500);
    }
    return false;
  };
  const t0 = Date.now();
  // make-mirror copies the base one put at a time: a thousand commits of the cluster.
  const base = await settled(60_000);
  const tBase = Date.now();
  // Live writes while it runs: new keys, overwrites, deletes (one by one and a range).
  for (let i = 0; i < 50; i++) await put(`${prefix}live/${i}`, `l${i}`);
  for (let i = 0; i < 20; i++) await put(`${prefix}${String(i).padStart(4, '0')}`, `changed${i}`);
  await ctl(etcd, ['del', `${prefix}0100`]);
  await ctl(etcd, ['del', `${prefix}02`, `${prefix}03`]);
  const tWrites = Date.now();
  const live = await settled(20_000);
  const tLive = Date.now();
  const [a, b] = [await keySpace(etcd, prefix), await keySpace(bridge, prefix)];
  await m.stop();
  return {
    name: `etcdctl make-mirror from a real etcd through the bridge: 1,000 keys (${((tBase - t0) / 1000).toFixed(1)} s), then live writes; key spaces equal`,
    ok: base && live && a.size === 1000 + 50 - 1 - 100,
    detail: `base copied: ${base} (${tBase - t0} ms), live writes followed: ${live} (${tLive - tWrites} ms after the last), etcd ${a.size} keys, durable-raft ${b.size}; mirror said ${JSON.stringify(m.stdout.slice(-200))} ${JSON.stringify(m.stderr.slice(-300))}`,
  };
}
