import { entrySize } from './log.ts';
import type { Progress } from './progress.ts';
import { committedIndex, hasQuorum } from './quorum.ts';
import type { Raft } from './raft.ts';
import type { AppendMsg, AppendRespMsg, HeartbeatRespMsg, Index, Message, NodeId, SnapshotMsg } from './types.ts';

/**
 * The leader's side of log replication (paper §5.3, thesis §10.2 for
 * pipelining and flow control) and the follower's handling of
 * AppendEntries and InstallSnapshot. Functions over a Raft, kept apart
 * from elections so each file has one job.
 */

/** Advances the commit index to what a majority matched, if that entry is of the current term (§5.4.2, Figure 8). */
export function maybeCommit(r: Raft): boolean {
  const index = committedIndex(r.conf.voters, (id) => r.progress.get(id)?.match ?? 0);
  if (index <= r.log.committed || r.log.term(index) !== r.term) return false;
  r.log.commitTo(index);
  releaseReadsAwaitingCommit(r);
  return true;
}

/**
 * Sends AppendEntries (or a snapshot) to `to` if its window allows. Returns
 * whether a message went out. `mayHoldBack`: new entries for a spare
 * follower may wait (see holdsBack).
 */
export function sendAppend(r: Raft, to: NodeId, sendIfEmpty = true, mayHoldBack = false): boolean {
  const pr = r.progress.get(to);
  if (!pr || to === r.id || pr.isPaused()) return false;
  // Entries that may wait, do; a send that may not goes to a spare follower if they would have.
  const spare = holdsBack(r, to);
  if (spare && mayHoldBack) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.term(prevIndex);
  if (prevTerm === undefined || pr.next < r.log.firstIndex()) return sendSnapshot(r, to);
  const last = r.log.lastIndex();
  const entries = pr.next <= last ? r.log.entries(pr.next, last + 1, r.cfg.maxMsgBytes) : [];
  if (entries.length === 0 && !sendIfEmpty) return false;
  let bytes = 0;
  for (const e of entries) bytes += entrySize(e);
  r.send({ type: 'app', to, prevIndex, prevTerm, entries, commit: r.log.committed });
  pr.lastAppendTick = r.leaderTicks;
  pr.lastSentTick = r.leaderTicks;
  pr.sentEntries(prevIndex + entries.length, entries.length, bytes);
  if (entries.length > 0) pr.spare = spare;
  pr.sentCommit = Math.max(pr.sentCommit, Math.min(r.log.committed, prevIndex + entries.length));
  return true;
}

/**
 * Quorum-first replication (Config.holdBackEntries): whether the entries up
 * to the last one (`ahead` more: a proposal not yet appended) may wait for
 * voter `to`, because enough other followers will commit them with the
 * leader: each was sent all of them already, or has an append in flight
 * (not a spare's catch-up) and is sent them at its answer. Fewer than
 * holdBackEntries may wait. Only a follower in steady replication waits, and
 * never a transfer target (it must catch up to take over). Waiting never
 * touches safety: `to` gets the entries with the next append it is sent (at
 * the leader's next tick, flushHeldBack, or under appendsAsHeartbeats at the
 * next heartbeat round; sooner if it is among the first ready for a newer
 * entry, its backlog reaches the bound, or it answers a heartbeat).
 */
export function holdsBack(r: Raft, to: NodeId, ahead = 0): boolean {
  const bound = r.cfg.holdBackEntries;
  const pr = r.progress.get(to);
  if (bound === 0 || !pr || pr.state !== 'replicate' || to === r.leadTransferee) return false;
  const voters = r.conf.voters;
  if (!voters.includes(to)) return false;
  const last = r.log.lastIndex() + ahead;
  const backlog = last - pr.next + 1;
  if (backlog <= 0 || backlog >= bound) return false;
  // Followers a commit needs besides the leader.
  let needed = Math.floor(voters.length / 2);
  for (const id of voters) {
    if (id === r.id || id === to) continue;
    const other = r.progress.get(id);
    if (!other) continue;
    const covers = other.next > last || (other.state === 'replicate' && other.isPaused() && !other.spare);
    if (covers && --needed === 0) return true;
  }
  return false;
}

/**
 * Quorum-first replication: at every tick the leader sends each spare
 * follower what it held back, so a spare lags by about a tick (its watchers
 * and serializable reads with it) whatever the bound. Under
 * appendsAsHeartbeats the heartbeat round does it instead: a lag of up to a
 * heartbeat interval, for no alarm per tick and no heartbeat besides.
 */
export function flushHeldBack(r: Raft): void {
  if (r.cfg.holdBackEntries === 0 || r.cfg.appendsAsHeartbeats) return;
  for (const id of r.conf.voters) if (id !== r.id && hasBacklog(r, id)) while (sendAppend(r, id, false)) {}
}

/** Whether a flush is due at the next tick: the leader then wakes for it. */
export function anyHeldBack(r: Raft): boolean {
  if (r.cfg.appendsAsHeartbeats) return false;
  return r.cfg.holdBackEntries > 0 && r.conf.voters.some((id) => id !== r.id && hasBacklog(r, id));
}

function hasBacklog(r: Raft, id: NodeId): boolean {
  const pr = r.progress.get(id);
  return pr !== undefined && pr.state === 'replicate' && !pr.isPaused() && pr.next <= r.log.lastIndex();
}

function sendSnapshot(r: Raft, to: NodeId): boolean {
  const pr = r.progress.get(to);
  // Only to a follower we have heard from: a snapshot is expensive (etcd does the same).
  if (!pr?.recentActive) return false;
  const snapshot = r.log.snapshot();
  pr.becomeSnapshot(snapshot.meta.index);
  pr.lastSentTick = r.leaderTicks;
  r.send({ type: 'snapshot', to, snapshot });
  return true;
}

/**
 * One AppendEntries per follower with everything new (batching), then more
 * while windows allow; spare followers may wait (holdsBack).
 */
export function broadcastAppend(r: Raft): void {
  for (const id of r.progress.keys()) {
    if (id === r.id) continue;
    sendAppend(r, id, true, true);
    while (sendAppend(r, id, false, true)) {}
  }
}

/**
 * A heartbeat to every follower, carrying read `ctx` ('' for none), or with
 * `quorumOnly` to just enough voters to confirm it with the leader (see
 * readRoundTargets).
 */
export function broadcastHeartbeat(r: Raft, ctx: string, quorumOnly = false, periodic = false): void {
  const targets = quorumOnly ? readRoundTargets(r) : undefined;
  const since = r.lastHeartbeatRound;
  if (periodic) r.lastHeartbeatRound = r.leaderTicks;
  for (const [id, pr] of r.progress) {
    if (id === r.id || (targets && !targets.has(id))) continue;
    // A follower must not learn a commit index beyond what it holds.
    const commit = Math.min(pr.match, r.log.committed);
    if (periodic && ctx === '' && r.cfg.appendsAsHeartbeats) {
      // What a spare follower was held back from goes now, and does the heartbeat's work.
      if (hasBacklog(r, id) && sendAppend(r, id, false)) continue;
      if (roundMaySkip(pr, since, commit)) continue;
    }
    r.send({ type: 'heartbeat', to: id, commit, ctx });
    pr.sentCommit = Math.max(pr.sentCommit, commit);
    pr.lastSentTick = r.leaderTicks;
  }
  if (ctx !== '') r.readOnly.roundSent(ctx);
}

/**
 * Config.appendsAsHeartbeats: whether the next periodic round, were it due
 * now, would send nothing (broadcastHeartbeat's skips, with any backlog or
 * snapshot counted as a send). What it looks at changes only at an event
 * (a message, a proposal, a read, a report), never at a tick before that
 * round: so a leader may sleep through it (ticksUntilTimeout) and tick it
 * on the way to the next, exactly as if it had woken for it. The simulator
 * checks that (World.tickAwake).
 */
export function nextRoundSendsNothing(r: Raft): boolean {
  if (!r.cfg.appendsAsHeartbeats || r.readOnly.lastCtx() !== '') return false;
  const since = r.lastHeartbeatRound;
  for (const [id, pr] of r.progress) {
    if (id === r.id) continue;
    if (pr.state === 'snapshot' || hasBacklog(r, id)) return false;
    if (!roundMaySkip(pr, since, Math.min(pr.match, r.log.committed))) return false;
  }
  return true;
}

/**
 * Config.appendsAsHeartbeats: a periodic round (the last one at leader tick
 * `since`) may leave out a follower that has nothing to learn from it but
 * `commit`, the commit index it may be told. One rule for the round and for
 * the leader's prediction of it (nextRoundSendsNothing).
 */
function roundMaySkip(pr: Progress, since: number, commit: Index): boolean {
  return appendWasHeartbeat(pr, since) || lastRoundWasHeartbeat(pr, since, commit);
}

/**
 * Config.appendsAsHeartbeats: an AppendEntries went to the follower since
 * the last periodic round (at leader tick `since`) and the follower answered
 * after that tick: that append reset its election timer, and a heartbeat
 * would tell it no more than the commit index, which the next append or
 * round carries. (A leader's first round finds nobody answered after tick 0.)
 */
function appendWasHeartbeat(pr: Progress, since: number): boolean {
  return pr.lastAppendTick >= since && pr.lastHeardTick > since;
}

/**
 * Config.appendsAsHeartbeats: the follower was sent something at the last
 * periodic round (tick `since`) or after, answered since, and knows the
 * commit index for all it holds: a heartbeat now would tell it nothing, and
 * it heard from us within a round. The round after goes to it again, so a
 * follower hears from the leader at least every other round (etcd's ratio of
 * election timeout to heartbeat is 10; ours is 8, so that is 4 per timeout).
 * A lightly loaded or idle-but-awake group then sends half the heartbeats.
 */
function lastRoundWasHeartbeat(pr: Progress, since: number, commit: Index): boolean {
  return pr.lastSentTick >= since && pr.lastHeardTick >= pr.lastSentTick && pr.sentCommit >= commit;
}

/**
 * Config.quorumReads: the voters a read round asks, just enough to make a
 * quorum with the leader: those that confirmed the last round, fastest
 * first, then the rest in configuration order. One of them silent leaves
 * the round to the next periodic heartbeat, which asks every follower.
 */
function readRoundTargets(r: Raft): Set<NodeId> {
  const voters = r.conf.voters;
  const want = Math.floor(voters.length / 2);
  const out = new Set<NodeId>();
  for (const id of [...r.readOnly.fastest(), ...voters]) {
    if (out.size >= want) break;
    if (id !== r.id && voters.includes(id) && r.progress.has(id)) out.add(id);
  }
  return out;
}

/** Everything the leader does on a message of its own term. */
export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case 'appResp':
      handleAppendResp(r, m);
      return;
    case 'heartbeatResp':
      handleHeartbeatResp(r, m);
      return;
    case 'readIndex':
      leaderReadIndex(r, m.ctx, m.from);
      return;
    default:
      return;
  }
}

function handleAppendResp(r: Raft, m: AppendRespMsg): void {
  const pr = r.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  pr.lastHeardTick = r.leaderTicks;
  if (m.reject) {
    // Fast backtracking (§5.3, last paragraphs): jump to the last index where our
    // log's term is at most the follower's term at its hint.
    const probeFrom = m.hintTerm > 0 ? r.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
    if (pr.maybeDecrTo(m.index, probeFrom)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const advanced = pr.maybeUpdate(m.index);
  if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
  else if (pr.state === 'probe' && advanced) pr.becomeReplicate();
  else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
    pr.becomeProbe();
    pr.becomeReplicate();
  }
  // Followers learn a new commit index with the next append (sent now unless
  // lazyCommit leaves it to the next append or heartbeat that goes anyway).
  if (advanced && maybeCommit(r) && !r.cfg.lazyCommit) r.needsBroadcast = true;
  while (sendAppend(r, m.from, false, true)) {}
  // A follower that caught up after the commit moved (its ack came late, or it
  // was probing) learns the commit index now rather than at the next heartbeat.
  const behind = pr.state !== 'snapshot' && pr.sentCommit < Math.min(pr.match, r.log.committed);
  if (behind && !r.cfg.lazyCommit) sendAppend(r, m.from);
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.send({ type: 'timeoutNow', to: m.from });
  }
}

function handleHeartbeatResp(r: Raft, m: HeartbeatRespMsg): void {
  const pr = r.progress.get(m.from);
  if (!pr) return;
  pr.recentActive = true;
  pr.lastHeardTick = r.leaderTicks;
  pr.probeSent = false;
  // A full window with the follower alive means an append or its reply was
  // lost; free a slot so replication resumes (a gap then makes it probe).
  if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex()) sendAppend(r, m.from);
  // A target that ignored TimeoutNow (it had not applied its own promotion to
  // voter yet: the commit reaches it later under lazyCommit) gets it again.
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) r.send({ type: 'timeoutNow', to: m.from });
  if (m.ctx === '') return;
  const acks = r.readOnly.ack(m.ctx, m.from);
  if (!acks || !hasQuorum(r.conf.voters, (id) => id === r.id || acks.has(id))) return;
  for (const read of r.readOnly.release(m.ctx)) answerRead(r, read.ctx, read.index, read.from);
  // Reads that arrived during that round get a round of their own now.
  if (r.readOnly.size() > 0 && !r.readOnly.roundInFlight())
    broadcastHeartbeat(r, r.readOnly.lastCtx(), r.cfg.quorumReads);
}

/**
 * ReadIndex on the leader (thesis §6.4): record the commit index, then
 * confirm leadership with a heartbeat round; the read is answered when a
 * quorum acknowledges. Until an entry of this term is committed the commit
 * index may be stale, so the read waits for that first. A leader out of
 * touch with its quorum refuses it at once, as it refuses proposals: its
 * round would most likely go unanswered until the caller gives up.
 */
export function leaderReadIndex(r: Raft, ctx: string, from: NodeId): void {
  if (!r.quorumInContact()) {
    refuseRead(r, ctx, from);
    return;
  }
  if (r.log.term(r.log.committed) !== r.term) {
    r.pendingReads.push({ ctx, from });
    return;
  }
  if (r.conf.voters.length === 1 && r.conf.voters[0] === r.id) {
    answerRead(r, ctx, r.log.committed, from);
    return;
  }
  r.readOnly.add(ctx, r.log.committed, from);
  if (!r.readOnly.roundInFlight()) broadcastHeartbeat(r, ctx, r.cfg.quorumReads);
}

function releaseReadsAwaitingCommit(r: Raft): void {
  if (r.pendingReads.length === 0 || r.log.term(r.log.committed) !== r.term) return;
  const reads = r.pendingReads;
  r.pendingReads = [];
  for (const read of reads) leaderReadIndex(r, read.ctx, read.from);
}

function answerRead(r: Raft, ctx: string, index: number, from: NodeId): void {
  if (from === r.id) r.readStates.push({ index, ctx });
  else r.send({ type: 'readIndexResp', to: from, ctx, index, reject: false });
}

function refuseRead(r: Raft, ctx: string, from: NodeId): void {
  if (from === r.id) r.readStates.push({ index: 0, ctx, refused: true });
  else r.send({ type: 'readIndexResp', to: from, ctx, index: 0, reject: true });
}

/** The follower's AppendEntries receiver (Figure 2), replying with a conflict hint on mismatch. */
export function handleAppend(r: Raft, m: AppendMsg): void {
  const committed = r.log.committed;
  if (m.prevIndex < committed) {
    // Everything up to our commit index matches the leader's log already. Keep
    // what the message carries past it (a late append may hold new entries);
    // otherwise just report the commit index.
    const at = m.entries.findIndex((e) => e.index === committed);
    const rest = at < 0 ? [] : m.entries.slice(at + 1);
    const atTerm = at < 0 ? undefined : m.entries[at]?.term;
    const lastNew =
      atTerm !== undefined && rest.length > 0 ? r.log.maybeAppend(committed, atTerm, m.commit, rest) : undefined;
    r.send({ type: 'appResp', to: m.from, index: lastNew ?? committed, reject: false, hintIndex: 0, hintTerm: 0 });
    return;
  }
  const lastNew = r.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send({ type: 'appResp', to: m.from, index: lastNew, reject: false, hintIndex: 0, hintTerm: 0 });
    return;
  }
  const hintIndex = r.log.findConflictByTerm(Math.min(m.prevIndex, r.log.lastIndex()), m.prevTerm);
  const hintTerm = r.log.term(hintIndex) ?? 0;
  r.send({ type: 'appResp', to: m.from, index: m.prevIndex, reject: true, hintIndex, hintTerm });
}

/** InstallSnapshot receiver (§7): install unless our log already holds the snapshot's last entry. */
export function handleSnapshot(r: Raft, m: SnapshotMsg): void {
  const { index, term } = m.snapshot.meta;
  if (index <= r.log.committed) {
    r.send({ type: 'appResp', to: m.from, index: r.log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
    return;
  }
  if (r.log.matchTerm(index, term)) {
    // Our log already has it: just fast-forward the commit index. Entries after
    // it are not known to match, so the reply claims only up to the snapshot.
    r.log.commitTo(index);
  } else {
    r.log.restore(m.snapshot);
    r.conf = m.snapshot.meta.conf;
  }
  r.send({ type: 'appResp', to: m.from, index: r.log.committed, reject: false, hintIndex: 0, hintTerm: 0 });
}

/** Used by RawNode for reports from the runtime: a failed snapshot or an unreachable peer. */
export function reportUnreachable(r: Raft, id: NodeId, snapshotFailed: boolean): void {
  const pr = r.progress.get(id);
  if (!pr || r.role !== 'leader') return;
  if (pr.state === 'replicate') pr.becomeProbe();
  else if (pr.state === 'snapshot' && snapshotFailed) {
    pr.pendingSnapshot = 0;
    pr.becomeProbe();
  }
}

/** A snapshot that got no answer within two election timeouts is presumed lost and sent again. */
export function tickSnapshots(r: Raft): void {
  for (const pr of r.progress.values()) {
    if (pr.state !== 'snapshot') continue;
    pr.snapshotTicks++;
    if (pr.snapshotTicks >= 2 * r.cfg.electionTicks) {
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
    }
  }
}
