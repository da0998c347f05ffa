/**
 * The gRPC bridge against a live local 3-node cluster (`npm run
 * test:grpc-bridge`), driven by clients nobody here wrote: Debian's etcdctl
 * 3.4 (put, get by prefix, at a revision, keys only and as JSON, del, txn
 * from stdin, watch with a concurrent writer and across a kill -9 and
 * restart of the bridge, lease grant / keep-alive / timetolive / revoke,
 * lock and elect with two contenders, member list, add, promote and remove,
 * endpoint status and health, compaction and a read below it, a login with
 * a token the store does not know, snapshot save restored with our CLI into
 * a new group and read back through a --group bridge), npm's etcd3 (KV, a watch, a lease, a
 * lock), and malformed calls that must not bring the bridge down. Beside a
 * real etcd (versus-etcd.ts): a differential run of etcdctl calls against
 * both, and etcdctl make-mirror from etcd into durable-raft.
 *
 * Starts Debian's etcd and `wrangler dev --config wrangler.jepsen.toml` on
 * 127.0.0.1 with throwaway state directories (scripts/jepsen/cluster.ts) and
 * the bridge through the CLI (`durable-raft grpc-proxy`) on a free port.
 * Kills what it started, gives up after TOTAL_MS (about 35 s on an idle
 * machine). Prints PASS/FAIL per check; exits 1 on a failure, 2 on a harness
 * error. Plain Node 22 with --experimental-strip-types.
 */
import { Cluster } from '../jepsen/cluster.ts';
import { freePorts, fs, os, path, proc, sleep } from '../jepsen/node-api.ts';
import { type Check, etcd3Checks } from './etcd3.ts';
import { ctl, ETCDCTL, etcdctl, killAll, type Proc, type Run, startProxy } from './processes.ts';
import { GARBAGE, rawUnary, rawWatch } from './raw.ts';
import { snapshotChecks } from './snapshot.ts';
import { differential, mirror, startEtcd } from './versus-etcd.ts';

const NODES = ['node-0', 'node-1', 'node-2'];
const TOTAL_MS = 120_000;
const ETCD = proc.env.ETCD ?? '/usr/bin/etcd';
const COMPACTED = 'etcdserver: mvcc: required revision has been compacted';

const show = (r: Run): string =>
  `exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 400))}, stderr ${JSON.stringify(r.stderr.slice(0, 400))}`;
const check = (name: string, r: Run, ok: boolean): Check => ({ name, ok, detail: show(r) });
const lines = (r: Run): string[] => r.stdout.split('\n').filter((l) => l !== '');

interface Header {
  revision: number;
}

/** The store's revision now, as etcdctl reads it. */
async function revisionNow(ep: string): Promise<number> {
  const r = await ctl(ep, ['get', 'no-such-key', '-w', 'json']);
  return (JSON.parse(r.stdout) as { header: Header }).header.revision;
}

async function keys(ep: string): Promise<Check[]> {
  const out: Check[] = [];
  const put = await ctl(ep, ['put', 'gk/a', 'one']);
  out.push(check('put', put, put.code === 0 && put.stdout === 'OK\n'));
  const before = await revisionNow(ep);
  await ctl(ep, ['put', 'gk/a', 'two']);
  await ctl(ep, ['put', 'gk/b', 'three']);
  const prefix = await ctl(ep, ['get', '--prefix', 'gk/']);
  out.push(check('get --prefix', prefix, lines(prefix).join(' ') === 'gk/a two gk/b three'));
  const old = await ctl(ep, ['get', 'gk/a', `--rev=${before}`]);
  out.push(check('get --rev (an older value)', old, lines(old).join(' ') === 'gk/a one'));
  const ko = await ctl(ep, ['get', '--prefix', 'gk/', '--keys-only']);
  out.push(check('get --keys-only', ko, lines(ko).join(' ') === 'gk/a gk/b'));
  const js = await ctl(ep, ['get', '--prefix', 'gk/', '-w', 'json']);
  let ok = false;
  try {
    const j = JSON.parse(js.stdout) as {
      header: { cluster_id: number; member_id: number; revision: number; raft_term: number };
      kvs: { key: string; value: string; version: number; create_revision: number; mod_revision: number }[];
      count: number;
    };
    const a = j.kvs[0];
    ok =
      j.count === 2 &&
      a !== undefined &&
      atob(a.key) === 'gk/a' &&
      atob(a.value) === 'two' &&
      a.version === 2 &&
      a.mod_revision === before + 1 &&
      j.header.revision === before + 2 &&
      j.header.cluster_id > 0 &&
      j.header.raft_term > 0;
  } catch {
    ok = false;
  }
  out.push(check('get -w json', js, ok));
  const del = await ctl(ep, ['del', 'gk/b']);
  const gone = await ctl(ep, ['get', 'gk/b']);
  out.push(check('del', del, del.stdout === '1\n' && gone.code === 0 && gone.stdout === ''));
  const txnInput = ['value("gk/a") = "two"', '', 'put gk/t yes', 'get gk/a', '', 'put gk/t no', '', ''].join('\n');
  const txn = await ctl(ep, ['txn'], txnInput);
  const t = await ctl(ep, ['get', 'gk/t', '--print-value-only']);
  out.push(check('txn from stdin', txn, lines(txn).join(' ') === 'SUCCESS OK gk/a two' && t.stdout === 'yes\n'));
  return out;
}

async function watching(ep: string): Promise<Check> {
  const from = (await revisionNow(ep)) + 1;
  const w = etcdctl(ep, ['watch', '--prefix', 'gw/', `--rev=${from}`]);
  const writer = (async () => {
    for (let i = 1; i <= 5; i++) await ctl(ep, ['put', `gw/${i}`, `v${i}`]);
    await ctl(ep, ['del', 'gw/1']);
  })();
  await writer;
  const want = [
    'PUT',
    'gw/1',
    'v1',
    'PUT',
    'gw/2',
    'v2',
    'PUT',
    'gw/3',
    'v3',
    'PUT',
    'gw/4',
    'v4',
    'PUT',
    'gw/5',
    'v5',
  ];
  const expected = [...want, 'DELETE', 'gw/1'].join('\n');
  const ok = await w.until((s) => s.trim() === expected, 8000);
  await w.stop();
  return check('watch with a concurrent writer: every event, in order', w.run(), ok);
}

/** A watch held open while the bridge is killed (-9) and started again on its port: no event lost or repeated. */
async function watchAcrossRestart(store: string, bridge: { proc: Proc; endpoint: string }): Promise<Check> {
  const ep = bridge.endpoint;
  const w = etcdctl(ep, ['watch', '--prefix', 'gr/']);
  // etcdctl says nothing when its watch is created: write until the first event shows.
  let seen = false;
  for (let i = 0; i < 40 && !seen; i++) {
    await ctl(ep, ['put', 'gr/0', 'before']);
    seen = await w.until((s) => s.includes('gr/0'), 250);
  }
  await w.until(() => false, 300);
  bridge.proc.kill();
  await bridge.proc.exited;
  // While no bridge runs: written straight to the store's /v3.
  const put = await fetch(`${store}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: btoa('gr/1'), value: btoa('while-down') }),
  });
  const again = await startProxy(store, ep);
  bridge.proc = again.proc;
  await ctl(ep, ['put', 'gr/2', 'after']);
  const tail = ['PUT', 'gr/1', 'while-down', 'PUT', 'gr/2', 'after'].join('\n');
  const ok = await w.until((s) => s.trim().endsWith(tail), 15_000);
  await w.stop();
  const text = w.stdout;
  const once = text.split('gr/1\n').length === 2 && text.split('gr/2\n').length === 2;
  return check(
    'watch across a kill -9 and restart of the bridge: resumed, each event once',
    w.run(),
    put.ok && seen && ok && once,
  );
}

async function leases(ep: string): Promise<Check[]> {
  const out: Check[] = [];
  const grant = await ctl(ep, ['lease', 'grant', '30']);
  const id = /^lease ([0-9a-f]+) granted with TTL\(30s\)/.exec(grant.stdout)?.[1] ?? '';
  out.push(check('lease grant', grant, id !== ''));
  await ctl(ep, ['put', 'gl/a', 'x', `--lease=${id}`]);
  await ctl(ep, ['put', 'gl/b', 'y', `--lease=${id}`]);
  const ka = etcdctl(ep, ['lease', 'keep-alive', id]);
  const kept = await ka.until((s) => s.includes(`lease ${id} keepalived with TTL(30)`), 5000);
  await ka.stop();
  out.push(check('lease keep-alive', ka.run(), kept));
  const ttl = await ctl(ep, ['lease', 'timetolive', id, '--keys']);
  out.push(
    check(
      'lease timetolive --keys',
      ttl,
      /^lease [0-9a-f]+ granted with TTL\(30s\), remaining\((2\d|30)s\), attached keys\(\[gl\/a gl\/b\]\)/.test(
        ttl.stdout,
      ),
    ),
  );
  const revoke = await ctl(ep, ['lease', 'revoke', id]);
  const after = await ctl(ep, ['get', '--prefix', 'gl/']);
  const dead = await ctl(ep, ['lease', 'timetolive', id]);
  out.push(
    check(
      'lease revoke: its keys vanish',
      revoke,
      revoke.stdout === `lease ${id} revoked\n` &&
        after.code === 0 &&
        after.stdout === '' &&
        dead.stdout.includes('already expired'),
    ),
  );
  return out;
}

/** Two contenders for `words` (lock NAME, or elect NAME VALUE): the second waits until the first goes. */
async function contenders(
  ep: string,
  name: string,
  first: string[],
  second: string[],
  firstOut: RegExp,
  secondOut: RegExp,
): Promise<Check> {
  const a = etcdctl(ep, first);
  const held = await a.until((s) => firstOut.test(s), 8000);
  const b = etcdctl(ep, second);
  const waited = !(await b.until((s) => s !== '', 1500));
  await a.stop();
  const took = await b.until((s) => secondOut.test(s), 8000);
  await b.stop();
  const detail = `first ${JSON.stringify(a.stdout)} ${JSON.stringify(a.stderr.slice(0, 200))}; second ${JSON.stringify(b.stdout)} ${JSON.stringify(b.stderr.slice(0, 200))}`;
  return { name, ok: held && waited && took, detail };
}

async function cluster(ep: string): Promise<Check[]> {
  const out: Check[] = [];
  const list = await ctl(ep, ['member', 'list', '-w', 'json']);
  let ok = false;
  try {
    const j = JSON.parse(list.stdout) as { members: { name: string }[] };
    ok =
      j.members
        .map((m) => m.name)
        .sort()
        .join(',') === NODES.join(',');
  } catch {
    ok = false;
  }
  const simple = await ctl(ep, ['member', 'list']);
  // In hex, as etcdctl prints ids (its JSON has them as numbers beyond 2^53).
  const ids = lines(simple).map((l) => l.split(', ')[0]);
  ok = ok && ids.length === 3 && NODES.every((n) => simple.stdout.includes(`, started, ${n}, `));
  out.push(check('member list', simple, ok));
  const status = await ctl(ep, ['endpoint', 'status']);
  const fields = status.stdout.trim().split(', ');
  out.push(
    check(
      'endpoint status',
      status,
      status.code === 0 && fields[0] === ep && fields[2] === '3.4.0' && ids.includes(fields[1] ?? '-'),
    ),
  );
  const health = await ctl(ep, ['endpoint', 'health']);
  out.push(
    check(
      'endpoint health',
      health,
      health.code === 0 && `${health.stdout}${health.stderr}`.includes(`${ep} is healthy`),
    ),
  );
  return out;
}

/** member add (a learner, named by its peer URL's host), promote and remove, by the id member list shows. */
async function membership(ep: string): Promise<Check> {
  const add = await ctl(ep, ['member', 'add', 'node-3', '--peer-urls', 'http://node-3:2380', '--learner']);
  const listed = await ctl(ep, ['member', 'list']);
  const row = lines(listed).find((l) => l.includes(', node-3, '));
  const id = row?.split(', ')[0] ?? '-';
  const promote = await ctl(ep, ['member', 'promote', id]);
  const promoted = await ctl(ep, ['member', 'list']);
  const remove = await ctl(ep, ['member', 'remove', id]);
  const after = await ctl(ep, ['member', 'list']);
  const voter = lines(promoted).find((l) => l.includes(', node-3, '));
  return {
    name: 'member add --learner, promote, remove (through /v1/cluster/members)',
    ok:
      /^Member [0-9a-f]+ added to cluster [0-9a-f]+/.test(add.stdout) &&
      row?.endsWith(', true') === true &&
      promote.stdout.startsWith(`Member ${id} promoted in cluster `) &&
      voter?.endsWith(', false') === true &&
      remove.stdout.startsWith(`Member ${id} removed from cluster `) &&
      !after.stdout.includes('node-3') &&
      lines(after).length === 3,
    detail: [add, listed, promote, promoted, remove, after].map(show).join('\n'),
  };
}

async function compaction(ep: string): Promise<Check> {
  await ctl(ep, ['put', 'gc/k', 'old']);
  const old = await revisionNow(ep);
  await ctl(ep, ['put', 'gc/k', 'new']);
  const at = await revisionNow(ep);
  const compact = await ctl(ep, ['compaction', String(at)]);
  const below = await ctl(ep, ['get', 'gc/k', `--rev=${old}`]);
  const still = await ctl(ep, ['get', 'gc/k', '--print-value-only']);
  return check(
    'compaction, then a read below it: the compacted error',
    below,
    compact.stdout === `compacted revision ${at}\n` &&
      below.code === 1 &&
      below.stderr.includes(`Error: ${COMPACTED}`) &&
      still.stdout === 'new\n',
  );
}

async function robustness(ep: string): Promise<Check[]> {
  const out: Check[] = [];
  const garbage = await rawUnary(ep, '/etcdserverpb.KV/Range', GARBAGE);
  const empty = await rawUnary(ep, '/etcdserverpb.KV/Put', new Uint8Array(0));
  const stream = await rawWatch(ep, GARBAGE);
  const unknown = await rawUnary(ep, '/etcdserverpb.Maintenance/Defragment', new Uint8Array(0));
  const alive = await ctl(ep, ['get', 'gk/a', '--print-value-only']);
  const detail = JSON.stringify({ garbage, empty, stream, unknown, alive: alive.stdout });
  out.push({
    name: 'malformed messages (unary and on a watch stream) fail their call only; the bridge serves on',
    ok: garbage.code !== 0 && stream.code !== 0 && alive.stdout === 'two\n',
    detail,
  });
  out.push({
    name: "a Put without a key: etcd's InvalidArgument and message",
    ok: empty.code === 3 && empty.details === 'etcdserver: key is not provided',
    detail,
  });
  out.push({
    name: 'Maintenance.Defragment: Unimplemented',
    ok: unknown.code === 12,
    detail,
  });
  // etcd's Authenticate takes a store token as the password: one the store does not know is refused.
  const login = await ctl(ep, ['--user', 'someone:not-a-token', 'get', 'gk/a']);
  out.push(
    check(
      "etcdctl --user with a token the store does not know: etcd's authentication error",
      login,
      login.code !== 0 && login.stderr.includes('etcdserver: authentication failed, invalid user ID or password'),
    ),
  );
  return out;
}

async function main(): Promise<number> {
  if (!fs.existsSync(ETCDCTL) || !fs.existsSync(ETCD)) {
    console.log(`ERROR: needs ${ETCDCTL} and ${ETCD} (apt-get install -y etcd-client etcd-server)`);
    return 2;
  }
  // All at once, so no two of them are the same port. The bridges' ports are taken once etcd
  // and workerd have started: a port picked free and released early can be handed to one of
  // the sockets they open while starting (a CI run failed with EADDRINUSE that way).
  const [port, inspectorPort, etcdPort, etcdPeerPort] = await freePorts(4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grpc-bridge-'));
  const c = new Cluster(NODES, port, inspectorPort, dir);
  let etcd: { endpoint: string; stop(): void } | undefined;
  const stopAll = (): void => {
    killAll();
    c.kill();
    etcd?.stop();
  };
  // Whatever ends this process (a crash included) ends what it started: wrangler runs in a group of its own.
  proc.on('exit', stopAll);
  const timer = setTimeout(() => {
    console.log(`FAIL: gave up after ${TOTAL_MS} ms`);
    stopAll();
    proc.exit(1);
  }, TOTAL_MS);
  const results: Check[] = [];
  const t0 = Date.now();
  try {
    [etcd] = await Promise.all([startEtcd(ETCD, dir, etcdPort, etcdPeerPort), c.start()]);
    const [bridgePort, groupBridgePort] = await freePorts(2);
    const bridge = await startProxy(c.base, `127.0.0.1:${bridgePort}`);
    const ep = bridge.endpoint;
    // The first read waits for the first leader (etcdctl retries a read that meets Unavailable); it
    // writes nothing, so both stores are at etcd's first revision for the differential run.
    await ctl(ep, ['get', 'warmup', '--command-timeout', '14s']);
    results.push(await differential(etcd.endpoint, ep));
    results.push(...(await keys(ep)));
    // Apart in their keys and names, so they run side by side.
    const side = await Promise.all([
      watching(ep).then((x) => [x]),
      leases(ep),
      contenders(
        ep,
        'lock: two contenders, the second waits until the first goes',
        ['lock', 'glock'],
        ['lock', 'glock'],
        /^glock\/[0-9a-f]+\n/,
        /^glock\/[0-9a-f]+\n/,
      ).then((x) => [x]),
      contenders(
        ep,
        'elect: two contenders, the second leads once the first goes',
        ['elect', 'gelect', 'p1'],
        ['elect', 'gelect', 'p2'],
        /^gelect\/[0-9a-f]+\np1\n/,
        /^gelect\/[0-9a-f]+\np2\n/,
      ).then((x) => [x]),
      cluster(ep),
      etcd3Checks(ep),
      mirror(etcd.endpoint, ep, c.base).then((x) => [x]),
    ]);
    results.push(...side.flat());
    results.push(await membership(ep));
    results.push(await compaction(ep));
    results.push(...(await robustness(ep)));
    results.push(...(await snapshotChecks(c.base, ep, `127.0.0.1:${groupBridgePort}`, dir)));
    results.push(await watchAcrossRestart(c.base, bridge));
  } catch (e) {
    console.log(`ERROR: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nwrangler log: ${c.log}`);
    stopAll();
    clearTimeout(timer);
    return 2;
  }
  stopAll();
  clearTimeout(timer);
  await sleep(100);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.ok ? '' : `: ${r.detail}`}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `${failed === 0 ? 'PASS' : 'FAIL'}: ${results.length - failed}/${results.length} checks in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return failed === 0 ? 0 : 1;
}

proc.exit(await main());
