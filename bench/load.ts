/**
 * The load generator, run in its own process (forked by bench/run.ts) so the
 * clients do not share an event loop with the cluster. It receives one job
 * at a time over IPC, runs `clients` closed-loop clients on keep-alive
 * connections, and answers with throughput and latency percentiles. An
 * operation is counted if it started inside the measured window (after the
 * warm-up), and the run waits for it to finish, so slow tails are not cut off.
 * Besides the key-value scenarios: keepalive (POST /v1/leases/{id}/keepalive
 * over the job's leases) and lock (each client acquires one lock name with a
 * lease of its own and releases it, in a loop; an operation is an acquisition).
 */
import { Agent, request as httpRequest } from 'node:http';
import type { GrpcKv, GrpcOutcome } from './grpc-load.ts';
import { percentile } from './percentile.ts';

export type Scenario = 'put' | 'get-linearizable' | 'get-serializable' | 'cas' | 'keepalive' | 'lock';

/**
 * Whose API the load speaks: ours, etcd's v3 JSON gateway (base64 keys and
 * values: etcd's, or the store's /v3), or etcd's gRPC API (the bridge; `base`
 * is then host:port; put and the gets only).
 */
export type Target = 'durable-raft' | 'etcd' | 'grpc';

export interface LoadJob {
  readonly base: string;
  /** Several stores (groups: `${url}/groups/${name}`): client i uses bases[(i - 1) % length] instead of `base`. */
  readonly bases?: readonly string[];
  /** With `bases`: each operation goes to one of them drawn at random, so fewer clients than bases still load them all. */
  readonly basePerOp?: boolean;
  readonly target?: Target;
  readonly scenario: Scenario;
  readonly clients: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  /** What the keys start with (default `bench/k`; key i is `${keyPrefix}${i}`). */
  readonly keyPrefix?: string;
  /** Return every put of the run, warm-up included, with its revision and send time (the watch scenario). */
  readonly recordPuts?: boolean;
  /**
   * Lease ids (decimal strings). keepalive: each client renews leases drawn
   * from these; lock: client i holds its locks with lease i (one per client).
   */
  readonly leases?: readonly string[];
  /** lock: the one lock name every client contends for, and the wait_ms of each acquisition. */
  readonly lockName?: string;
  readonly lockWaitMs?: number;
}

/** One put of a recorded run: its revision (null: no 200, outcome unknown), key, and when it was sent. */
export interface PutRecord {
  readonly revision: number | null;
  readonly key: string;
  /** Wall-clock ms (performance.timeOrigin + performance.now(), comparable across processes). */
  readonly sentAt: number;
  /** Started inside the measured window. */
  readonly counted: boolean;
}

export interface LoadResult {
  /** Successful operations started in the measured window. */
  readonly ops: number;
  /** Successful operations of the whole run: warm-up, window, and those that finished after it. */
  readonly totalOps: number;
  readonly errors: number;
  readonly errorSample: string[];
  readonly elapsedMs: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Every latency of the window (ms, ascending), so the runner can pool the repeats of a scenario. */
  readonly latenciesMs: number[];
  /**
   * The bench Worker's own time (whole ms, ascending) for the operations of
   * `latenciesMs` it timed: a latency less this is time spent reaching the
   * handler and getting the answer back (see bench/worker.ts).
   */
  readonly servedMs?: number[];
  /** The load process's own CPU over the measured window, as a share of one core (it shares the machine with workerd). */
  readonly loadCpu: number;
  /** recordPuts: the measured window (wall-clock ms, as PutRecord.sentAt) and every put. */
  readonly windowStartAt?: number;
  readonly windowEndAt?: number;
  readonly puts?: PutRecord[];
  /** lock: the releases (DELETE) of acquisitions started in the window. */
  readonly release?: { readonly p50Ms: number; readonly p99Ms: number; readonly errors: number };
}

const VALUE = 'v'.repeat(64);
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** One operation of `scenario` on `key` as etcd's gateway takes it (POST /v3/kv/...; only put and gets). */
function etcdRequest(base: string, scenario: Scenario, key: string): { url: URL; body: string } {
  switch (scenario) {
    case 'put':
      return { url: new URL(`${base}/v3/kv/put`), body: JSON.stringify({ key: b64(key), value: b64(VALUE) }) };
    case 'get-linearizable':
    case 'get-serializable':
      return {
        url: new URL(`${base}/v3/kv/range`),
        body: JSON.stringify({ key: b64(key), serializable: scenario === 'get-serializable' }),
      };
    default:
      throw new Error(`etcd target: no ${scenario} scenario`);
  }
}

/** An answer; `servedMs`: the bench Worker's own time for it (x-bench-served), where it said. */
interface Answer {
  readonly status: number;
  readonly text: string;
  readonly servedMs?: number;
}

function request(agent: Agent, url: URL, method: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // The bench Worker answers a request so marked with its own time for it (bench/worker.ts).
    const headers: Record<string, string | number> = { 'x-bench-timed': '1' };
    if (body !== undefined) headers['content-length'] = new TextEncoder().encode(body).byteLength;
    const req = httpRequest(url, { agent, method, headers }, (res) => {
      let text = '';
      const dec = new TextDecoder();
      res.on('data', (c: Uint8Array) => {
        text += dec.decode(c, { stream: true });
      });
      res.on('end', () => {
        const served = res.headers['x-bench-served'];
        const answer = { status: res.statusCode ?? 0, text: text + dec.decode() };
        resolve(typeof served === 'string' ? { ...answer, servedMs: Number(served) } : answer);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.clients, maxFreeSockets: job.clients });
  const root = job.base.replace(/\/$/, '');
  // Loaded only for a gRPC job: the other jobs need no gRPC library.
  const grpc: GrpcKv | undefined = job.target === 'grpc' ? (await import('./grpc-load.ts')).grpcKv(root) : undefined;
  if (grpc && job.recordPuts) throw new Error('grpc target: puts are not recorded');
  let recording = false;
  let stop = false;
  const lat: number[] = [];
  /** The bench Worker's own time for each operation in `lat` that it timed. */
  const served: number[] = [];
  let errors = 0;
  const errorSample: string[] = [];
  const puts: PutRecord[] = [];
  const prefix = job.keyPrefix ?? 'bench/k';
  let totalOps = 0;
  const note = (status: number, text: string) => {
    if (errorSample.length < 5) errorSample.push(`${status} ${text.slice(0, 200)}`);
  };
  const releaseLat: number[] = [];
  let releaseErrors = 0;
  /**
   * lock: acquire (POST, waiting up to lockWaitMs) then release (DELETE) in a
   * loop; an operation is an acquisition, its latency the acquire's.
   */
  const lockClient = async (id: number) => {
    const lease = job.leases?.[id - 1];
    if (lease === undefined) throw new Error(`lock: no lease for client ${id}`);
    const lockUrl = new URL(`${root}/v1/locks/${job.lockName ?? 'bench/lock'}`);
    const body = JSON.stringify({ lease, wait_ms: job.lockWaitMs ?? 30_000 });
    while (!stop) {
      const t0 = performance.now();
      const counted = recording;
      let key: string | undefined;
      try {
        const res = await request(agent, lockUrl, 'POST', body);
        if (res.status === 200) key = (JSON.parse(res.text) as { key: string }).key;
        else note(res.status, res.text);
      } catch (e) {
        if (errorSample.length < 5) errorSample.push(String(e));
      }
      const dt = performance.now() - t0;
      if (key !== undefined) totalOps++;
      if (counted) {
        if (key !== undefined) lat.push(dt);
        else errors++;
      }
      if (key === undefined) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const r0 = performance.now();
      let released = false;
      try {
        const res = await request(agent, new URL(`${lockUrl}?key=${encodeURIComponent(key)}`), 'DELETE');
        released = res.status === 200;
        if (!released) note(res.status, res.text);
      } catch (e) {
        if (errorSample.length < 5) errorSample.push(String(e));
      }
      if (counted) {
        if (released) releaseLat.push(performance.now() - r0);
        else releaseErrors++;
      }
    }
  };
  /** One gRPC call of the job's scenario (put and the gets). */
  const grpcOp = (kv: GrpcKv, key: string): Promise<GrpcOutcome> => {
    if (job.scenario === 'put') return kv.put(key, VALUE);
    if (job.scenario === 'get-linearizable' || job.scenario === 'get-serializable')
      return kv.range(key, job.scenario === 'get-serializable');
    throw new Error(`grpc target: no ${job.scenario} scenario`);
  };
  const grpcClient = async (kv: GrpcKv, id: number) => {
    let n = id;
    while (!stop) {
      n = (n * 1103515245 + 12345) % 2147483648;
      const key = `${prefix}${n % job.keys}`;
      const t0 = performance.now();
      const counted = recording;
      const r = await grpcOp(kv, key);
      const dt = performance.now() - t0;
      if (r.ok) totalOps++;
      else if (errorSample.length < 5) errorSample.push(r.why);
      if (counted) {
        if (r.ok) lat.push(dt);
        else errors++;
      }
    }
  };
  const client = async (id: number) => {
    if (grpc) return grpcClient(grpc, id);
    const bases = job.bases?.length ? job.bases.map((b) => b.replace(/\/$/, '')) : [root];
    let base = bases[(id - 1) % bases.length] as string;
    let casRev: number | undefined;
    let n = id;
    while (!stop) {
      n = (n * 1103515245 + 12345) % 2147483648;
      const key = `${prefix}${n % job.keys}`;
      // The generator's high bits: its low ones cycle with short periods.
      if (job.basePerOp) base = bases[(n >>> 16) % bases.length] as string;
      let url: URL;
      let method = 'GET';
      let body: string | undefined;
      if (job.target === 'etcd') {
        ({ url, body } = etcdRequest(base, job.scenario, key));
        method = 'POST';
      } else
        switch (job.scenario) {
          case 'put':
            url = new URL(`${base}/v1/kv/${key}`);
            method = 'PUT';
            body = VALUE;
            break;
          case 'get-linearizable':
            url = new URL(`${base}/v1/kv/${key}`);
            break;
          case 'get-serializable':
            url = new URL(`${base}/v1/kv/${key}?consistency=serializable`);
            break;
          case 'cas':
            url = new URL(`${base}/v1/cas`);
            method = 'POST';
            body = JSON.stringify({
              key: `bench/cas/${id}`,
              value: VALUE,
              expect: casRev === undefined ? { absent: true } : { mod_revision: casRev },
            });
            break;
          case 'keepalive': {
            const leases = job.leases ?? [];
            url = new URL(`${base}/v1/leases/${leases[n % leases.length]}/keepalive`);
            method = 'POST';
            body = '';
            break;
          }
          case 'lock':
            throw new Error('lock: run by lockClient');
        }
      const t0 = performance.now();
      // An operation belongs to the window it started in, however long it takes.
      const counted = recording;
      let ok = false;
      let revision: number | null = null;
      let servedMs: number | undefined;
      try {
        const res = await request(agent, url, method, body);
        ok = res.status === 200;
        servedMs = res.servedMs;
        if (ok && job.recordPuts) revision = (JSON.parse(res.text) as { revision: number }).revision;
        if (ok && job.scenario === 'cas') {
          const j = JSON.parse(res.text) as {
            succeeded: boolean;
            revision: number;
            current?: { mod_revision: number };
          };
          casRev = j.succeeded ? j.revision : j.current?.mod_revision;
        }
        if (ok) totalOps++;
        else note(res.status, res.text);
      } catch (e) {
        if (errorSample.length < 5) errorSample.push(String(e));
      }
      const dt = performance.now() - t0;
      if (job.recordPuts) puts.push({ revision, key, sentAt: performance.timeOrigin + t0, counted });
      if (counted) {
        if (ok) {
          lat.push(dt);
          if (servedMs !== undefined) served.push(servedMs);
        } else errors++;
      }
    }
  };
  const running = Array.from({ length: job.clients }, (_, i) =>
    job.scenario === 'lock' ? lockClient(i + 1) : client(i + 1),
  );
  await new Promise((r) => setTimeout(r, job.warmupMs));
  recording = true;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, job.durationMs));
  recording = false;
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const elapsedMs = t1 - t0;
  stop = true;
  await Promise.all(running);
  agent.destroy();
  grpc?.close();
  const sorted = Float64Array.from(lat).sort();
  const released = Float64Array.from(releaseLat).sort();
  const servedSorted = Float64Array.from(served).sort();
  return {
    ops: lat.length,
    totalOps,
    errors,
    errorSample,
    elapsedMs,
    opsPerSec: (lat.length * 1000) / elapsedMs,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length ? (sorted[sorted.length - 1] ?? Number.NaN) : Number.NaN,
    latenciesMs: Array.from(sorted, (x) => Math.round(x * 1000) / 1000),
    ...(served.length ? { servedMs: Array.from(servedSorted) } : {}),
    loadCpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
    ...(job.scenario === 'lock'
      ? { release: { p50Ms: percentile(released, 0.5), p99Ms: percentile(released, 0.99), errors: releaseErrors } }
      : {}),
    ...(job.recordPuts
      ? { windowStartAt: performance.timeOrigin + t0, windowEndAt: performance.timeOrigin + t1, puts }
      : {}),
  };
}

if (process.send) {
  process.on('message', (job: LoadJob) => {
    runLoad(job).then(
      (r) => process.send?.({ ok: true, result: r }),
      (e) => process.send?.({ ok: false, error: String(e) }),
    );
  });
}
