/**
 * The vocabulary of the Raft core: ids, entries, messages, the hard state and
 * the Ready batch. Nothing here does anything; see raw-node.ts for behaviour.
 */

/** A node's name, e.g. "node-0". Stable across restarts. */
export type NodeId = string;
/** A Raft term (paper §5.1). 0 means "none yet". */
export type Term = number;
/** A log index (paper §5.3). Entries start at 1; 0 is the empty log's sentinel. */
export type Index = number;

export const NONE: NodeId = '';

/** `normal` carries application data (empty data is a leader's no-op, §8); `conf` a ConfChange. */
export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly index: Index;
  readonly term: Term;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** Voters decide elections and commitment; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * One membership change at a time (Raft thesis §4.1, single-server changes),
 * applied when its entry is applied. `addLearner` then `promote` makes a
 * caught-up voter; `promote` changes nothing unless the node is a learner
 * when it applies (so a learner removed meanwhile does not come back as a voter).
 */
export interface ConfChange {
  readonly type: 'addVoter' | 'addLearner' | 'promote' | 'remove';
  readonly node: NodeId;
}

/** What must be durable before any message of the same Ready is sent (Figure 2, "persistent state"). */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: Index;
}

export interface SnapshotMeta {
  readonly index: Index;
  readonly term: Term;
  readonly conf: ConfState;
}

/**
 * A point-in-time image of the state machine up to `meta.index`. `data` is
 * opaque to the core; a runtime that streams snapshots separately may leave it empty.
 */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/**
 * Answers a `readIndex(ctx)` call: the read may be served once `applied >= index`
 * (thesis §6.4). `refused`: the leader has not heard from a quorum lately and
 * could not confirm it leads before the caller gives up, so the read fails at
 * once (`index` is 0) and the caller tries another node.
 */
export interface ReadState {
  readonly index: Index;
  readonly ctx: string;
  readonly refused?: boolean;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the runtime may want to observe; never persisted. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** RequestVote (§5.2) and PreVote (thesis §9.6). `transfer` marks a vote after TimeoutNow (§3.10). */
export interface VoteMsg extends Envelope {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastIndex: Index;
  readonly lastTerm: Term;
  readonly transfer: boolean;
}

export interface VoteRespMsg extends Envelope {
  readonly type: 'voteResp';
  readonly preVote: boolean;
  readonly reject: boolean;
}

/** AppendEntries (§5.3): the entries follow `prevIndex`/`prevTerm`. */
export interface AppendMsg extends Envelope {
  readonly type: 'app';
  readonly prevIndex: Index;
  readonly prevTerm: Term;
  readonly entries: readonly Entry[];
  readonly commit: Index;
}

/**
 * Reply to AppendEntries. On success `index` is the follower's last matching
 * index. On reject `index` is the rejected `prevIndex`, and the hint
 * (`hintIndex`, `hintTerm`) is the largest follower index whose term is at
 * most the leader's `prevTerm`, so the leader skips a whole term per round trip.
 */
export interface AppendRespMsg extends Envelope {
  readonly type: 'appResp';
  readonly index: Index;
  readonly reject: boolean;
  readonly hintIndex: Index;
  readonly hintTerm: Term;
}

/** Leader liveness and commit propagation; `ctx` confirms leadership for ReadIndex. */
export interface HeartbeatMsg extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: Index;
  readonly ctx: string;
}

export interface HeartbeatRespMsg extends Envelope {
  readonly type: 'heartbeatResp';
  readonly ctx: string;
}

/** InstallSnapshot (§7). */
export interface SnapshotMsg extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

/** Leadership transfer: the target campaigns at once, skipping PreVote and leases (thesis §3.10). */
export interface TimeoutNowMsg extends Envelope {
  readonly type: 'timeoutNow';
}

/** A follower forwards a linearizable read to its leader (thesis §6.4). */
export interface ReadIndexMsg extends Envelope {
  readonly type: 'readIndex';
  readonly ctx: string;
}

/**
 * The leader's answer: `index` is the commit index confirmed by a quorum; on
 * `reject` (a leader that has not heard from a quorum lately, see
 * `Raft.quorumInContact`) `index` is 0 and the read fails at once.
 */
export interface ReadIndexRespMsg extends Envelope {
  readonly type: 'readIndexResp';
  readonly ctx: string;
  readonly index: Index;
  readonly reject: boolean;
}

export type Message =
  | VoteMsg
  | VoteRespMsg
  | AppendMsg
  | AppendRespMsg
  | HeartbeatMsg
  | HeartbeatRespMsg
  | SnapshotMsg
  | TimeoutNowMsg
  | ReadIndexMsg
  | ReadIndexRespMsg;

export type MessageType = Message['type'];

/**
 * The batch of work the core hands its runtime. The contract, in order:
 * 1. Persist `snapshot` (if any), then `entries` (an entry at an index that
 *    already exists replaces it and every later entry), then `hardState`,
 *    atomically.
 * 2. Apply `committedEntries` in order to the state machine (they may include
 *    entries of this same Ready's `entries`, which are then durable already).
 *    For each `conf` entry call `RawNode.applyConfChange`.
 * 3. Only then send `messages`: they may promise what step 1 made durable
 *    (a vote, an appended entry).
 * 4. Serve each `readStates` entry once the applied index reaches its index.
 * 5. Call `RawNode.advance(ready)`.
 *
 * A leader may send first (thesis §10.2.1): a Ready for which
 * `RawNode.readyOnlySends()` held may have its messages sent before step 1,
 * and steps 1 and 5 may wait while the node is stepped, provided they are
 * done before the next `ready()`. The leader counts its new entries towards
 * a commit as soon as it appends them, so a follower's ack stepped meanwhile
 * may commit them in memory; but nothing acts on that commit (applies it,
 * tells a follower, answers a read) before a later Ready, which comes after
 * the entries are durable. A leader that crashes first loses entries that
 * nobody was told are committed.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** Deterministic randomness, injected so the simulator can replay a seed. */
export interface Rng {
  /** A uniform integer in [0, n). */
  int(n: number): number;
}

/** Where the core's diagnostics go; the default discards them. */
export interface Logger {
  debug(msg: string): void;
  warn(msg: string): void;
}
