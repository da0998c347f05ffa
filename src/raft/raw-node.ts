import { decodeConfChange } from './conf-change.ts';
import { type Config, resolveConfig } from './config.ts';
import type { ProposeResult } from './raft.ts';
import { Raft } from './raft.ts';
import * as replication from './replication.ts';
import type {
  ConfChange,
  ConfState,
  HardState,
  Index,
  Message,
  NodeId,
  Ready,
  Role,
  SoftState,
  Term,
} from './types.ts';

/** A snapshot of the node's state for status pages and tests. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly commit: Index;
  readonly applied: Index;
  readonly firstIndex: Index;
  readonly lastIndex: Index;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  /** Log entries held in memory because they are not durable yet (the rest is read from Storage). */
  readonly unstableEntries: number;
  /** Leader only: each member's replication progress. */
  readonly progress: Readonly<Record<NodeId, { match: Index; next: Index; state: string; recentActive: boolean }>>;
}

/**
 * The core's door, shaped after etcd's RawNode: `tick`, `step`, `propose`,
 * `readIndex`, `proposeConfChange`, `transferLeader`, then `ready` and
 * `advance`. It is synchronous and does no I/O; see `Ready` for the contract.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;

  constructor(config: Config) {
    this.raft = new Raft(resolveConfig(config));
    this.prevSoft = this.softState();
    this.prevHard = this.raft.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  tick(): void {
    this.raft.tick();
  }

  /**
   * The `ticks` that passed since the runtime last ran this node, then
   * `step` (the messages of the event, if any), judged together:
   * - Within its next timeout, the ticks are ticked one by one, but the
   *   last one after `step`: a heartbeat waiting in the same event counts
   *   before the timeout is judged (and a follower's answer before CheckQuorum).
   * - Past it, the runtime overslept its own timer (its process stalled) and
   *   more messages may be queued behind this one: the time is counted and
   *   judged at the next tick (Raft.advance).
   */
  elapse(ticks: number, step?: () => void): void {
    if (ticks > this.raft.ticksUntilTimeout()) {
      this.raft.advance(ticks);
      step?.();
      return;
    }
    const last = step && ticks > 0 ? 1 : 0;
    for (let i = 0; i < ticks - last; i++) this.raft.tick();
    step?.();
    if (last) this.raft.tick();
  }

  /** How many ticks may pass before this node needs its next tick (so a runtime can sleep until then). */
  ticksUntilTimeout(): number {
    return this.raft.ticksUntilTimeout();
  }

  /** Feeds a message from a peer. Messages of unknown shape must be rejected by the transport before this. */
  step(m: Message): void {
    this.raft.step(m);
  }

  /**
   * Whether step(m) would drop `m`: what only members may send
   * (MEMBERS_ONLY), from a node outside this node's configuration while
   * this node is in it (Raft.fromOutsider).
   */
  fromOutsider(m: Message): boolean {
    return this.raft.fromOutsider(m);
  }

  /** Whether `id` is a voter or a learner of this node's configuration. */
  isMember(id: NodeId): boolean {
    return this.raft.isMember(id);
  }

  /** Start an election now (with PreVote when enabled), e.g. when a request finds no leader. */
  campaign(): void {
    this.raft.campaign();
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(cc);
  }

  /** Apply a committed `conf` entry's change; returns the configuration to persist with the applied index. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Decode a `conf` entry's data (undefined for a malformed one, which then changes nothing). */
  static decodeConfChange(data: Uint8Array): ConfChange | undefined {
    return decodeConfChange(data);
  }

  /** Leader: send heartbeats now. */
  heartbeat(): void {
    this.raft.heartbeat();
  }

  /** Follower: forget the leader (term unchanged) so votes are granted again; see Raft.forgetLeader. */
  forgetLeader(): void {
    this.raft.forgetLeader();
  }

  readIndex(ctx: string): void {
    this.raft.readIndex(ctx);
  }

  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  /** The runtime could not deliver to `id` (or a snapshot to it failed): fall back to probing. */
  reportUnreachable(id: NodeId, snapshotFailed = false): void {
    replication.reportUnreachable(this.raft, id, snapshotFailed);
  }

  hasReady(): boolean {
    const r = this.raft;
    return (
      r.needsBroadcast ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasUnstable() ||
      r.log.hasNextCommitted() ||
      !sameHard(this.prevHard, r.hardState()) ||
      !sameSoft(this.prevSoft, this.softState())
    );
  }

  /** Whether the next Ready has anything to persist or apply: if not, a runtime needs no storage transaction for it. */
  readyNeedsStorage(): boolean {
    const r = this.raft;
    return r.log.hasUnstable() || r.log.hasNextCommitted() || !sameHard(this.prevHard, r.hardState());
  }

  /**
   * Whether the next Ready is a leader's new entries and messages only: no
   * hard or soft state change, nothing to apply, no read state, no snapshot.
   * Its messages may then leave before its entries are durable (see `Ready`,
   * "a leader may send first"): they promise nothing about this node's log.
   */
  readyOnlySends(): boolean {
    const r = this.raft;
    return (
      r.role === 'leader' &&
      r.log.unstableCount() > 0 &&
      r.log.unstable().snapshot === undefined &&
      r.readStates.length === 0 &&
      !r.log.hasNextCommitted() &&
      sameHard(this.prevHard, r.hardState()) &&
      sameSoft(this.prevSoft, this.softState())
    );
  }

  /** Collects the pending work. Call `advance(ready)` once it is done, before the next `ready()`. */
  ready(): Ready {
    const r = this.raft;
    if (r.needsBroadcast) {
      r.needsBroadcast = false;
      if (r.role === 'leader') replication.broadcastAppend(r);
    }
    const soft = this.softState();
    const hard = r.hardState();
    const unstable = r.log.unstable();
    const committedEntries = r.log.nextCommitted(r.cfg.maxCommittedBytesPerReady);
    const last = committedEntries[committedEntries.length - 1];
    if (last) r.log.applying = last.index;
    const rd: Ready = {
      softState: sameSoft(this.prevSoft, soft) ? undefined : soft,
      hardState: sameHard(this.prevHard, hard) ? undefined : hard,
      snapshot: unstable.snapshot,
      entries: [...unstable.entries],
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  /** The runtime finished a Ready: its entries are durable and its committed entries applied. */
  advance(rd: Ready): void {
    const log = this.raft.log;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.meta.index);
      log.applied = Math.max(log.applied, rd.snapshot.meta.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) log.applied = lastApplied.index;
  }

  /** Role, term and leader only: cheap enough for every event (status() builds the progress map too). */
  basicStatus(): { readonly role: Role; readonly term: Term; readonly leader: NodeId } {
    return { role: this.raft.role, term: this.raft.term, leader: this.raft.lead };
  }

  /**
   * A leader whose voters that could be sent something now (their in-flight
   * window not full, no probe or snapshot outstanding) cannot make a quorum
   * with it: new entries cannot commit before a busy follower answers, so a
   * Ready now would only persist them and send them to a few followers. They
   * can as well wait for that answer, and go out with it in one persist and
   * one append per follower. With 3 voters this is every follower busy; with
   * 5, any 3 of 4. Learners do not count either way. Under quorum-first
   * replication (holdBackEntries) the same holds when every ready follower
   * would hold a new entry back, busy ones covering the commit.
   */
  followersPaused(): boolean {
    const r = this.raft;
    const voters = r.conf.voters;
    if (r.role !== 'leader' || voters.length < 2) return false;
    let ready = 1; // the leader itself
    let sendable = 0;
    for (const id of voters) {
      const pr = id === r.id ? undefined : r.progress.get(id);
      if (!pr || pr.isPaused()) continue;
      ready++;
      // Quorum-first: a spare follower would not be sent a new entry now either.
      if (!replication.holdsBack(r, id, 1)) sendable++;
    }
    return ready < Math.floor(voters.length / 2) + 1 || sendable === 0;
  }

  /** False for a leader that has not heard from a quorum lately (it refuses proposals; see Raft.quorumInContact). */
  quorumInContact(): boolean {
    return this.raft.quorumInContact();
  }

  status(): Status {
    const r = this.raft;
    const progress: Record<NodeId, { match: Index; next: Index; state: string; recentActive: boolean }> = {};
    for (const [id, pr] of r.progress) {
      progress[id] = { match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive };
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      conf: r.conf,
      leadTransferee: r.leadTransferee,
      unstableEntries: r.log.unstableCount(),
      progress,
    };
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}
