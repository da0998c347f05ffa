/**
 * The CLI against a live local 3-node cluster (`npm run test:cli-live`): runs
 * the real bin (`bin/durable-raft.mjs`, with this Node) for every command and
 * checks its output and exit code: put/get in the three formats, ranges,
 * history and compaction, txn from stdin, a snapshot saved and restored
 * into a new group, leases, locks running a command, elections, membership
 * and endpoint status, move-leader, watch, and the usage, unavailable and
 * help paths.
 *
 * Starts `wrangler dev --config wrangler.jepsen.toml` on 127.0.0.1 with a
 * throwaway state directory (scripts/jepsen/cluster.ts); the checks that need
 * no cluster run while it starts. Kills what it started, gives up after
 * TOTAL_MS. Prints PASS/FAIL per check; exits 1 on a failure, 2 on a harness
 * error. Plain Node 22 with --experimental-strip-types.
 */
import { Cluster } from '../jepsen/cluster.ts';
import { freePorts, fs, os, path, proc, sleep, url } from '../jepsen/node-api.ts';

const NODES = ['node-0', 'node-1', 'node-2'];
/** The whole run's limit (the snapshot checks added about 4 s to a run of 35-50 s). */
const TOTAL_MS = 64_000;
/** The longest a foreground CLI run may take. */
const RUN_MS = 15_000;
const ROOT = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'durable-raft.mjs');

interface Readable {
  on(event: 'data', fn: (chunk: Uint8Array) => void): void;
}
interface Writable {
  end(data?: string): void;
}
interface Child {
  readonly pid?: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  on(event: 'exit', fn: (code: number | null, signal: string | null) => void): void;
  kill(signal?: string): boolean;
}
const { spawn } = proc.getBuiltinModule('node:child_process') as {
  spawn(cmd: string, args: readonly string[], o: { env: Record<string, string | undefined>; cwd: string }): Child;
};

interface Outcome {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A CLI process: what it printed so far, and its exit. */
class Cli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: Child;

  constructor(args: readonly string[], endpoint: string, input?: string) {
    const env = { ...proc.env, DURABLE_RAFT_ENDPOINT: endpoint, DURABLE_RAFT_TOKEN: undefined };
    this.child = spawn(proc.execPath, [BIN, ...args], { env, cwd: ROOT });
    const text = new TextDecoder();
    this.child.stdout.on('data', (c) => {
      this.stdout += text.decode(c, { stream: true });
    });
    this.child.stderr.on('data', (c) => {
      this.stderr += new TextDecoder().decode(c);
    });
    this.child.stdin.end(input ?? '');
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  /** Waits until its stdout satisfies `check`; false after `ms`. */
  async until(check: (stdout: string) => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!check(this.stdout)) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  /** Sends `signal` and waits for the exit code (SIGKILL after 5 s). */
  async stop(signal = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(killer);
    return code;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

const running = new Set<Cli>();

/** Runs the CLI to its end (killed after RUN_MS). */
async function cli(endpoint: string, args: readonly string[], input?: string): Promise<Run> {
  const c = new Cli(args, endpoint, input);
  const timer = setTimeout(() => c.kill(), RUN_MS);
  const code = await c.exited;
  clearTimeout(timer);
  return { code, stdout: c.stdout, stderr: c.stderr };
}

function show(r: Run): string {
  return `exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 300))}, stderr ${JSON.stringify(r.stderr.slice(0, 300))}`;
}

/** A check from a run and a predicate on it. */
function expect(name: string, r: Run, ok: boolean): Outcome {
  return { name, ok, detail: show(r) };
}

const GROUPS = new Set(['lease', 'member', 'endpoint', 'snapshot']);
const COMMAND_WORDS = [
  [],
  ['get'],
  ['put'],
  ['del'],
  ['txn'],
  ['compact'],
  ['watch'],
  ['lease'],
  ['lease', 'grant'],
  ['lease', 'revoke'],
  ['lease', 'keep-alive'],
  ['lease', 'timetolive'],
  ['lease', 'list'],
  ['lock'],
  ['elect'],
  ['member'],
  ['member', 'list'],
  ['member', 'add'],
  ['member', 'remove'],
  ['member', 'promote'],
  ['move-leader'],
  ['endpoint'],
  ['endpoint', 'status'],
  ['endpoint', 'health'],
  ['snapshot'],
  ['snapshot', 'save'],
  ['snapshot', 'restore'],
];

/** The checks that need no cluster: help everywhere, usage errors, an endpoint that does not answer. */
async function offline(closedPort: number): Promise<Outcome[]> {
  const nowhere = `http://127.0.0.1:${closedPort}`;
  const helps = await Promise.all(COMMAND_WORDS.map((w) => cli(nowhere, [...w, '--help'])));
  const badHelp = helps.flatMap((r, i) => {
    const words = (COMMAND_WORDS[i] as string[]).join(' ');
    const want =
      words === '' ? 'durable-raft: ' : GROUPS.has(words) ? `durable-raft ${words}: ` : `Usage: durable-raft ${words}`;
    return r.code === 0 && r.stdout.startsWith(want) && r.stderr === '' ? [] : [`${words || '(none)'}: ${show(r)}`];
  });
  const [unknown, missing, badRev, unavailable] = await Promise.all([
    cli(nowhere, ['get', '--bogus', 'k']),
    cli(nowhere, ['put']),
    cli(nowhere, ['get', 'k', '--rev', 'x']),
    cli(nowhere, ['get', 'k', '--command-timeout', '1s']),
  ]);
  return [
    {
      name: `--help for every command (${helps.length})`,
      ok: badHelp.length === 0,
      detail: badHelp.length === 0 ? 'each exit 0 with its usage' : badHelp.join('; '),
    },
    expect(
      'unknown flag: exit 2 with the usage line',
      unknown,
      unknown.code === 2 &&
        unknown.stderr === 'Error: unknown flag --bogus\nUsage: durable-raft get KEY [END] [flags] (see --help)\n',
    ),
    expect('missing argument: exit 2', missing, missing.code === 2 && missing.stderr.startsWith('Error: missing')),
    expect('bad --rev value: exit 2', badRev, badRev.code === 2 && badRev.stderr.includes('whole number')),
    expect(
      'unreachable endpoint: exit 4',
      unavailable,
      unavailable.code === 4 && /^Error: network: .*\n$/.test(unavailable.stderr),
    ),
  ];
}

function json<T>(r: Run): T {
  return JSON.parse(r.stdout) as T;
}

async function keys(ep: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const put = await cli(ep, ['put', 'cli/a', 'hello']);
  out.push(expect('put', put, put.code === 0 && put.stdout === 'OK\n'));
  const [get, gj, gt, missing] = await Promise.all([
    cli(ep, ['get', 'cli/a']),
    cli(ep, ['get', 'cli/a', '-w', 'json']),
    cli(ep, ['get', 'cli/a', '-w=table']),
    cli(ep, ['get', 'cli/missing']),
  ]);
  out.push(expect('get (simple)', get, get.code === 0 && get.stdout === 'cli/a\nhello\n'));
  const gjv: { kv?: { key: string; value: string }; revision?: number } = gj.code === 0 ? json(gj) : {};
  out.push(
    expect('get -w json', gj, gjv.kv?.key === 'cli/a' && gjv.kv.value === 'hello' && typeof gjv.revision === 'number'),
  );
  const tableRow = /^\| cli\/a +\| hello +\| \d+ +\| \d+ +\| 1 +\| +\|$/m;
  out.push(expect('get -w table', gt, gt.code === 0 && gt.stdout.includes('| KEY ') && tableRow.test(gt.stdout)));
  out.push(expect('get of a missing key: nothing, exit 0', missing, missing.code === 0 && missing.stdout === ''));

  await cli(ep, ['put', 'cli/b', 'world']);
  const [prefix, keysOnly, count, page] = await Promise.all([
    cli(ep, ['get', '--prefix', 'cli/']),
    cli(ep, ['get', '--prefix', 'cli/', '--keys-only']),
    cli(ep, ['get', '--prefix', 'cli/', '--count-only']),
    cli(ep, ['get', '--prefix', 'cli/', '--limit', '1', '-w', 'json']),
  ]);
  const pageJson: { kvs?: { key: string }[]; count?: number; more?: boolean } = page.code === 0 ? json(page) : {};
  out.push(expect('get --prefix --count-only', count, count.code === 0 && count.stdout === '2\n'));
  out.push(
    expect(
      'get --prefix --limit 1 -w json (one page)',
      page,
      pageJson.kvs?.length === 1 && pageJson.kvs[0]?.key === 'cli/a' && pageJson.count === 2 && pageJson.more === true,
    ),
  );
  out.push(expect('get --prefix', prefix, prefix.code === 0 && prefix.stdout === 'cli/a\nhello\ncli/b\nworld\n'));
  out.push(expect('get --prefix --keys-only', keysOnly, keysOnly.code === 0 && keysOnly.stdout === 'cli/a\ncli/b\n'));

  const r1 = gjv.revision ?? 0;
  const put2 = await cli(ep, ['put', 'cli/a', 'hello2', '-w', 'json']);
  const [atRev, now] = await Promise.all([cli(ep, ['get', 'cli/a', `--rev=${r1}`]), cli(ep, ['get', 'cli/a'])]);
  out.push(
    expect(
      `get --rev ${r1} (before a later put)`,
      atRev,
      put2.code === 0 && atRev.stdout === 'cli/a\nhello\n' && now.stdout === 'cli/a\nhello2\n',
    ),
  );

  await Promise.all([cli(ep, ['put', 'cli/x/1', '1']), cli(ep, ['put', 'cli/x/2', '2'])]);
  const del = await cli(ep, ['del', '--prefix', 'cli/x/']);
  const after = await cli(ep, ['get', '--prefix', 'cli/x/']);
  out.push(expect('del --prefix', del, del.code === 0 && del.stdout === '2\n' && after.stdout === ''));

  const txn = JSON.stringify({
    compare: [{ key: 'cli/t', target: 'version', op: '=', value: 0 }],
    success: [{ put: { key: 'cli/t', value: 'one' } }],
    failure: [{ get: { key: 'cli/t' } }],
  });
  const [t1, badTxn] = await Promise.all([cli(ep, ['txn'], txn), cli(ep, ['txn'], '{"success":[{"frob":{}}]}')]);
  const t2 = await cli(ep, ['txn'], txn);
  out.push(expect('txn from stdin: success branch', t1, t1.code === 0 && t1.stdout === 'SUCCESS\n\nOK\n'));
  out.push(expect('txn again: failure branch, exit 0', t2, t2.code === 0 && t2.stdout === 'FAILURE\n\ncli/t\none\n'));
  out.push(expect('txn with a bad op: exit 2', badTxn, badTxn.code === 2));

  const c1 = json<{ revision: number }>(await cli(ep, ['put', 'cli/c', 'v1', '-w', 'json'])).revision;
  const c2 = json<{ revision: number }>(await cli(ep, ['put', 'cli/c', 'v2', '-w', 'json'])).revision;
  const compact = await cli(ep, ['compact', String(c2)]);
  const below = await cli(ep, ['get', 'cli/c', '--rev', String(c1)]);
  out.push(expect('compact', compact, compact.code === 0 && compact.stdout === `compacted revision ${c2}\n`));
  out.push(
    expect(
      'get --rev below the compaction: exit 3',
      below,
      below.code === 3 && below.stdout === '' && /^Error: compacted: .*\n$/.test(below.stderr),
    ),
  );
  return out;
}

/** snapshot save, then restore into a new group: the group holds the keys as of the dump's revision. */
async function snapshots(ep: string, dir: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const file = path.join(dir, 'backup.ndjson');
  const save = await cli(ep, ['snapshot', 'save', file, '-w', 'json']);
  const saved = save.code === 0 ? json<{ revision: number; keys: number }>(save) : { revision: 0, keys: 0 };
  out.push(expect('snapshot save FILE', save, saved.keys > 0 && fs.existsSync(file)));
  const restore = await cli(ep, ['snapshot', 'restore', file, '--group', 'cli-copy']);
  const [source, copy] = await Promise.all([
    cli(ep, ['get', '--prefix', 'cli', '--rev', String(saved.revision)]),
    cli(ep, ['--group', 'cli-copy', 'get', '--prefix', 'cli']),
  ]);
  out.push(
    expect(
      'snapshot restore FILE --group NEW: the new group holds the keys as of the dump',
      restore,
      restore.code === 0 &&
        restore.stdout.startsWith(`Restored group cli-copy from ${file}: ${saved.keys} keys`) &&
        source.stdout !== '' &&
        copy.stdout === source.stdout,
    ),
  );
  const cut = path.join(dir, 'cut.ndjson');
  fs.writeFileSync(cut, fs.readFileSync(file, 'utf8').slice(0, -10));
  const refused = await cli(ep, ['snapshot', 'restore', cut, '--group', 'cli-cut']);
  out.push(
    expect(
      'snapshot restore of a truncated FILE: exit 3 before sending it',
      refused,
      refused.code === 3 && refused.stderr.startsWith(`Error: bad_dump: ${cut}: truncated: `),
    ),
  );
  return out;
}

async function leases(ep: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const [grant, grantSimple] = await Promise.all([
    cli(ep, ['lease', 'grant', '30', '-w', 'json']),
    cli(ep, ['lease', 'grant', '30']),
  ]);
  const id = grant.code === 0 ? json<{ id: string; ttl: number }>(grant).id : '';
  out.push(expect('lease grant', grant, /^\d+$/.test(id)));
  const id2 = /^lease (\d+) granted with TTL\(30s\)\n$/.exec(grantSimple.stdout)?.[1] ?? '';
  out.push(expect('lease grant (simple)', grantSimple, grantSimple.code === 0 && id2 !== ''));
  const put = await cli(ep, ['put', 'cli/l', 'leased', '--lease', id]);
  const [ttl, ka, list] = await Promise.all([
    cli(ep, ['lease', 'timetolive', id, '--keys']),
    cli(ep, ['lease', 'keep-alive', '--once', id]),
    cli(ep, ['lease', 'list']),
  ]);
  out.push(
    expect(
      'put --lease, lease timetolive --keys',
      ttl,
      put.code === 0 &&
        ttl.code === 0 &&
        new RegExp(
          `^lease ${id} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys\\(\\[cli/l\\]\\)\\n$`,
        ).test(ttl.stdout),
    ),
  );
  out.push(
    expect('lease keep-alive --once', ka, ka.code === 0 && ka.stdout === `lease ${id} keepalived with TTL(30)\n`),
  );
  const listed = list.stdout.split('\n');
  out.push(
    expect(
      'lease list',
      list,
      list.code === 0 && /^found \d+ leases$/.test(listed[0] ?? '') && listed.includes(id) && listed.includes(id2),
    ),
  );
  const revoke = await cli(ep, ['lease', 'revoke', id]);
  const gone = await cli(ep, ['get', 'cli/l']);
  const ttlGone = await cli(ep, ['lease', 'timetolive', id]);
  out.push(
    expect(
      'lease revoke deletes its key; timetolive after: exit 3',
      revoke,
      revoke.code === 0 &&
        revoke.stdout === `lease ${id} revoked (1 key deleted)\n` &&
        gone.stdout === '' &&
        ttlGone.code === 3 &&
        ttlGone.stderr.startsWith('Error: lease_not_found: '),
    ),
  );
  await cli(ep, ['lease', 'revoke', id2]);
  return out;
}

async function locks(ep: string, dir: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const file = path.join(dir, 'fenced');
  const script = `echo "$DURABLE_RAFT_FENCING_TOKEN $DURABLE_RAFT_LOCK_KEY" > '${file}'; exit 7`;
  const first = await cli(ep, ['lock', 'cli-lock', 'sh', '-c', script]);
  const [token, key] = (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').trim().split(' ');
  out.push(
    expect(
      'lock NAME sh -c ...: runs it with the token, exits with its code',
      first,
      first.code === 7 && /^\d+$/.test(token ?? '') && (key ?? '').startsWith('cli-lock/'),
    ),
  );
  const second = await cli(ep, ['lock', '--timeout', '3s', 'cli-lock', 'sh', '-c', 'echo $DURABLE_RAFT_FENCING_TOKEN']);
  const token2 = Number(second.stdout.trim());
  out.push(
    expect(
      'lock free after the command: a second lock gets a larger token',
      second,
      second.code === 0 && token2 > Number(token),
    ),
  );

  const holder = new Cli(['lock', 'cli-lock'], ep);
  const held = await holder.until((s) => s.split('\n').length >= 3, 10_000);
  const [heldKey, heldToken] = holder.stdout.split('\n');
  const busy = await cli(ep, ['lock', 'cli-lock', '--timeout', '500ms', 'true']);
  const stopped = await holder.stop('SIGINT');
  const third = await cli(ep, ['lock', '--timeout', '3s', 'cli-lock', 'true']);
  out.push({
    name: 'lock NAME holds (key, token) until SIGINT; busy meanwhile: exit 3; free after',
    ok:
      held &&
      (heldKey ?? '').startsWith('cli-lock/') &&
      Number(heldToken) > token2 &&
      busy.code === 3 &&
      busy.stderr.startsWith('Error: lock_busy: ') &&
      stopped === 0 &&
      third.code === 0,
    detail: `holder printed ${JSON.stringify(holder.stdout)} and exited ${stopped}; busy: ${show(busy)}; after: ${show(third)}`,
  });
  return out;
}

async function elections(ep: string): Promise<Outcome> {
  const leader = new Cli(['elect', 'cli-elect', 'worker-1', '--ttl', '10'], ep);
  const elected = await leader.until((s) => s.endsWith('\n'), 10_000);
  const leaderKey = leader.stdout.trim();
  const observer = new Cli(['elect', 'cli-elect'], ep);
  const seen = await observer.until((s) => s === `${leaderKey}\nworker-1\n`, 10_000);
  const observerCode = await observer.stop('SIGTERM');
  const leaderCode = await leader.stop('SIGTERM');
  const after = await cli(ep, ['get', '--prefix', 'cli-elect/']);
  return {
    name: 'elect NAME VALUE leads; elect NAME observes it; both exit 0 on SIGTERM, and the leader resigns',
    ok:
      elected &&
      leaderKey.startsWith('cli-elect/') &&
      seen &&
      observerCode === 0 &&
      leaderCode === 0 &&
      after.code === 0 &&
      after.stdout === '',
    detail: `leader printed ${JSON.stringify(leader.stdout)} (exit ${leaderCode}), observer ${JSON.stringify(observer.stdout)} (exit ${observerCode}, stderr ${JSON.stringify(observer.stderr.slice(0, 200))}); keys after: ${JSON.stringify(after.stdout)}`,
  };
}

async function watching(ep: string): Promise<Outcome> {
  const at = json<{ revision: number }>(await cli(ep, ['get', 'cli/w/1', '-w', 'json'])).revision;
  const w = new Cli(['watch', '--prefix', 'cli/w/', '--rev', String(at + 1)], ep);
  const wj = new Cli(['watch', 'cli/w/1', '-w', 'json', '--rev', String(at + 1)], ep);
  await cli(ep, ['put', 'cli/w/1', 'hi']);
  await cli(ep, ['del', 'cli/w/1']);
  const want = 'PUT\ncli/w/1\nhi\nDELETE\ncli/w/1\n';
  const seen = await w.until((s) => s === want, 10_000);
  const seenJson = await wj.until((s) => s.split('\n').length >= 3, 10_000);
  const [putJson, delJson] = wj.stdout.split('\n').map((l) => (l === '' ? undefined : JSON.parse(l)));
  const jsonOk =
    putJson?.events?.[0]?.type === 'put' &&
    putJson.events[0].kv.value === 'hi' &&
    delJson?.events?.[0]?.type === 'delete' &&
    delJson.revision > putJson.revision;
  const code = await w.stop('SIGINT');
  const codeJson = await wj.stop('SIGTERM');
  return {
    name: 'watch --prefix --rev (simple) and -w json see a put and a delete; exit 0 on SIGINT/SIGTERM',
    ok: seen && seenJson && jsonOk && code === 0 && codeJson === 0,
    detail: `simple ${JSON.stringify(w.stdout)} (exit ${code}); json ${JSON.stringify(wj.stdout.slice(0, 400))} (exit ${codeJson})`,
  };
}

interface StatusJson {
  leader: string | null;
  members: { name: string; membership: string; role: string | null }[];
}

async function cluster(ep: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const members = await cli(ep, ['member', 'list']);
  const lines = members.stdout.trim().split('\n');
  out.push(
    expect(
      'member list',
      members,
      members.code === 0 && lines.length === 3 && NODES.every((n) => lines.some((l) => l.startsWith(`${n}, voter, `))),
    ),
  );
  const table = await cli(ep, ['member', 'list', '-w', 'table']);
  out.push(expect('member list -w table', table, table.code === 0 && table.stdout.split('\n').length === 8));
  const status = await cli(ep, ['endpoint', 'status', '-w', 'json']);
  const st = status.code === 0 ? json<StatusJson>(status) : { leader: null, members: [] };
  const simple = await cli(ep, ['endpoint', 'status']);
  out.push(
    expect(
      'endpoint status',
      status,
      st.leader !== null &&
        st.members.length === 3 &&
        simple.code === 0 &&
        simple.stdout.includes(`, ${st.leader}, true, leader, `),
    ),
  );
  const health = await cli(ep, ['endpoint', 'health']);
  out.push(
    expect(
      'endpoint health',
      health,
      health.code === 0 && / is healthy: successfully read revision \d+/.test(health.stdout),
    ),
  );
  const target = NODES.find((n) => n !== st.leader) ?? '';
  const move = await cli(ep, ['move-leader', target]);
  let leaderNow: string | null = null;
  for (let i = 0; i < 20 && leaderNow !== target; i++) {
    const s = await cli(ep, ['endpoint', 'status', '-w', 'json']);
    leaderNow = s.code === 0 ? json<StatusJson>(s).leader : null;
    if (leaderNow !== target) await sleep(200);
  }
  out.push(
    expect(
      `move-leader ${st.leader} -> ${target}`,
      move,
      move.code === 0 && move.stdout.startsWith(`Leadership transferred to ${target} `) && leaderNow === target,
    ),
  );
  const add = await cli(ep, ['member', 'add', 'node-3', '-w', 'json']);
  const added = add.code === 0 ? json<{ conf: { learners: string[] } | null }>(add).conf : null;
  const remove = await cli(ep, ['member', 'remove', 'node-3']);
  const final = await cli(ep, ['member', 'list']);
  out.push(
    expect(
      'member add (a learner), then member remove',
      remove,
      added?.learners.includes('node-3') === true &&
        remove.code === 0 &&
        remove.stdout.startsWith('Member node-3 removed (voters: ') &&
        !final.stdout.includes('node-3'),
    ),
  );
  return out;
}

async function main(): Promise<number> {
  const [port, inspectorPort] = await freePorts(2);
  const [closedPort] = await freePorts(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-live-'));
  const c = new Cluster(NODES, port, inspectorPort, dir);
  const stopAll = (): void => {
    for (const r of running) r.kill();
    c.kill();
  };
  const timer = setTimeout(() => {
    console.log(`FAIL: gave up after ${TOTAL_MS} ms`);
    stopAll();
    proc.exit(1);
  }, TOTAL_MS);
  const results: Outcome[] = [];
  const t0 = Date.now();
  try {
    const [offlineResults] = await Promise.all([offline(closedPort), c.start()]);
    results.push(...offlineResults);
    const ep = c.base;
    // The first write waits for the first leader (the client retries a 503 within its deadline).
    await cli(ep, ['put', 'cli-warmup', 'up', '--command-timeout', '14s']);
    results.push(...(await keys(ep)));
    results.push(...(await snapshots(ep, dir)));
    // Apart in their keys and names, so they run side by side; the leader moves only after them.
    const side = await Promise.all([
      leases(ep),
      locks(ep, dir),
      elections(ep).then((o) => [o]),
      watching(ep).then((o) => [o]),
    ]);
    results.push(...side.flat());
    results.push(...(await cluster(ep)));
  } catch (e) {
    console.log(`ERROR: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nwrangler log: ${c.log}`);
    stopAll();
    clearTimeout(timer);
    return 2;
  }
  stopAll();
  clearTimeout(timer);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}${r.ok ? '' : `: ${r.detail}`}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `${failed === 0 ? 'PASS' : 'FAIL'}: ${results.length - failed}/${results.length} checks in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return failed === 0 ? 0 : 1;
}

proc.exit(await main());
