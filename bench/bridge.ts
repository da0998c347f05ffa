/**
 * The bridge scenario of `npm run bench` (issue 18), run by bench/run.ts
 * against the 3-node cluster: put and linearizable get through the store's
 * /v3 routes directly (etcd's JSON gateway, as the bridge calls them), then
 * the same through the gRPC bridge (bench/bridge-process.ts, its own
 * process) with etcd's gRPC API, at each client count, interleaved --repeat
 * times. The ratio (bridge ops/s over direct ops/s, medians) is the bridge's
 * own cost; its CPU per call says where that cost goes. The bridge process
 * is stopped before this returns.
 */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadJob, LoadResult, Scenario } from './load.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const round = (x: number, d = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

export interface BridgeOptions {
  readonly url: string;
  readonly scenarios: readonly Scenario[];
  readonly clients: readonly number[];
  readonly repeat: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  readonly runLoad: (job: LoadJob) => Promise<LoadResult>;
  readonly log: (s: string) => void;
  /** Where to write the bridge process's CPU profile, if anywhere. */
  readonly profileDir?: string | undefined;
}

interface Figures {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** One direct run and the bridge run after it. */
export interface BridgePair {
  readonly scenario: Scenario;
  readonly clients: number;
  readonly repeat: number;
  readonly direct: Figures;
  readonly bridge: Figures & {
    /** The bridge process's CPU per successful call (µs), warm-up included. */
    readonly cpuMicrosPerOp: number;
    /** Its CPU over the run, in cores. */
    readonly cpuCores: number;
  };
  readonly ratio: number;
}

export interface BridgeMedian {
  readonly scenario: Scenario;
  readonly clients: number;
  readonly repeats: number;
  readonly directOpsPerSec: number;
  readonly bridgeOpsPerSec: number;
  readonly directP99Ms: number;
  readonly bridgeP99Ms: number;
  readonly bridgeCpuMicrosPerOp: number;
  readonly ratio: number;
  readonly ratioMin: number;
  readonly ratioMax: number;
}

export interface BridgeResult {
  readonly method: string;
  readonly pairs: BridgePair[];
  readonly medians: BridgeMedian[];
}

/** The bridge's process: its port once it listens, and its CPU time on request. */
class BridgeProcess {
  private readonly child: ChildProcess;
  readonly port: Promise<number>;

  /** `profileDir`: write the bridge's CPU profile there (Node's --cpu-prof) when it stops. */
  constructor(storeUrl: string, profileDir: string | undefined) {
    const prof = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
    this.child = fork(path.join(here, 'bridge-process.ts'), [storeUrl], {
      execArgv: ['--experimental-strip-types', '--no-warnings', ...prof],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.port = this.next<{ port: number }>(15_000).then((m) => m.port);
  }

  /** The bridge's CPU time so far (µs). */
  async cpuMicros(): Promise<number> {
    this.child.send('cpu');
    return (await this.next<{ cpuMicros: number }>(5_000)).cpuMicros;
  }

  /** Asks the bridge to stop (it exits once closed, writing its profile), and kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill(), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private next<T>(timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the bridge process did not answer')), timeoutMs);
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`the bridge process exited (${code})`));
      };
      this.child.once('message', (m: T) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(m);
      });
      this.child.once('exit', onExit);
    });
  }
}

const figures = (r: LoadResult): Figures => ({
  opsPerSec: round(r.opsPerSec, 1),
  p50Ms: round(r.p50Ms),
  p99Ms: round(r.p99Ms),
  errors: r.errors,
});

export async function bridgeScenario(o: BridgeOptions): Promise<BridgeResult> {
  const bridge = new BridgeProcess(o.url, o.profileDir);
  const pairs: BridgePair[] = [];
  try {
    const address = `127.0.0.1:${await bridge.port}`;
    for (const scenario of o.scenarios)
      for (const clients of o.clients)
        for (let rep = 0; rep < o.repeat; rep++) {
          const job = { scenario, clients, warmupMs: o.warmupMs, durationMs: o.durationMs, keys: o.keys };
          const direct = await o.runLoad({ ...job, base: o.url, target: 'etcd' });
          const cpu0 = await bridge.cpuMicros();
          const t0 = Date.now();
          const viaBridge = await o.runLoad({ ...job, base: address, target: 'grpc' });
          const cpu = (await bridge.cpuMicros()) - cpu0;
          const wallMs = Date.now() - t0;
          const pair: BridgePair = {
            scenario,
            clients,
            repeat: rep,
            direct: figures(direct),
            bridge: {
              ...figures(viaBridge),
              cpuMicrosPerOp: round(cpu / Math.max(1, viaBridge.totalOps), 1),
              cpuCores: round(cpu / 1000 / wallMs),
            },
            ratio: round(viaBridge.opsPerSec / direct.opsPerSec, 3),
          };
          pairs.push(pair);
          o.log(
            `bridge ${scenario} c=${clients}${o.repeat > 1 ? ` #${rep + 1}` : ''}: /v3 ${pair.direct.opsPerSec} ops/s p99 ${pair.direct.p99Ms}, gRPC ${pair.bridge.opsPerSec} ops/s p99 ${pair.bridge.p99Ms} ratio ${pair.ratio} (bridge ${pair.bridge.cpuMicrosPerOp} µs CPU/op; errors ${direct.errors}/${viaBridge.errors})`,
          );
          for (const [name, r] of [
            ['/v3', direct],
            ['gRPC', viaBridge],
          ] as const)
            if (r.errors > 0) o.log(`  ${name} errors: ${r.errorSample.join(' | ')}`);
        }
  } finally {
    await bridge.stop();
  }
  return {
    method:
      "per scenario and client count, --repeat pairs: etcd-gateway JSON on the store's /v3 routes (HTTP/1.1 keep-alive), then etcd's gRPC API through the bridge (one HTTP/2 channel, as clientv3); ratio = gRPC ops/s / direct ops/s; bridge CPU from its own process",
    pairs,
    medians: bridgeMedians(pairs),
  };
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

function bridgeMedians(pairs: readonly BridgePair[]): BridgeMedian[] {
  const out: BridgeMedian[] = [];
  for (const p of pairs) {
    if (out.some((m) => m.scenario === p.scenario && m.clients === p.clients)) continue;
    const same = pairs.filter((x) => x.scenario === p.scenario && x.clients === p.clients);
    const ratios = same.map((x) => x.ratio);
    out.push({
      scenario: p.scenario,
      clients: p.clients,
      repeats: same.length,
      directOpsPerSec: round(median(same.map((x) => x.direct.opsPerSec)), 1),
      bridgeOpsPerSec: round(median(same.map((x) => x.bridge.opsPerSec)), 1),
      directP99Ms: round(median(same.map((x) => x.direct.p99Ms))),
      bridgeP99Ms: round(median(same.map((x) => x.bridge.p99Ms))),
      bridgeCpuMicrosPerOp: round(median(same.map((x) => x.bridge.cpuMicrosPerOp)), 1),
      ratio: round(median(ratios), 3),
      ratioMin: Math.min(...ratios),
      ratioMax: Math.max(...ratios),
    });
  }
  return out;
}

export function bridgeSummary(r: BridgeResult | null): string[] {
  if (!r) return [];
  return r.medians.map(
    (m) =>
      `bridge ${m.scenario} c=${m.clients}: gRPC ${m.bridgeOpsPerSec} ops/s (p99 ${m.bridgeP99Ms} ms) vs /v3 ${m.directOpsPerSec} ops/s (p99 ${m.directP99Ms} ms): ratio ${m.ratio} (${m.ratioMin}..${m.ratioMax}, n=${m.repeats}), bridge CPU ${m.bridgeCpuMicrosPerOp} µs/op`,
  );
}
