/**
 * The typed client against a live local 3-node cluster (`npm run test:client-live`):
 *
 *   (a) a watch keeps receiving across a kill -9 of the whole runtime and a
 *       restart: every put acknowledged before and after arrives exactly once,
 *       in revision order;
 *   (b) a lock is held through a leader change (the leader crashed and cut
 *       off): the holder keeps it (its lease keepalives go on), a second client
 *       cannot take it until the holder unlocks, and then it can.
 *
 * Starts `wrangler dev --config wrangler.jepsen.toml` on 127.0.0.1 with a
 * throwaway state directory (scripts/jepsen/cluster.ts), kills what it
 * started, gives up after TOTAL_MS. Prints PASS/FAIL per check; exits 1 on a
 * failure, 2 on a harness error. Plain Node 22 with --experimental-strip-types.
 */
import { ConflictError, createClient, type DurableRaftClient, type FetchFn } from '../../src/client/index.ts';
import { Cluster } from '../jepsen/cluster.ts';
import { freePorts, fs, os, path, proc, sleep } from '../jepsen/node-api.ts';

const NODES = ['node-0', 'node-1', 'node-2'];
const TOTAL_MS = 58_000;
/** The TTL a lock asks for (the jepsen timing's minimum is 2 s). */
const LOCK_TTL = 2;
/** How long the crashed leader stays cut off from the others. */
const ISOLATE_MS = 2500;

interface Outcome {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** A fetch that counts the watch connections it opens (each reconnect is one more). */
function countingFetch(counts: { watches: number }): FetchFn {
  return (input, init) => {
    if (new URL(input).pathname === '/v1/watch') counts.watches++;
    return fetch(input, init);
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function watchAcrossRestart(cluster: Cluster): Promise<Outcome> {
  const counts = { watches: 0 };
  const client = createClient({ endpoint: cluster.base, fetch: countingFetch(counts), timeoutMs: 20_000 });
  const got: { revision: number; value: string }[] = [];
  const stop = new AbortController();
  let failed: unknown;
  const watching = (async () => {
    for await (const w of client.watch({ prefix: 'live/', signal: stop.signal }))
      for (const e of w.events) got.push({ revision: w.revision, value: e.kv.text });
  })().catch((e: unknown) => {
    failed = e;
  });
  const acked: { revision: number; value: string }[] = [];
  const put = async (value: string): Promise<void> => {
    acked.push({ revision: (await client.put(`live/${value}`, value)).revision, value });
  };
  try {
    await until('the watch to open', () => counts.watches > 0, 5000);
    await sleep(200);
    for (let i = 0; i < 5; i++) await put(`before-${i}`);
    await until('the puts before the kill', () => got.length >= 5, 5000);
    await cluster.killAndWait();
    await cluster.start();
    // The client retries each put (same Idempotency-Key) until the restarted cluster has a leader.
    for (let i = 0; i < 5; i++) await put(`after-${i}`);
    await until('every acknowledged put', () => acked.every((a) => got.some((g) => g.revision === a.revision)), 20_000);
  } finally {
    stop.abort();
    await watching;
  }
  if (failed) return { name: 'watch across kill -9 and restart', ok: false, detail: `watch failed: ${failed}` };
  const revisions = got.map((g) => g.revision);
  const inOrder = revisions.every((r, i) => i === 0 || r > (revisions[i - 1] ?? 0));
  const exactlyOnce = acked.every(
    (a) => got.filter((g) => g.revision === a.revision && g.value === a.value).length === 1,
  );
  const ok = inOrder && exactlyOnce && counts.watches >= 2;
  return {
    name: 'watch across kill -9 and restart',
    ok,
    detail: `${acked.length} puts acknowledged, ${got.length} events received, ${counts.watches} watch connections, in order: ${inOrder}, each acked put once: ${exactlyOnce}`,
  };
}

async function lockAcrossLeaderChange(cluster: Cluster): Promise<Outcome> {
  const holderClient = createClient({ endpoint: cluster.base, timeoutMs: 10_000 });
  const rivalClient = createClient({ endpoint: cluster.base, timeoutMs: 5000 });
  const name = 'live-lock';
  const held = await holderClient.lock(name, { ttl: LOCK_TTL });
  const oldLeader = await leaderOf(cluster);
  const oldTerm = (await cluster.status(oldLeader)).term;
  const renewalsBefore = held.lease?.renewals ?? 0;

  // Crash the leader and cut it off, so another node must be elected.
  await cluster.crash(oldLeader);
  const blocked = NODES.filter((n) => n !== oldLeader).flatMap((n) => [`${n}>${oldLeader}`, `${oldLeader}>${n}`]);
  await Promise.all(NODES.map((n) => cluster.setFaults(n, { blocked })));
  const rivalWins: number[] = [];
  let rivalTries = 0;
  const cutUntil = Date.now() + ISOLATE_MS;
  while (Date.now() < cutUntil) {
    rivalTries++;
    await rivalTry(rivalClient, name, rivalWins);
  }
  await Promise.all(NODES.map((n) => cluster.setFaults(n, { blocked: [] })));
  let newLeader = '';
  let newTerm = oldTerm;
  await until(
    'a leader of a later term',
    async () => {
      newLeader = (await cluster.leader()) ?? '';
      newTerm = newLeader === '' ? oldTerm : (await cluster.status(newLeader).catch(() => ({ term: oldTerm }))).term;
      return newTerm > oldTerm;
    },
    10_000,
  );
  // Longer than the TTL after the change: only keepalives keep the lock.
  const holdUntil = Date.now() + LOCK_TTL * 1000 + 500;
  while (Date.now() < holdUntil) {
    rivalTries++;
    await rivalTry(rivalClient, name, rivalWins);
  }
  const key = (await holderClient.get(held.key)).kv;
  const stillHeld = key?.createRevision === held.revision && held.lease?.lost === undefined;
  const renewals = (held.lease?.renewals ?? 0) - renewalsBefore;
  await held.unlock();
  const next = await rivalClient.lock(name, { ttl: LOCK_TTL, waitMs: 5000 });
  const handedOn = next.revision > held.revision;
  await next.unlock();
  const ok = stillHeld && rivalWins.length === 0 && renewals > 0 && handedOn;
  return {
    name: 'lock held through a leader change',
    ok,
    detail: `leader ${oldLeader} (term ${oldTerm}) -> ${newLeader} (term ${newTerm}); still held: ${stillHeld}, keepalives since: ${renewals}, rival attempts ${rivalTries}, rival wins ${rivalWins.length}; after unlock the rival got it with token ${next.revision} > ${held.revision}: ${handedOn}`,
  };
}

/** One attempt by the rival: a busy lock is what it should get; anything it wins is recorded (and given back). */
async function rivalTry(client: DurableRaftClient, name: string, wins: number[]): Promise<void> {
  try {
    const got = await client.lock(name, { ttl: LOCK_TTL, waitMs: 300 });
    wins.push(got.revision);
    await got.unlock();
  } catch (e) {
    // Busy is the answer expected; no leader (503) or an unknown outcome are possible during the change.
    if (!(e instanceof ConflictError)) await sleep(100);
  }
}

async function leaderOf(cluster: Cluster): Promise<string> {
  let lead = '';
  await until(
    'a leader',
    async () => {
      lead = (await cluster.leader()) ?? '';
      return lead !== '';
    },
    10_000,
  );
  return lead;
}

async function main(): Promise<number> {
  const [port, inspectorPort] = await freePorts(2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-live-'));
  const cluster = new Cluster(NODES, port, inspectorPort, dir);
  const timer = setTimeout(() => {
    console.log(`FAIL: gave up after ${TOTAL_MS} ms`);
    cluster.kill();
    proc.exit(1);
  }, TOTAL_MS);
  const results: Outcome[] = [];
  const t0 = Date.now();
  try {
    await cluster.start();
    const warm = createClient({ endpoint: cluster.base, timeoutMs: 15_000 });
    await warm.put('live-warmup', 'up');
    results.push(await watchAcrossRestart(cluster));
    results.push(await lockAcrossLeaderChange(cluster));
  } catch (e) {
    console.log(`ERROR: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\nwrangler log: ${cluster.log}`);
    cluster.kill();
    clearTimeout(timer);
    return 2;
  }
  cluster.kill();
  clearTimeout(timer);
  fs.rmSync(dir, { recursive: true, force: true });
  for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.name}: ${r.detail}`);
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `${failed === 0 ? 'PASS' : 'FAIL'}: ${results.length - failed}/${results.length} checks in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return failed === 0 ? 0 : 1;
}

proc.exit(await main());
