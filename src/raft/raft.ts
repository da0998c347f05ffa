import { applyToConf, encodeConfChange, validateConfChange } from './conf-change.ts';
import type { ResolvedConfig } from './config.ts';
import { RaftLog } from './log.ts';
import { Progress } from './progress.ts';
import { hasQuorum, voteResult } from './quorum.ts';
import { ReadOnly } from './read-only.ts';
import * as replication from './replication.ts';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Index,
  Message,
  NodeId,
  ReadState,
  Role,
  Term,
  VoteMsg,
} from './types.ts';
import { NONE } from './types.ts';

/** Why a proposal did not reach the log; the caller may retry elsewhere. */
export type ProposeResult =
  | { readonly ok: true; readonly index: Index; readonly term: Term }
  | {
      readonly ok: false;
      readonly reason: 'notLeader' | 'transferring' | 'confPending' | 'invalid' | 'noQuorum';
      readonly leader: NodeId;
      readonly detail?: string;
    };

type OutMessage = Message extends infer M
  ? M extends Message
    ? Omit<M, 'from' | 'term'> & { term?: Term }
    : never
  : never;

/** What only members send (to ask for votes, or to answer a candidate or a leader): dropped from outsiders. */
export const MEMBERS_ONLY: ReadonlySet<Message['type']> = new Set<Message['type']>([
  'vote',
  'voteResp',
  'appResp',
  'heartbeatResp',
  'readIndex',
]);

/**
 * The Raft protocol state machine of one node. Pure: time is `tick()`,
 * input is `step()`, output accumulates in `msgs`, `readStates` and the log,
 * and RawNode turns it into Ready batches.
 */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  term: Term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  conf: ConfState;
  /** Leader only: replication state per member other than itself... and itself (match = last index). */
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readOnly = new ReadOnly();
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  pendingReads: { ctx: string; from: NodeId }[] = [];
  /** A leader proposes no conf change until the entry at this index is applied. */
  pendingConfIndex: Index = 0;
  leadTransferee: NodeId = NONE;
  /** Set by proposals; RawNode flushes one AppendEntries per follower per Ready (batching). */
  needsBroadcast = false;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  /** The leader tick of the last periodic heartbeat round (Config.appendsAsHeartbeats). */
  lastHeartbeatRound = 0;
  /** Ticks since this node became leader: the clock of Progress.lastHeardTick. */
  leaderTicks = 0;
  /**
   * Set by `advance` until the next tick: the leader's clock before a stall,
   * up to which followers' silence is judged while the messages they sent
   * during the stall are still being stepped.
   */
  private judgedUpTo: number | undefined;
  randomizedElectionTicks: number;

  constructor(cfg: ResolvedConfig) {
    this.cfg = cfg;
    this.id = cfg.id;
    const { hardState, conf } = cfg.storage.initialState();
    this.log = new RaftLog(cfg.storage, hardState.commit, cfg.applied);
    this.conf = conf;
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.randomizedElectionTicks = this.nextElectionTimeout();
    this.becomeFollower(this.term, NONE);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Voters may campaign; learners and removed nodes may not. */
  promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  members(): NodeId[] {
    return [...this.conf.voters, ...this.conf.learners];
  }

  // ---- sending -----------------------------------------------------------

  send(m: OutMessage): void {
    const term = m.term ?? this.term;
    this.msgs.push({ ...m, from: this.id, term } as Message);
  }

  // ---- role changes (§5.2) ----------------------------------------------

  private nextElectionTimeout(): number {
    return this.cfg.electionTicks + this.cfg.rng.int(this.cfg.electionJitterTicks);
  }

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTicks = this.nextElectionTimeout();
    this.votes.clear();
    this.leadTransferee = NONE;
    this.readOnly.clear();
    this.pendingReads = [];
    this.needsBroadcast = false;
    this.progress.clear();
  }

  becomeFollower(term: Term, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    // PreVote (thesis §9.6) changes neither term nor vote.
    this.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const last = this.log.lastIndex();
    this.leaderTicks = 0;
    this.lastHeartbeatRound = 0;
    this.judgedUpTo = undefined;
    for (const id of this.members()) {
      const pr = new Progress(last + 1, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
      pr.recentActive = true;
      pr.lastHeardTick = 0;
      this.progress.set(id, pr);
    }
    // No conf change until everything up to and including our no-op is applied:
    // this closes the single-server-change bug found after the thesis (raft-dev, 2015).
    this.pendingConfIndex = last + 1;
    // A no-op entry of the new term lets the leader commit what earlier terms left (§5.4.2, §8).
    this.appendEntries([{ type: 'normal', data: new Uint8Array(0) }]);
    this.cfg.logger.debug(`${this.id} became leader at term ${this.term}`);
  }

  // ---- elections ----------------------------------------------------------

  /**
   * Start an election now: a PreVote round first when enabled, unless
   * `transfer` (TimeoutNow from the leader, thesis §3.10) says to skip it and
   * to ask voters to ignore their leader lease.
   */
  campaign(transfer = false): void {
    if (!this.promotable() || this.role === 'leader') return;
    if (this.cfg.preVote && !transfer) {
      this.becomePreCandidate();
      this.requestVotes(true, false);
    } else {
      this.startElection(transfer);
    }
  }

  private startElection(transfer: boolean): void {
    this.becomeCandidate();
    this.requestVotes(false, transfer);
  }

  private requestVotes(preVote: boolean, transfer: boolean): void {
    const term = preVote ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.tallyVotes(preVote)) return;
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.send({
        type: 'vote',
        to: id,
        term,
        preVote,
        transfer,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
      });
    }
  }

  /** Returns true when the election is decided. */
  private tallyVotes(preVote: boolean): boolean {
    const result = voteResult(this.conf.voters, this.votes);
    if (result === 'won') {
      if (preVote) this.startElection(false);
      else this.becomeLeader();
      return true;
    }
    if (result === 'lost') {
      this.becomeFollower(this.term, NONE);
      return true;
    }
    return false;
  }

  private handleVote(m: VoteMsg): void {
    // §5.2 one vote per term (a repeated request from our candidate is granted again);
    // a pre-vote is granted for a future term without recording anything.
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.preVote && m.term > this.term);
    // §5.4.1 the election restriction: only a candidate with an up-to-date log.
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      this.send({ type: 'voteResp', to: m.from, term: m.term, preVote: m.preVote, reject: false });
      if (!m.preVote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: 'voteResp', to: m.from, preVote: m.preVote, reject: true });
    }
  }

  // ---- time ---------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTicks) {
      this.electionElapsed = 0;
      this.campaign();
    }
  }

  /**
   * `ticks` that passed while this node could not run (its process was busy
   * or paused): whatever was sent to it meanwhile is still queued. The time
   * counts, but nothing is judged on it before the next tick(), by which the
   * runtime has stepped that queue. Silence over a stall says something only
   * once what was sent during it has arrived: without this, a stalled leader
   * would fail CheckQuorum on its followers' queued answers, and a stalled
   * follower would campaign just before stepping its leader's heartbeat.
   */
  advance(ticks: number): void {
    if (ticks <= 0) return;
    const stopShortOf = (elapsed: number, timeout: number) => Math.max(elapsed, Math.min(elapsed + ticks, timeout - 1));
    if (this.role !== 'leader') {
      this.electionElapsed = this.promotable()
        ? stopShortOf(this.electionElapsed, this.randomizedElectionTicks)
        : this.electionElapsed + ticks;
      return;
    }
    this.judgedUpTo ??= this.leaderTicks;
    this.leaderTicks += ticks;
    this.electionElapsed = stopShortOf(this.electionElapsed, this.cfg.electionTicks);
    // Not a judgement but a duty: followers heard nothing during the stall either.
    this.heartbeatElapsed += ticks;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      // A full round: nobody was sent anything during the stall.
      replication.broadcastHeartbeat(this, this.readOnly.lastCtx());
      this.lastHeartbeatRound = this.leaderTicks;
    }
    replication.flushHeldBack(this);
  }

  private tickLeader(): void {
    this.judgedUpTo = undefined;
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderTicks++;
    replication.tickSnapshots(this);
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      // CheckQuorum (thesis §6.2): a leader cut off from a majority steps down.
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.cfg.logger.debug(`${this.id} steps down: no quorum heard within an election timeout`);
        this.becomeFollower(this.term, NONE);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      replication.broadcastHeartbeat(this, this.readOnly.lastCtx(), false, true);
    }
    replication.flushHeldBack(this);
  }

  /** Ticks until this node would act on its own (heartbeat, CheckQuorum, election, a held-back flush); Infinity if never. */
  ticksUntilTimeout(): number {
    if (this.role === 'leader') {
      if (replication.anyHeldBack(this)) return 1;
      // A round that would send nothing need not wake the leader: it is ticked on the way to the next.
      const round = this.cfg.heartbeatTicks - this.heartbeatElapsed;
      const heartbeat = replication.nextRoundSendsNothing(this) ? round + this.cfg.heartbeatTicks : round;
      return Math.max(1, Math.min(heartbeat, this.cfg.electionTicks - this.electionElapsed));
    }
    if (!this.promotable()) return Number.POSITIVE_INFINITY;
    return Math.max(1, this.randomizedElectionTicks - this.electionElapsed);
  }

  private quorumActive(): boolean {
    const active = hasQuorum(this.conf.voters, (id) => id === this.id || this.progress.get(id)?.recentActive === true);
    for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
    return active;
  }

  // ---- input --------------------------------------------------------------

  /**
   * A vote request, or an answer only members give (to a candidate, a
   * leader), from a node outside this member's configuration: it was
   * removed, perhaps without knowing it and campaigning on its old
   * configuration, or never was a member. Dropped, as etcd's transport drops
   * what a removed member sends, so it can neither bump a member's term nor
   * win an election. What a leader sends is still stepped: a node that lags
   * learns from it the configuration that names that leader.
   *
   * But a vote request with a log newer than ours is judged as Raft judges
   * any: we are the one behind, perhaps without the change that added the
   * candidate, and the newer configuration may need our vote (a member left
   * behind at {a, b} that drops c's requests deadlocks {b, c} once a is
   * removed). A node removed without knowing it cannot ask with such a log:
   * ours holds its committed removal.
   */
  fromOutsider(m: Message): boolean {
    if (!MEMBERS_ONLY.has(m.type) || !this.isOutsider(m.from)) return false;
    return !(m.type === 'vote' && this.log.isNewer(m.lastIndex, m.lastTerm));
  }

  /** Whether `id` is a voter or a learner of this node's configuration. */
  isMember(id: NodeId): boolean {
    return this.conf.voters.includes(id) || this.conf.learners.includes(id);
  }

  /** Whether `id` is outside the configuration of this node, itself a member of it. */
  isOutsider(id: NodeId): boolean {
    return this.isMember(this.id) && !this.isMember(id);
  }

  /** Feed a message from a peer. Stale or unexpected messages are dropped, never thrown. */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id || this.fromOutsider(m)) return;
    if (m.term > this.term) {
      if (m.type === 'vote') {
        // §4.2.3 / thesis §6.2: while we believe a leader is alive, ignore disruptive votes,
        // unless the leader itself asked for them (transfer).
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTicks;
        if (!m.transfer && inLease) return;
        if (!m.preVote) this.becomeFollower(m.term, NONE);
      } else if (m.type === 'voteResp' && m.preVote) {
        // A granted pre-vote carries the term we would campaign at; a rejection a real newer term.
        if (m.reject) this.becomeFollower(m.term, NONE);
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === 'app' || m.type === 'heartbeat')) {
        // A stale leader learns our term and steps down; without this it could
        // keep a partitioned-then-healed node from ever rejoining (etcd #5451-style).
        this.send({ type: 'appResp', to: m.from, index: 0, reject: false, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'vote' && m.preVote) {
        this.send({ type: 'voteResp', to: m.from, preVote: true, reject: true });
      }
      return;
    }

    if (m.type === 'vote') {
      this.handleVote(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        replication.stepLeader(this, m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snapshot':
        // §5.2: a leader of our term exists; concede.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResp': {
        const preVote = this.role === 'preCandidate';
        if (m.preVote !== preVote) return;
        this.votes.set(m.from, !m.reject);
        this.tallyVotes(preVote);
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        replication.handleAppend(this, m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
        this.send({ type: 'heartbeatResp', to: m.from, ctx: m.ctx });
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        replication.handleSnapshot(this, m);
        return;
      case 'timeoutNow':
        // Leadership transfer (thesis §3.10): campaign at once, skipping PreVote.
        if (this.promotable()) this.campaign(true);
        return;
      case 'readIndexResp':
        this.readStates.push(m.reject ? { index: 0, ctx: m.ctx, refused: true } : { index: m.index, ctx: m.ctx });
        return;
      default:
        return;
    }
  }

  // ---- proposals ----------------------------------------------------------

  /** Numbers and appends new entries of the current term (leader only). */
  appendEntries(ents: readonly { type: Entry['type']; data: Uint8Array }[]): Index {
    let index = this.log.lastIndex();
    const numbered = ents.map((e) => ({ index: ++index, term: this.term, type: e.type, data: e.data }));
    this.log.append(numbered);
    this.progress.get(this.id)?.maybeUpdate(index);
    replication.maybeCommit(this);
    this.needsBroadcast = true;
    return index;
  }

  propose(data: Uint8Array): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return refused;
    const index = this.appendEntries([{ type: 'normal', data }]);
    return { ok: true, index, term: this.term };
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return refused;
    if (this.pendingConfIndex > this.log.applied) {
      return {
        ok: false,
        reason: 'confPending',
        leader: this.lead,
        detail: `change at ${this.pendingConfIndex} not applied yet`,
      };
    }
    const invalid = validateConfChange(this.conf, cc);
    if (invalid) return { ok: false, reason: 'invalid', leader: this.lead, detail: invalid };
    const index = this.appendEntries([{ type: 'conf', data: encodeConfChange(cc) }]);
    this.pendingConfIndex = index;
    return { ok: true, index, term: this.term };
  }

  /**
   * Whether a quorum answered within the last election timeout less one
   * heartbeat (at least two heartbeats): before any follower that lost
   * touch could have started an election. A leader cut off from its followers accepts
   * nothing it could not commit: new proposals and reads are refused at once,
   * so clients go looking for the next leader instead of waiting out their
   * deadline; CheckQuorum deposes it later. Always true without CheckQuorum.
   * Right after a stall (see `advance`) silence counts only up to its start.
   */
  quorumInContact(): boolean {
    if (this.role !== 'leader' || !this.cfg.checkQuorum) return true;
    const within = Math.max(2 * this.cfg.heartbeatTicks, this.cfg.electionTicks - this.cfg.heartbeatTicks);
    const now = this.judgedUpTo ?? this.leaderTicks;
    return hasQuorum(this.conf.voters, (id) => {
      const pr = this.progress.get(id);
      return id === this.id || (pr !== undefined && now - pr.lastHeardTick <= within);
    });
  }

  private refuseProposal(): ProposeResult | undefined {
    if (this.role !== 'leader') return { ok: false, reason: 'notLeader', leader: this.lead };
    if (!this.quorumInContact())
      return { ok: false, reason: 'noQuorum', leader: this.lead, detail: 'no quorum heard from lately' };
    // During a transfer new entries would only delay the target's catch-up (thesis §3.10).
    if (this.leadTransferee !== NONE) return { ok: false, reason: 'transferring', leader: this.lead };
    return undefined;
  }

  /** Apply a committed conf entry (called by the runtime as it applies it). */
  applyConfChange(cc: ConfChange): ConfState {
    this.conf = applyToConf(this.conf, cc);
    if (this.role !== 'leader') return this.conf;
    for (const id of this.members()) {
      if (!this.progress.has(id)) {
        const pr = new Progress(this.log.lastIndex() + 1, this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
        pr.recentActive = true;
        pr.lastHeardTick = this.leaderTicks;
        this.progress.set(id, pr);
      }
    }
    for (const [id, pr] of [...this.progress]) {
      if (this.members().includes(id)) continue;
      // A last heartbeat, so a removed member that holds the change commits and applies it too and
      // knows it is out (its node can then send its clients elsewhere); nothing reaches it after this.
      if (id !== this.id)
        this.send({ type: 'heartbeat', to: id, commit: Math.min(pr.match, this.log.committed), ctx: '' });
      this.progress.delete(id);
    }
    if (!this.promotable()) {
      // A removed leader steps down once the change is committed (thesis §4.2.2).
      this.becomeFollower(this.term, NONE);
      return this.conf;
    }
    if (this.leadTransferee !== NONE && !this.conf.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
    // A smaller quorum may commit more now.
    if (replication.maybeCommit(this)) this.needsBroadcast = true;
    return this.conf;
  }

  // ---- reads and transfer -------------------------------------------------

  /** Linearizable read (thesis §6.4): the answer is a ReadState with `ctx`, or nothing if leadership is lost. */
  readIndex(ctx: string): void {
    if (this.role === 'leader') {
      replication.leaderReadIndex(this, ctx, this.id);
    } else if (this.lead !== NONE) {
      this.send({ type: 'readIndex', to: this.lead, ctx });
    }
  }

  /** Leader: send a heartbeat round now (e.g. the last one before the cluster goes quiet). */
  heartbeat(): void {
    if (this.role === 'leader') replication.broadcastHeartbeat(this, this.readOnly.lastCtx());
  }

  /**
   * Follower: stop believing in a leader without changing term, so this node
   * grants votes again without waiting out a lease it is no longer timing
   * (used when the cluster goes quiet; etcd's ForgetLeader).
   */
  forgetLeader(): void {
    if (this.role === 'follower') this.lead = NONE;
  }

  /** Hand leadership to `to` once its log is caught up (thesis §3.10). Ignored for non-voters. */
  transferLeader(to: NodeId): void {
    if (this.role !== 'leader' || to === this.id || !this.conf.voters.includes(to)) return;
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.progress.get(to);
    if (pr && pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to });
    else replication.sendAppend(this, to);
  }
}
