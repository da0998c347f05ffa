import type { Storage } from './storage.ts';
import type { Index, Logger, NodeId, Rng } from './types.ts';

/** How a RawNode is made. Ticks are the core's only notion of time. */
export interface Config {
  readonly id: NodeId;
  readonly storage: Storage;
  readonly rng: Rng;
  /** The last index the state machine applied before this start (0 on a fresh node). */
  readonly applied?: Index;
  /**
   * A follower campaigns after electionTicks plus a random 0 to
   * electionJitterTicks - 1 ticks of silence.
   */
  readonly electionTicks?: number;
  /**
   * The spread of the randomized election timeout (default electionTicks, as
   * in etcd). A smaller spread elects sooner after a leader fails (the first
   * of the followers to time out is on average spread/(followers+1) past
   * electionTicks) but makes split votes likelier: two followers that time
   * out within one round trip of each other split the vote and try again.
   */
  readonly electionJitterTicks?: number;
  /** A leader sends heartbeats every heartbeatTicks ticks. Must be below electionTicks. */
  readonly heartbeatTicks?: number;
  /** PreVote (thesis §9.6): a node first asks whether it could win before raising its term. */
  readonly preVote?: boolean;
  /** CheckQuorum (thesis §6.2): a leader that has not heard from a quorum for an election timeout steps down. */
  readonly checkQuorum?: boolean;
  /** Maximum AppendEntries in flight per follower in replicate state. */
  readonly maxInflightMsgs?: number;
  /** Maximum entry bytes in flight per follower. */
  readonly maxInflightBytes?: number;
  /** Maximum entry bytes in one AppendEntries (at least one entry is always sent). */
  readonly maxMsgBytes?: number;
  /**
   * Followers learn a new commit index from the next AppendEntries or
   * heartbeat instead of a commit-only AppendEntries sent at once (etcd's
   * behaviour, the default). Saves a message and a reply per follower per
   * commit where each message is a billed request; followers then apply up
   * to a heartbeat interval later (a read a follower forwards is not held
   * up: the heartbeat round that confirms it carries the commit).
   */
  readonly lazyCommit?: boolean;
  /**
   * Quorum-first replication: new entries go at once to the first followers
   * a commit needs (a quorum with the leader); a voter beyond them gets them
   * at the leader's next tick, or sooner once this many wait for it, when it
   * answers a heartbeat, or when it is among the first ready for a newer
   * entry. Fewer, larger AppendEntries (each a billed request, and each
   * follower's persist and apply a transaction), at the cost of spare
   * followers lagging by about a tick. 0 (the default): every ready follower
   * at once.
   */
  readonly holdBackEntries?: number;
  /**
   * A ReadIndex round asks only as many voters as a quorum needs besides
   * the leader (the fastest to confirm the last round) instead of every
   * follower: fewer heartbeats per linearizable read. If one of them does not
   * answer, the next periodic heartbeat (to every follower) confirms the
   * reads waiting, so a read waits at most a heartbeat interval longer.
   */
  readonly quorumReads?: boolean;
  /**
   * A periodic heartbeat round skips a follower that was sent an
   * AppendEntries since the last round and has answered since (that append
   * reset its election timer; the commit index rides on the next append or
   * round), or that answered the last round and knows the commit index (it
   * hears from the leader at least every other round), and sends a spare
   * follower (holdBackEntries) what it was held back from in an
   * AppendEntries instead of a heartbeat, at the round rather than at every
   * tick: each message is a billed request, and so is the alarm that a tick
   * is. A round that carries a read, an explicit heartbeat(), and the round
   * after a stall go to every follower.
   */
  readonly appendsAsHeartbeats?: boolean;
  /** Maximum bytes of entries handed to the application in one Ready. */
  readonly maxCommittedBytesPerReady?: number;
  readonly logger?: Logger;
}

/** A Config with every default filled in. */
export type ResolvedConfig = Required<Config>;

const silent: Logger = { debug() {}, warn() {} };

export function resolveConfig(c: Config): ResolvedConfig {
  const electionTicks = c.electionTicks ?? 10;
  const r: ResolvedConfig = {
    applied: 0,
    electionTicks,
    electionJitterTicks: electionTicks,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    maxInflightMsgs: 256,
    maxInflightBytes: 8 * 1024 * 1024,
    maxMsgBytes: 1024 * 1024,
    maxCommittedBytesPerReady: 4 * 1024 * 1024,
    lazyCommit: false,
    holdBackEntries: 0,
    quorumReads: false,
    appendsAsHeartbeats: false,
    logger: silent,
    ...c,
  };
  if (r.id === '') throw new Error('config: id must not be empty');
  if (r.heartbeatTicks < 1) throw new Error('config: heartbeatTicks must be at least 1');
  if (r.electionTicks <= r.heartbeatTicks) throw new Error('config: electionTicks must exceed heartbeatTicks');
  if (r.electionJitterTicks < 1) throw new Error('config: electionJitterTicks must be at least 1');
  if (r.maxInflightMsgs < 1) throw new Error('config: maxInflightMsgs must be at least 1');
  if (!Number.isSafeInteger(r.holdBackEntries) || r.holdBackEntries < 0)
    throw new Error('config: holdBackEntries must be a non-negative integer');
  return r;
}
