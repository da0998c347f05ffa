import { SimRng } from './rng.ts';

/**
 * Everything that shapes one simulated run. Time is in virtual milliseconds;
 * nodes tick every `tickMs` (give or take a node's clock drift).
 */
export interface SimConfig {
  /** A label for the fault mix, for reports. */
  readonly mix: string;
  readonly nodes: 3 | 5;
  /** Length of the fault phase, in virtual ms. */
  readonly steps: number;
  /** The most virtual ms the healed cluster gets to converge and finish every client op. */
  readonly healSteps: number;
  readonly clients: number;
  readonly keys: number;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly maxInflightMsgs: number;
  readonly maxMsgBytes: number;
  /** Followers learn commits from the next append or heartbeat (as the Durable Object runs). */
  readonly lazyCommit: boolean;
  /** Quorum-first replication: a spare follower gets new entries once this many wait (Config.holdBackEntries; 0: off). */
  readonly holdBackEntries: number;
  /** ReadIndex rounds ask only a quorum of voters (Config.quorumReads). */
  readonly quorumReads: boolean;
  /** Appends stand in for heartbeats (Config.appendsAsHeartbeats). */
  readonly appendsAsHeartbeats: boolean;
  /** Snapshot and compact once this many applied entries sit in a log (0: never). */
  readonly compactAfterEntries: number;
  /** The driver only queues proposals; the world flushes each node once per ms (batching). */
  readonly batching: boolean;
  /**
   * With batching: a leader whose followers are free still leaves fewer
   * proposals than its last batch held unpersisted for up to this many ms,
   * as NodeRuntime does (NodeSettings.batchWaitMs). Absent or 0: never.
   */
  readonly batchWaitMs?: number;
  /**
   * Leaders send new entries before persisting them and persist them at
   * their next event (DriverOptions.sendBeforePersist, as NodeRuntime does). Absent: persist first.
   */
  readonly sendBeforePersist?: boolean;
  /**
   * Nodes run as NodeRuntime runs them: only at an event or at their alarm,
   * the core's own next timeout (RawNode.ticksUntilTimeout), with the ticks
   * in between handed over at once (RawNode.elapse). Absent: ticked every tick.
   */
  readonly sleepy?: boolean;
  /**
   * With sleepy: a leader idle this many ticks whose followers hold all it
   * has goes quiet as NodeRuntime does (maybeQuiesce): a last heartbeat
   * round tells its followers, who forget it and sleep, and no node keeps an
   * alarm until a message or a request wakes it. Absent or 0: never.
   */
  readonly quiesceAfterTicks?: number;
  /** Clients start nothing during the first `length` ms of every `every` ms, so an idle cluster may go quiet. */
  readonly lulls?: { readonly every: number; readonly length: number };
  readonly net: {
    readonly minDelay: number;
    readonly maxDelay: number;
    /** Probability a message is lost. */
    readonly drop: number;
    /** Probability a message is delivered twice. */
    readonly duplicate: number;
    /** Probability a message is held back up to 10x maxDelay (reordering across heartbeats). */
    readonly longDelay: number;
    /**
     * A lost message is reported to its sender (RawNode.reportUnreachable), as
     * the Durable Object's fetch transport does when a send fails. A lost
     * reply is still silent to the original sender, as in production.
     */
    readonly reportLoss: boolean;
  };
  /** Mean virtual ms between fault events of each kind (0: never). */
  readonly faults: {
    readonly partitionEvery: number;
    readonly crashEvery: number;
    readonly membershipEvery: number;
    readonly transferEvery: number;
    /** The leader proposes a history compaction (absent: never; pinned regressions predate it). */
    readonly historyCompactEvery?: number;
    /** The leader proposes a lease command: grant, attach a key, checkpoint or revoke (absent: never). */
    readonly leaseEvery?: number;
    /** A node stops running for up to three election timeouts, its messages queued (absent: never). */
    readonly stallEvery?: number;
    /** Stalls strike only nodes that are not leading. */
    readonly stallFollowersOnly?: boolean;
  };
  /** One node's messages (both ways) take this many extra ms: it lags and needs snapshots. */
  readonly slowNodeDelay: number;
  /** Per-client probability, per virtual ms, of starting an op when idle. */
  readonly opRate: number;
  /** A client attempt with no answer after this long is presumed lost; it retries elsewhere. */
  readonly attemptTimeout: number;
  /** An op still unfinished this long after invocation is given up (unknown or fail). */
  readonly opDeadline: number;
  /**
   * Deliberately broken (sanity test only): gets read some node's state
   * machine directly, without the ReadIndex barrier, so stale reads happen.
   */
  readonly staleReads?: boolean;
}

const BASE: Omit<SimConfig, 'mix' | 'nodes'> = {
  steps: 4000,
  healSteps: 4000,
  clients: 4,
  keys: 3,
  tickMs: 10,
  electionTicks: 10,
  heartbeatTicks: 2,
  maxInflightMsgs: 8,
  maxMsgBytes: 4096,
  lazyCommit: false,
  holdBackEntries: 0,
  quorumReads: false,
  appendsAsHeartbeats: false,
  compactAfterEntries: 40,
  batching: false,
  net: {
    minDelay: 1,
    maxDelay: 8,
    drop: 0.02,
    duplicate: 0.02,
    longDelay: 0.01,
    reportLoss: true,
  },
  faults: { partitionEvery: 0, crashEvery: 0, membershipEvery: 0, transferEvery: 0 },
  slowNodeDelay: 0,
  opRate: 0.04,
  attemptTimeout: 150,
  opDeadline: 1200,
};

/** The fault mixes the seeds rotate through. */
export const MIXES = ['calm', 'lossy', 'partitions', 'crashes', 'membership', 'slow', 'chaos'] as const;
export type Mix = (typeof MIXES)[number];

function mixFaults(mix: Mix, r: SimRng): Partial<SimConfig> {
  switch (mix) {
    case 'calm':
      return {
        net: { ...BASE.net, drop: 0, duplicate: 0, longDelay: 0 },
        faults: { ...BASE.faults, transferEvery: 700 },
      };
    case 'lossy':
      return {
        net: { ...BASE.net, maxDelay: 15, drop: 0.1 + r.int(15) / 100, duplicate: 0.08, longDelay: 0.04 },
        faults: { ...BASE.faults, transferEvery: 900 },
      };
    case 'partitions':
      return { faults: { ...BASE.faults, partitionEvery: 250, transferEvery: 1200 } };
    case 'crashes':
      return { faults: { ...BASE.faults, crashEvery: 300 } };
    case 'membership':
      return { faults: { ...BASE.faults, membershipEvery: 250, transferEvery: 600, crashEvery: 1200 } };
    case 'slow':
      return {
        slowNodeDelay: 20 + r.int(60),
        compactAfterEntries: 10 + r.int(15),
        faults: { ...BASE.faults, partitionEvery: 600, crashEvery: 900 },
      };
    case 'chaos':
      return {
        net: { ...BASE.net, maxDelay: 12, drop: 0.05, duplicate: 0.05, longDelay: 0.03 },
        faults: { partitionEvery: 400, crashEvery: 500, membershipEvery: 600, transferEvery: 800 },
      };
  }
}

/**
 * The configuration a seed stands for: the seed picks the fault mix, the
 * cluster size and the tuning, so a seed alone reproduces a run. `override`
 * pins fields (e.g. from the CLI) after the seed's choices.
 */
export function configForSeed(seed: number, override: Partial<SimConfig> = {}): SimConfig {
  const r = new SimRng(seed ^ 0x5eed5eed);
  const mix = MIXES[seed % MIXES.length] as Mix;
  const nodes: 3 | 5 = r.chance(0.5) ? 3 : 5;
  const tuned: Partial<SimConfig> = {
    clients: 3 + r.int(3),
    keys: 2 + r.int(3),
    maxInflightMsgs: r.pick([1, 2, 8, 64]),
    maxMsgBytes: r.pick([64, 256, 4096]),
    compactAfterEntries: r.pick([0, 15, 30, 60]),
    batching: r.chance(0.3),
    heartbeatTicks: r.pick([1, 2, 3]),
  };
  // Drawn from a stream of its own, so the seeds kept as regressions still mean the same runs.
  const lazyCommit = new SimRng(seed ^ 0x1a2c0e17).chance(0.5);
  // Half the seeds replicate quorum-first, as the Durable Object does (its own stream, too).
  const hold = new SimRng(seed ^ 0x401dbac);
  const holdBackEntries = hold.chance(0.5) ? hold.pick([2, 8, 64]) : 0;
  const quorumReads = hold.chance(0.5);
  // Half the seeds let appends stand in for heartbeats, as the Durable Object does (its own stream, too).
  const appendsAsHeartbeats = new SimRng(seed ^ 0x4ea27bea).chance(0.5);
  const base = {
    ...BASE,
    mix,
    nodes,
    ...tuned,
    ...mixFaults(mix, r),
    lazyCommit,
    holdBackEntries,
    quorumReads,
    appendsAsHeartbeats,
  };
  // Half the seeds compact the history through the log as they go (its own stream, too).
  const historyCompactEvery = new SimRng(seed ^ 0x0c0ffee5).chance(0.5) ? 200 : 0;
  // Half the seeds grant, attach, checkpoint and revoke leases on keys of their own (its own stream, too).
  const leaseEvery = new SimRng(seed ^ 0x1ea5e5).chance(0.5) ? 40 : 0;
  // Half the seeds stall a node now and then: a busy isolate (its own stream, too).
  const stallEvery = new SimRng(seed ^ 0x57a11ed).chance(0.5) ? 300 : 0;
  // Half the seeds sleep between events, as the Durable Object does (its own stream, too).
  const sleepy = new SimRng(seed ^ 0x51ee9e).chance(0.5);
  // Half the batching seeds wait for bursts, as the Durable Object does (its own stream, too).
  const wait = new SimRng(seed ^ 0xba7c4e5);
  const batchWaitMs = wait.chance(0.5) ? wait.pick([1, 2, 5]) : 0;
  // Half the seeds let leaders send before they persist, as the Durable Object does (its own stream, too).
  const sendBeforePersist = new SimRng(seed ^ 0x5e4dbef).chance(0.5);
  // Half the sleepy seeds go quiet in their clients' lulls, as the Durable Object does (its own stream, too).
  const q = new SimRng(seed ^ 0x9e1e7);
  const quiet = sleepy && q.chance(0.5);
  const quiescence = quiet
    ? { quiesceAfterTicks: q.pick([3, 8, 15]), lulls: { every: 900 + q.int(700), length: 450 + q.int(400) } }
    : {};
  return {
    ...base,
    sleepy,
    ...quiescence,
    batchWaitMs,
    sendBeforePersist,
    faults: { ...base.faults, historyCompactEvery, leaseEvery, stallEvery },
    ...override,
  };
}
