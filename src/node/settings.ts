import type { NodeId } from '../raft/index.ts';

/** A member of the initial cluster, with an optional Durable Object location hint. */
export interface Member {
  readonly id: NodeId;
  readonly locationHint?: DurableObjectLocationHint | undefined;
}

/** How a node runs, read from the Worker's vars (wrangler.toml). */
export interface NodeSettings {
  readonly members: readonly Member[];
  /** Milliseconds per core tick. */
  readonly tickMs: number;
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  /** The election timeout is electionTicks plus a random 0 to electionJitterTicks - 1 ticks. */
  readonly electionJitterTicks: number;
  /** AppendEntries in flight per follower; proposals arriving meanwhile share the next one. */
  readonly maxInflightMsgs: number;
  /**
   * A proposal that finds followers free to take it waits up to this long
   * (ms) for the rest of a burst as large as the last batch, so the burst
   * goes out in one append rather than its first proposal alone. Only a
   * leader whose last batch held more than one proposal waits: one client
   * never does. 0: never wait.
   */
  readonly batchWaitMs: number;
  /**
   * A leader sends new entries before persisting them (thesis §10.2.1) and
   * persists them with its next event, which is normally the follower's
   * answer: one transaction then persists and applies them. If no event
   * comes within this many ms, it persists them alone. 0: persist first.
   */
  readonly sendBeforePersistMs: number;
  /**
   * Quorum-first replication (the core's holdBackEntries): a follower the
   * next commit does not need gets new entries at the leader's next tick,
   * or sooner once this many wait for it. 0: every follower at once.
   */
  readonly holdBackEntries: number;
  /** A peer that does not answer a batch within this is reported unreachable. */
  readonly rpcTimeoutMs: number;
  /** Compact the log once this many applied entries sit in it. */
  readonly compactAfterEntries: number;
  /** Compaction keeps this many applied entries, so a follower a little behind needs no snapshot. */
  readonly compactKeepEntries: number;
  /**
   * Revisions of history (for reads at a revision and watches) that the
   * leader keeps when it compacts the history through the log.
   */
  readonly historyKeepRevisions: number;
  /**
   * After this many ticks with nothing to do, a caught-up leader stops
   * heartbeats (the cluster sleeps). Every tick awake costs a group its
   * heartbeats (about 7 requests a second with 3 nodes), so a write to an
   * otherwise idle group costs what follows it until the group sleeps: 0.5 s
   * by default, two or three heartbeat rounds (the first sends a held-back
   * follower the write, the last tells every follower the commit index).
   * Waking costs no round trip: the next append or read round does it.
   */
  readonly quiesceAfterTicks: number;
  /** How often the leader checkpoints the remaining TTL of leases with more than this left (etcd: 5 min). */
  readonly leaseCheckpointMs: number;
  /** Test-only: the fault layer and its control route. Never set in production config. */
  readonly faultInjection: boolean;
}

/** The longest election timeout, in ms: how long a cluster may be without a leader before an election starts. */
export function electionTimeoutMs(s: NodeSettings): number {
  return (s.electionTicks + s.electionJitterTicks) * s.tickMs;
}

/**
 * The shortest lease TTL granted, in whole seconds: as etcd computes its
 * own, one and a half election timeouts (which is more than an election
 * timeout and a heartbeat), so a lease can outlive a failover.
 */
export function minLeaseTtl(s: NodeSettings): number {
  const ms = Math.max(1.5 * electionTimeoutMs(s), electionTimeoutMs(s) + s.heartbeatTicks * s.tickMs);
  return Math.max(1, Math.ceil(ms / 1000));
}

export interface SettingsEnv {
  readonly CLUSTER_NODES?: string;
  readonly TICK_MS?: string;
  readonly HEARTBEAT_TICKS?: string;
  readonly ELECTION_TICKS?: string;
  readonly ELECTION_JITTER_TICKS?: string;
  readonly RPC_TIMEOUT_MS?: string;
  readonly MAX_INFLIGHT_MSGS?: string;
  readonly BATCH_WAIT_MS?: string;
  readonly SEND_BEFORE_PERSIST_MS?: string;
  readonly HOLD_BACK_ENTRIES?: string;
  readonly COMPACT_AFTER_ENTRIES?: string;
  readonly COMPACT_KEEP_ENTRIES?: string;
  readonly HISTORY_KEEP_REVISIONS?: string;
  readonly QUIESCE_AFTER_TICKS?: string;
  readonly LEASE_CHECKPOINT_MS?: string;
  readonly FAULT_INJECTION?: string;
}

const HINTS = new Set(['wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me']);

/** Whether `s` is a Durable Object location hint this deployment knows. */
export function isLocationHint(s: string): s is DurableObjectLocationHint {
  return HINTS.has(s);
}

/**
 * Production defaults suit round trips of up to about 200 ms: 50 ms ticks,
 * a heartbeat every 250 ms, and an election timeout of 2-2.5 s. The fine
 * tick only sets how precisely timeouts fire: alarms are armed for the next
 * tick that matters (a heartbeat, a timeout), not for every tick.
 *
 * The timeout's random spread (0.5 s) is narrower than etcd's (a whole
 * election timeout): the first follower to notice a dead leader campaigns on
 * average 0.17 s past the 2 s instead of 0.67 s (3 nodes). Two followers
 * timing out within one round trip of each other split the vote and retry
 * after another timeout: rare within a region, but about one failover in
 * five at 50 ms round trips and most at 200 ms, so for nodes in distant
 * regions set ELECTION_JITTER_TICKS to ELECTION_TICKS.
 */
export function readSettings(env: SettingsEnv): NodeSettings {
  const members = parseMembers(env.CLUSTER_NODES ?? 'node-0,node-1,node-2');
  const heartbeatTicks = int(env.HEARTBEAT_TICKS, 5, 'HEARTBEAT_TICKS');
  const electionTicks = int(env.ELECTION_TICKS, 40, 'ELECTION_TICKS');
  if (electionTicks <= heartbeatTicks) throw new Error('ELECTION_TICKS must exceed HEARTBEAT_TICKS');
  const electionJitterTicks = int(env.ELECTION_JITTER_TICKS, Math.ceil(electionTicks / 4), 'ELECTION_JITTER_TICKS');
  if (electionJitterTicks < 1) throw new Error('ELECTION_JITTER_TICKS must be at least 1');
  return {
    members,
    tickMs: int(env.TICK_MS, 50, 'TICK_MS'),
    heartbeatTicks,
    electionTicks,
    electionJitterTicks,
    maxInflightMsgs: Math.max(1, int(env.MAX_INFLIGHT_MSGS, 1, 'MAX_INFLIGHT_MSGS')),
    batchWaitMs: int(env.BATCH_WAIT_MS, 2, 'BATCH_WAIT_MS'),
    sendBeforePersistMs: int(env.SEND_BEFORE_PERSIST_MS, 10, 'SEND_BEFORE_PERSIST_MS'),
    holdBackEntries: int(env.HOLD_BACK_ENTRIES, 64, 'HOLD_BACK_ENTRIES'),
    rpcTimeoutMs: int(env.RPC_TIMEOUT_MS, 2000, 'RPC_TIMEOUT_MS'),
    compactAfterEntries: int(env.COMPACT_AFTER_ENTRIES, 10_000, 'COMPACT_AFTER_ENTRIES'),
    compactKeepEntries: int(env.COMPACT_KEEP_ENTRIES, 1_000, 'COMPACT_KEEP_ENTRIES'),
    historyKeepRevisions: int(env.HISTORY_KEEP_REVISIONS, 10_000, 'HISTORY_KEEP_REVISIONS'),
    quiesceAfterTicks: int(env.QUIESCE_AFTER_TICKS, 10, 'QUIESCE_AFTER_TICKS'),
    leaseCheckpointMs: Math.max(1000, int(env.LEASE_CHECKPOINT_MS, 300_000, 'LEASE_CHECKPOINT_MS')),
    faultInjection: env.FAULT_INJECTION === 'enabled',
  };
}

/** "node-0,node-1@weur" -> members; a name is 1-64 of [A-Za-z0-9_-]. */
export function parseMembers(text: string): Member[] {
  const members = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const [id = '', hint] = s.split('@');
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new Error(`CLUSTER_NODES: bad node name ${JSON.stringify(id)}`);
      if (hint !== undefined && !HINTS.has(hint))
        throw new Error(`CLUSTER_NODES: unknown location hint ${JSON.stringify(hint)}`);
      return { id, locationHint: hint as DurableObjectLocationHint | undefined };
    });
  if (members.length === 0) throw new Error('CLUSTER_NODES: no members');
  if (new Set(members.map((m) => m.id)).size !== members.length) throw new Error('CLUSTER_NODES: duplicate node names');
  return members;
}

function int(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}
