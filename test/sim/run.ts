import { checkLinearizable, type HistoryOp } from './checker.ts';
import { configForSeed, type SimConfig } from './config.ts';
import { SimViolation } from './invariants.ts';
import { World } from './world.ts';

export interface SimStats {
  ops: number;
  ok: number;
  fail: number;
  unknown: number;
  elections: number;
  /** Snapshots taken (log compactions) and installed from a leader. */
  compactions: number;
  installs: number;
  crashes: number;
  partitions: number;
  transfers: number;
  confChanges: number;
  /** History compactions applied (compact commands through the log). */
  historyCompactions: number;
  leaseOps: number;
  /** Nodes stalled (their process busy, messages queued). */
  stalls: number;
  /** Vote requests sent (PreVote included). */
  voteRequests: number;
  /** Times a sleeping leader ran only because its own timeout fell due (SimConfig.sleepy). */
  leaderAlarms: number;
  /** SimConfig.quiesceAfterTicks: times a leader went quiet, and times a quiet node was woken. */
  quiesced: number;
  woken: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  linExplored: number;
  linInconclusive: boolean;
  virtualMs: number;
}

export interface SimResult {
  readonly seed: number;
  readonly config: SimConfig;
  readonly ok: boolean;
  /** The failure, with the seed and the virtual ms where it happened. */
  readonly error?: string;
  /** The failed property (e.g. "election safety", "linearizability"). */
  readonly kind?: string;
  readonly stats: SimStats;
  /** A digest of every delivered message and applied entry, in order: equal seeds give equal traces. */
  readonly trace: string;
  readonly history: readonly HistoryOp[];
}

export interface RunOptions {
  readonly verbose?: (line: string) => void;
  /** Bound of the linearizability search per run. */
  readonly maxStates?: number;
}

/** Runs one seed to the end (fault phase, heal, convergence, linearizability) and never throws. */
export function runSeed(seed: number, config: SimConfig = configForSeed(seed), opts: RunOptions = {}): SimResult {
  const w = new World(seed, config, opts.verbose);
  let error: string | undefined;
  let kind: string | undefined;
  let linExplored = 0;
  let linInconclusive = false;
  try {
    w.run();
    const lin = checkLinearizable(w.clients.history, { maxStates: opts.maxStates ?? 200_000 });
    linExplored = lin.explored ?? 0;
    linInconclusive = lin.inconclusive === true;
    if (!lin.ok) {
      kind = 'linearizability';
      error = `history not linearizable${lin.key === undefined ? '' : ` on key ${lin.key}`}: ${lin.message ?? ''}`;
    }
  } catch (e) {
    kind = e instanceof SimViolation ? e.kind : 'exception';
    const msg = e instanceof Error ? (e instanceof SimViolation ? e.message : (e.stack ?? e.message)) : String(e);
    error = `seed ${seed} at ${w.time} ms: ${msg}`;
  }
  if (error !== undefined && !error.startsWith('seed')) error = `seed ${seed}: ${error}`;
  const c = w.clients.stats();
  const f = w.faults.stats;
  const stats: SimStats = {
    ...c,
    elections: w.inv.elections,
    compactions: w.nodes.reduce((s, n) => s + n.store.compactions, 0),
    installs: w.nodes.reduce((s, n) => s + n.sm.restores, 0),
    crashes: f.crashes,
    partitions: f.partitions,
    transfers: f.transfers,
    confChanges: f.confChanges,
    historyCompactions: f.historyCompactions,
    leaseOps: f.leaseOps,
    stalls: f.stalls,
    voteRequests: w.voteRequests,
    leaderAlarms: w.leaderAlarms,
    quiesced: w.quiesced,
    woken: w.woken,
    delivered: w.delivered,
    dropped: w.net.dropped,
    duplicated: w.net.duplicated,
    linExplored,
    linInconclusive,
    virtualMs: w.time,
  };
  return {
    seed,
    config,
    ok: error === undefined,
    ...(error === undefined ? {} : { error, kind }),
    stats,
    trace: w.trace.hex(),
    history: w.clients.history,
  };
}
