import { configForSeed, type SimConfig } from './config.ts';

/** A seed that once failed, pinned with the configuration it failed under. */
export interface Regression {
  readonly seed: number;
  readonly config: SimConfig;
  readonly note: string;
}

/**
 * Every seed that ever failed while the simulator was written, run by
 * sim.test.ts on each `npm test`. Add new ones with a note of what broke,
 * and pin what the failing run used (at least `steps`), since a seed's
 * trajectory changes with any knob.
 */
/**
 * A seed's configuration as when it failed: without the lease commands (they
 * draw from the run's stream) and the quorum-first replication and reads, the
 * batch wait, the leader's send-before-persist and quiescence added since.
 */
function asFailed(seed: number, override: Partial<SimConfig>): SimConfig {
  const c = configForSeed(seed, {
    holdBackEntries: 0,
    quorumReads: false,
    appendsAsHeartbeats: false,
    sleepy: false,
    batchWaitMs: 0,
    sendBeforePersist: false,
    quiesceAfterTicks: 0,
    lulls: undefined,
    ...override,
  });
  return { ...c, faults: { ...c.faults, leaseEvery: 0 } };
}

export const REGRESSIONS: readonly Regression[] = [
  {
    // Fixed liveness bug (lost reply): at 2993 ms n2's reply for index 100 to
    // leader n0 (term 3, maxInflightMsgs 1) was lost; the full in-flight window
    // never freed (heartbeat replies only retried sendAppend, which was paused),
    // so n2 stayed at commit 99 for the rest of the term. Now a heartbeat reply
    // frees one slot of a full window, as etcd does.
    seed: 57,
    config: {
      mix: 'lossy',
      nodes: 3,
      steps: 3000,
      healSteps: 4000,
      clients: 3,
      keys: 2,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      maxInflightMsgs: 1,
      maxMsgBytes: 64,
      lazyCommit: false,
      holdBackEntries: 0,
      quorumReads: false,
      appendsAsHeartbeats: false,
      compactAfterEntries: 0,
      batching: false,
      net: { minDelay: 1, maxDelay: 15, drop: 0.16, duplicate: 0.08, longDelay: 0.04, reportLoss: true },
      faults: { partitionEvery: 0, crashEvery: 0, membershipEvery: 0, transferEvery: 900 },
      slowNodeDelay: 0,
      opRate: 0.04,
      attemptTimeout: 150,
      opDeadline: 1200,
    },
    note: 'liveness (fixed): a lost AppendEntries reply with a full in-flight window stalled the follower for the whole term',
  },
  {
    // Fixed liveness bug (late append): follower n3 (commit 253) got leader n0's
    // late append prevIndex 252 carrying 253..254 and answered 253, dropping 254;
    // 254 stayed in flight and n3 stalled. Now the follower keeps the entries
    // past its commit index and acknowledges them.
    seed: 20199,
    config: asFailed(20199, { steps: 3000, lazyCommit: false }),
    note: 'liveness (fixed): an append answered with the commit index left its tail in flight forever (full window)',
  },
  {
    seed: 1397,
    config: asFailed(1397, { steps: 3000, lazyCommit: false }),
    note: 'a follower stalled on a late append with a full in-flight window (the seed 20199 bug)',
  },
  {
    seed: 1,
    config: asFailed(1, { steps: 3000, lazyCommit: false }),
    note: 'stalled before the simulator reported lost sends to their sender (reportUnreachable), as the fetch transport does (the seed 57 bug)',
  },
  {
    seed: 10,
    config: asFailed(10, { steps: 3000, lazyCommit: false }),
    note: 'messages to a crashed node, and requests whose handler crashed, were lost silently: a follower stalled (the seed 57 bug)',
  },
  {
    seed: 23,
    config: asFailed(23, { steps: 3000, lazyCommit: false }),
    note: 'simulator bug: flagged a follower of a stale leader persisting an uncommitted entry at an index committed in a newer term (legal; only committed prefixes must agree)',
  },
  {
    seed: 5088,
    config: asFailed(5088, { steps: 12000, lazyCommit: false }),
    note: 'simulator bug: a membership episode ended on a new leader whose applied configuration still lagged its log, leaving a node removed for good',
  },
  {
    seed: 8331,
    config: asFailed(8331, { steps: 3000, nodes: 5, lazyCommit: false }),
    note: 'a follower stalled with a full in-flight window (the seed 57/20199 bugs)',
  },
  {
    seed: 100448,
    config: asFailed(100448, { lazyCommit: false }),
    note: 'simulator bug: a slow candidate legally won term 1 after term 2 had committed entries; Leader Completeness now checks only entries committed in earlier terms',
  },
  {
    seed: 2251,
    config: {
      mix: 'membership',
      nodes: 3,
      steps: 4000,
      healSteps: 4000,
      clients: 3,
      keys: 4,
      tickMs: 10,
      electionTicks: 10,
      heartbeatTicks: 1,
      maxInflightMsgs: 64,
      maxMsgBytes: 256,
      lazyCommit: false,
      holdBackEntries: 0,
      quorumReads: false,
      appendsAsHeartbeats: true,
      compactAfterEntries: 30,
      batching: false,
      sleepy: true,
      net: { minDelay: 1, maxDelay: 8, drop: 0.02, duplicate: 0.02, longDelay: 0.01, reportLoss: true },
      faults: {
        partitionEvery: 0,
        crashEvery: 1200,
        membershipEvery: 250,
        transferEvery: 600,
        historyCompactEvery: 0,
        leaseEvery: 40,
        stallEvery: 300,
      },
      slowNodeDelay: 0,
      opRate: 0.04,
      attemptTimeout: 150,
      opDeadline: 1200,
    },
    note: 'liveness (fixed): n1, left behind at {n0,n1} with the entry adding n2 unapplied, dropped n2 as an outsider once n0 was removed, so {n1,n2} could elect nobody; an outsider asking with a newer log is now judged (sleeping nodes, found by SimConfig.sleepy)',
  },
];
