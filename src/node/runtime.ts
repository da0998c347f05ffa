import { Driver, type ProposeOutcome, type ReadOutcome, type StateMachine } from '../driver/index.ts';
import type { ConfChange, Message, NodeId, Rng, Status } from '../raft/index.ts';
import type { SnapshotTables, Sql } from '../storage/index.ts';
import { decodeSnapshotRef, SqliteLogStore } from '../storage/index.ts';
import {
  decodeEnvelope,
  decodeStreamMsg,
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  type FaultLayer,
  FetchTransport,
  type Peer,
  SNAPSHOT_PATH,
} from '../transport/index.ts';
import { Deadlines } from './deadlines.ts';
import type { NodeMetrics } from './metrics.ts';
import type { NodeSettings } from './settings.ts';
import { SnapshotStream, stageChunk } from './snapshot-stream.ts';

/** What a runtime needs from its host (the Durable Object), kept small so it can be faked. */
export interface Host {
  readonly sql: Sql;
  now(): number;
  /** Arms the single wake-up alarm at `at` (ms), or clears it with undefined. */
  setAlarm(at: number | undefined): void;
  peer(id: NodeId): Peer | undefined;
  rng: Rng;
  faults: FaultLayer | undefined;
  /** The in-memory state is no longer trustworthy: drop it and restart from storage. */
  reset(reason: unknown): void;
  /** Where the runtime counts what happens (in memory: it starts from 0 with the object). */
  readonly metrics: NodeMetrics;
}

export type Timed<T> = T | { readonly status: 'timeout' };

/** How an event runs (NodeRuntime.event). */
interface EventOptions {
  /** False: it only carries acks, which must not wake a quiet node. */
  readonly wakes?: boolean;
  /** The peer whose batch caused the event: its messages go back in the response. */
  readonly replyTo?: NodeId | undefined;
  /** A proposal: leave the Ready to the next event if no follower could be sent anything now. */
  readonly batch?: boolean;
  /** `act` steps peer messages: they are judged together with the time that passed before them. */
  readonly steps?: boolean;
}

/** Work the node's owner does on its own schedule (the leader's lease clock). */
export interface Upkeep {
  /** Runs after every event that processed a Ready (not the acks a quiet node only steps). */
  afterEvent(): void;
  /** When to wake next, even while quiet (ms), or undefined; `quiet`: exactly (the alarm would wake the cluster). */
  wakeAt(quiet: boolean): number | undefined;
}

/** What only a leader sends: whoever sends it counts this node as a member. */
const FROM_A_LEADER: ReadonlySet<Message['type']> = new Set<Message['type']>([
  'app',
  'heartbeat',
  'snapshot',
  'timeoutNow',
]);

/** At most this many proposals wait in memory for a batch: a bound on unpersisted entries. */
const MAX_DEFERRED_PROPOSALS = 256;

/**
 * One Raft node inside a Durable Object: turns events (peer messages, client
 * calls, alarms) into driver calls, and time into ticks.
 *
 * Discipline (shared/DESIGN.md, Durable Object facts):
 * - every event first catches up on the ticks that elapsed (a peer's
 *   messages are judged together with them: RawNode.elapse), then acts, then
 *   runs the Ready loop inside one storage transaction, then sends: so state
 *   is durable before any message leaves, and nothing is held across an await;
 * - messages are only sent from the handler of the event that caused them,
 *   and the alarm is the only clock: there is no chain of timers;
 * - a caught-up, idle leader goes quiet and tells its followers, and then no
 *   node keeps an alarm: an idle cluster costs nothing until the next request.
 */
export class NodeRuntime<R> {
  readonly id: NodeId;
  readonly driver: Driver<R>;
  readonly transport: FetchTransport;
  private readonly host: Host;
  private readonly settings: NodeSettings;
  private lastTickAt: number;
  private alarmAt: number | undefined;
  /** Asleep: no ticks, no alarm, until an event arrives. */
  private quiet = false;
  private idleTicks = 0;
  /** Proposals appended since the last Ready was handled (see `propose`). */
  private deferred = 0;
  /** How many proposals the last Ready that released any released: the size of the last batch. */
  private lastBatch = 0;
  /** Releases proposals held for a batch (NodeSettings.batchWaitMs) if nothing else did first. */
  private batchTimer: ReturnType<typeof setTimeout> | undefined;
  /** Persists entries the leader sent before persisting them, if no event did within sendBeforePersistMs. */
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  /** When each peer was last heard from (ms since the epoch), for status pages. */
  private readonly lastContact = new Map<NodeId, number>();
  /** The timeouts of callers waiting in `wait`. */
  private readonly deadlines = new Deadlines();
  /** The leader this node followed before it went quiet: where to send clients meanwhile. */
  private quietLeader: NodeId = '';
  private readonly log: SqliteLogStore;
  private readonly sm: StateMachine<R>;
  /** Set by the owner once; see Upkeep. */
  upkeep: Upkeep | undefined;
  /** Proposals made here that have not settled (a metric). */
  private pendingProposals = 0;
  /** The last leader seen, as `term/leader`: a new one counts as a leader change. */
  private seenLeader = '';
  /** A member told us we are not in its (newer) configuration: see heedRemoval. */
  private toldRemoved = false;

  /** Streams snapshots in chunks when the state machine's snapshots live in SQLite tables. */
  private readonly stream: SnapshotStream | undefined;
  private readonly tables: SnapshotTables | undefined;

  constructor(
    id: NodeId,
    host: Host,
    settings: NodeSettings,
    sm: StateMachine<R>,
    initialMembers: readonly NodeId[],
    tables?: SnapshotTables,
  ) {
    this.id = id;
    this.host = host;
    this.settings = settings;
    this.lastTickAt = host.now();
    this.transport = new FetchTransport({
      self: id,
      peer: (to) => host.peer(to),
      timeoutMs: settings.rpcTimeoutMs,
      onUnreachable: (to) => this.driver.node.reportUnreachable(to),
      onReply: (from, body) => this.receiveReply(from, body),
      faults: host.faults,
      onSent: (to, bytes, types) => host.metrics.sent(to, bytes, types),
      onSendFailed: (to) => host.metrics.sentFailures.inc({ to }),
    });
    const log = new SqliteLogStore(host.sql);
    this.log = log;
    this.sm = sm;
    this.tables = tables;
    this.stream = tables
      ? new SnapshotStream({
          self: id,
          tables,
          now: () => host.now(),
          rng: host.rng,
          appliedPoint: () => {
            const index = sm.applied();
            return { index, term: log.term(index) ?? 0, conf: sm.conf() ?? this.driver.status().conf };
          },
          term: () => {
            const st = this.driver.node.basicStatus();
            return { term: st.term, leader: st.role === 'leader' };
          },
          post: (to, path, body, onFail) => this.transport.postNow(to, path, body, onFail),
          sendRaft: (m) => this.transport.send([m]),
          staleMs: 2 * settings.rpcTimeoutMs,
        })
      : undefined;
    // Snapshot messages from the core become streams; everything else goes out as is.
    const transport = {
      send: (ms: readonly Message[]) => {
        const stream = this.stream;
        if (!stream) return this.transport.send(ms);
        const rest: Message[] = [];
        for (const m of ms) {
          if (m.type === 'snapshot') stream.request(m);
          else rest.push(m);
        }
        this.transport.send(rest);
      },
    };
    // The state machine as the driver sees it: the same, counting snapshot installs.
    const counted: StateMachine<R> = {
      applied: () => sm.applied(),
      conf: () => sm.conf(),
      apply: (items) => sm.apply(items),
      snapshot: () => sm.snapshot(),
      restore: (snap) => {
        sm.restore(snap);
        host.metrics.snapshotInstalls.inc();
      },
    };
    this.driver = new Driver<R>({
      raft: {
        id,
        rng: host.rng,
        electionTicks: settings.electionTicks,
        electionJitterTicks: settings.electionJitterTicks,
        heartbeatTicks: settings.heartbeatTicks,
        // A small window keeps every event's burst of sends bounded and makes
        // proposals that arrive while one batch is in flight share the next one.
        maxInflightMsgs: settings.maxInflightMsgs,
        // Every message is a billed request: commits ride on the next append or heartbeat.
        lazyCommit: true,
        // ... and followers beyond the quorum a commit needs take entries in larger batches.
        holdBackEntries: settings.holdBackEntries,
        // A linearizable read's heartbeat round asks a quorum, not every follower.
        quorumReads: true,
        // ... and a follower that just took an append needs no heartbeat.
        appendsAsHeartbeats: true,
      },
      log,
      sm: counted,
      transport,
      bootstrap: { voters: [...initialMembers], learners: [] },
      compactAfterEntries: settings.compactAfterEntries,
      compactKeepEntries: tables ? settings.compactKeepEntries : 0,
      deferProcessing: true,
      sendBeforePersist: settings.sendBeforePersistMs > 0,
    });
    // A node starts awake: its election timer runs until it hears from a leader.
    this.armAlarm();
  }

  /**
   * A batch of Raft messages from a peer (the body of the internal route).
   * Returns this node's messages for that peer, to go back in the response
   * body, if any. Throws EnvelopeError on bad input.
   */
  receive(body: Uint8Array): Uint8Array | undefined {
    const env = decodeEnvelope(body);
    return this.receiveEnvelope(env, env.from, body.byteLength);
  }

  /** A peer's answer in the response to our batch: handled like a batch it sent, with no response to ride in. */
  private receiveReply(from: NodeId, body: Uint8Array): void {
    try {
      const env = decodeEnvelope(body);
      if (env.from !== from) throw new EnvelopeError(`reply from ${from} claims to be from ${env.from}`);
      this.receiveEnvelope(env, undefined, body.byteLength);
    } catch (e) {
      // A bad reply is dropped like a lost one; any other error has already reset the node.
      if (e instanceof EnvelopeError) console.warn(`raft node ${this.id}: ${e.message}`);
    }
  }

  private receiveEnvelope(env: Envelope, replyTo: NodeId | undefined, bytes: number): Uint8Array | undefined {
    if (this.host.faults?.blocks(env.from, this.id)) return undefined;
    this.host.metrics.received(
      env.from,
      bytes,
      env.msgs.map((m) => m.type),
    );
    this.lastContact.set(env.from, this.host.now());
    // A node outside our configuration asking what only members may (one
    // removed while cut off, campaigning on its old configuration): the core
    // would drop it all. Tell it so, without waking, ticking or writing.
    if (env.msgs.length > 0 && env.msgs.every((m) => this.driver.node.fromOutsider(m)))
      return replyTo === undefined ? undefined : encodeEnvelope(this.id, [], false, this.sm.applied());
    if (env.msgs.some((m) => FROM_A_LEADER.has(m.type))) this.toldRemoved = false;
    // Acks of the leader's last heartbeat round must not wake a quiet leader.
    const wakes = env.msgs.some((m) => m.type !== 'heartbeatResp' && m.type !== 'appResp');
    const reply = this.event(
      () => {
        for (const m of env.msgs) if (m.to === this.id && this.installable(m)) this.driver.node.step(m);
      },
      { wakes, replyTo, steps: true },
    );
    if (env.quiet && env.from === this.driver.node.basicStatus().leader) this.sleep(env.from);
    if (env.notMemberAt !== undefined) this.heedRemoval(env.from, env.notMemberAt);
    return reply;
  }

  /**
   * `from` dropped what we sent: we are not in its configuration as applied
   * up to `at`. If that is later than ours, and `from` is a member of ours,
   * its configuration is the newer one: we were removed without learning it
   * (cut off as the change committed). Stop campaigning and keep no alarm,
   * as etcd stops a member its peers answer 410 Gone, and close the watches
   * here (nothing new will reach them), until a leader sends us something
   * again (we were added back).
   */
  private heedRemoval(from: NodeId, at: number): void {
    if (this.toldRemoved || at <= this.sm.applied()) return;
    const node = this.driver.node;
    if (!node.isMember(this.id) || !node.isMember(from)) return;
    this.toldRemoved = true;
    this.driver.node.forgetLeader();
    this.quiet = true;
    this.quietLeader = '';
    this.armAlarm();
    this.upkeep?.afterEvent();
  }

  /** Whether a member told this node it was removed (heedRemoval), and no leader has sent it anything since. */
  removedFromCluster(): boolean {
    return this.toldRemoved;
  }

  /** A snapshot chunk or its acknowledgement (the body of the snapshot route). Throws EnvelopeError on bad input. */
  receiveStream(body: Uint8Array): void {
    const m = decodeStreamMsg(body);
    if (m.to !== this.id || this.host.faults?.blocks(m.from, this.id)) return;
    this.host.metrics.received(m.from, body.byteLength, []);
    const tables = this.tables;
    const stream = this.stream;
    if (!tables || !stream) return;
    this.event(() => {
      if (m.kind === 'ack') stream.onAck(m);
      else
        stageChunk(tables, m, this.driver.node.basicStatus().term, (to, ack) =>
          this.transport.postNow(to, SNAPSHOT_PATH, ack, () => {}),
        );
    });
  }

  /**
   * A streamed snapshot's data names a staged import: step it only once that
   * import is complete (the leader resends it otherwise), so installing it
   * cannot fail half-way.
   */
  private installable(m: Message): boolean {
    if (m.type !== 'snapshot' || !this.tables) return true;
    const session = decodeSnapshotRef(m.snapshot.data);
    const point = session === undefined ? undefined : this.tables.completeImport(session);
    return point !== undefined && point.index === m.snapshot.meta.index;
  }

  /** The alarm fired: only time moved. */
  alarm(): void {
    this.host.metrics.alarms.inc();
    this.alarmAt = undefined;
    this.event(() => {});
  }

  /**
   * Proposals that arrive while every follower has an append in flight are
   * only appended in memory: the event handling the next answer persists
   * them all in one transaction (one log row) and sends them in one append.
   * Nothing leaves before it is persisted (the Ready loop persists, then
   * sends), so a crash meanwhile loses only unacknowledged proposals.
   */
  propose(data: Uint8Array, timeoutMs: number): Promise<Timed<ProposeOutcome<R>>> {
    return this.countProposal(
      this.wait(
        timeoutMs,
        (done) => {
          this.idleTicks = 0;
          this.campaignIfLeaderless();
          this.driver.propose(data, done);
        },
        { batch: true },
      ),
    );
  }

  proposeConfChange(cc: ConfChange, timeoutMs: number): Promise<Timed<ProposeOutcome<R | undefined>>> {
    return this.countProposal(
      this.wait(timeoutMs, (done) => {
        this.idleTicks = 0;
        this.driver.proposeConfChange(cc, done);
      }),
    );
  }

  /** A linearizable read barrier; once `ready`, read the state machine directly. */
  async readBarrier(timeoutMs: number): Promise<Timed<ReadOutcome>> {
    const out = await this.wait<ReadOutcome>(timeoutMs, (done) => {
      this.idleTicks = 0;
      this.campaignIfLeaderless();
      this.driver.read(done);
    });
    this.host.metrics.readIndexes.inc({ result: out.status === 'notLeader' ? 'not_leader' : out.status });
    return out;
  }

  /** Counts a proposal as pending until it settles, and as failed unless it applied (a redirect is no failure). */
  private async countProposal<T extends { readonly status: string }>(p: Promise<T>): Promise<T> {
    this.pendingProposals++;
    try {
      const out = await p;
      if (out.status !== 'applied' && out.status !== 'notLeader')
        this.host.metrics.proposalsFailed.inc({ reason: out.status });
      return out;
    } finally {
      this.pendingProposals--;
    }
  }

  /**
   * Sets the gauges of `m` from this node as it is now, reading only memory
   * (and nothing that ticks or wakes it): for a scrape.
   */
  collectMetrics(m: NodeMetrics): void {
    const st = this.driver.status();
    m.hasLeader.set({}, this.leaderHint() === '' ? 0 : 1);
    m.isLeader.set({}, st.role === 'leader' ? 1 : 0);
    m.term.set({}, st.term);
    m.quiet.set({}, this.quiet ? 1 : 0);
    m.proposalsCommitted.setTotal({}, st.commit);
    m.proposalsApplied.setTotal({}, this.sm.applied());
    m.proposalsPending.set({}, this.pendingProposals);
    m.logEntries.set({}, Math.max(0, st.lastIndex - st.firstIndex + 1));
    const stream = this.stream?.stats;
    if (stream) {
      m.snapshotSends.setTotal({}, stream.installs);
      m.snapshotChunksSent.setTotal({}, stream.chunks);
    }
  }

  /** Leading, with an entry of its own term applied: every entry of older terms has applied too. */
  leading(): boolean {
    const st = this.driver.node.basicStatus();
    return st.role === 'leader' && this.log.term(this.sm.applied()) === st.term;
  }

  /** Asleep: no ticks and no heartbeats until an event (see maybeQuiesce). */
  isQuiet(): boolean {
    return this.quiet;
  }

  /** The term of the last applied entry before the first one of the current term (undefined if compacted away). */
  priorTerm(): number | undefined {
    const term = this.driver.node.basicStatus().term;
    let i = this.sm.applied();
    while (i > 0 && this.log.term(i) === term) i--;
    return i > 0 ? this.log.term(i) : 0;
  }

  /** Campaigns now (PreVote first) if this node knows no leader; see LeaseKeeper.sleptAsLeader. */
  campaign(): void {
    this.event(() => {
      const st = this.driver.node.basicStatus();
      if (st.leader === '' && st.role === 'follower') this.driver.node.campaign();
    });
  }

  /** The object drops this runtime (its group was deleted): no timer of it may run an event later. */
  stopTimers(): void {
    this.stopBatchTimer();
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
  }

  /** Compacts the Raft log through the applied index now (Driver.compactNow), between events. */
  compactLog(): boolean {
    return this.host.sql.transaction(() => this.driver.compactNow());
  }

  transferLeader(to: NodeId): void {
    this.event(() => this.driver.node.transferLeader(to));
  }

  /** Observes without acting: a status query neither ticks nor wakes a quiet node. */
  status(): Status & {
    quiet: boolean;
    alarmAt: number | null;
    maxSentPerEvent: number;
    snapshotStream: SnapshotStream['stats'] | null;
    lastContact: Record<NodeId, number>;
    removed: boolean;
  } {
    return {
      ...this.driver.status(),
      quiet: this.quiet,
      removed: this.toldRemoved,
      alarmAt: this.alarmAt ?? null,
      maxSentPerEvent: this.transport.maxSentPerEvent,
      snapshotStream: this.stream ? { ...this.stream.stats } : null,
      lastContact: Object.fromEntries(this.lastContact),
    };
  }

  /** Runs `act` as one event and settles with its callback's value, or `timeout` after `timeoutMs`. */
  private wait<T>(timeoutMs: number, act: (done: (v: T) => void) => void, opts: EventOptions = {}): Promise<Timed<T>> {
    return new Promise((resolve) => {
      let settled = false;
      const cancel = this.deadlines.add(timeoutMs, () => {
        settled = true;
        resolve({ status: 'timeout' });
      });
      this.event(
        () =>
          act((v) => {
            if (settled) return;
            settled = true;
            cancel();
            resolve(v);
          }),
        opts,
      );
    });
  }

  /** The leader to direct clients to: the live one, or the one that went quiet. */
  leaderHint(): NodeId {
    return this.driver.node.basicStatus().leader || this.quietLeader;
  }

  /**
   * A node asked to serve that knows no leader campaigns now (PreVote
   * first) rather than after a full election timeout. One that followed a
   * leader which went quiet sends clients there instead, and campaigns only if
   * that leader stays silent for an election timeout.
   */
  private campaignIfLeaderless(): void {
    const st = this.driver.node.basicStatus();
    if (st.leader === '' && this.quietLeader === '' && st.role === 'follower' && !this.toldRemoved)
      this.driver.node.campaign();
  }

  /**
   * The shape of every event: catch up on time, act, persist-apply in one
   * transaction, send, re-arm. Returns the messages for `replyTo`, for the
   * response to the request that caused the event.
   */
  private event(
    act: () => void,
    { wakes = true, replyTo, batch = false, steps = false }: EventOptions = {},
  ): Uint8Array | undefined {
    this.transport.resetCount();
    try {
      if (wakes) this.wake();
      else if (this.quiet) {
        // Step the acks, but keep sleeping: no ticks, no alarm.
        act();
        this.deferred = 0;
        this.processReady();
        this.observeLeader();
        return this.transport.flush(false, replyTo);
      }
      // Peer messages are judged together with the time that passed before them (RawNode.elapse).
      if (steps) this.catchUpTicks(act);
      else {
        this.catchUpTicks();
        act();
      }
      if (batch && this.deferred < MAX_DEFERRED_PROPOSALS) {
        const paused = this.driver.node.followersPaused();
        if (paused || this.fillingBatch()) {
          // Paused: the next answer's event (or the heartbeat alarm, if it is lost) takes it from here.
          // Otherwise the batch timer does, unless the burst completes first; it stays armed
          // if followers become busy meanwhile, as sends this event's ticks queued wait for it.
          this.deferred++;
          if (!paused) this.batchTimer ??= setTimeout(() => this.releaseBatch(), this.settings.batchWaitMs);
          this.armAlarm();
          return undefined;
        }
      }
      if (batch || this.deferred > 0) this.lastBatch = this.deferred + (batch ? 1 : 0);
      this.deferred = 0;
      this.stopBatchTimer();
      this.processReady();
      this.observeLeader();
      const reply = this.transport.flush(this.maybeQuiesce(), replyTo);
      if (this.driver.node.basicStatus().leader !== '') this.quietLeader = '';
      this.upkeep?.afterEvent();
      this.armAlarm();
      return reply;
    } catch (e) {
      // An exception here means memory and storage may disagree: start over from storage.
      this.stopTimers();
      this.host.reset(e);
      throw e;
    }
  }

  /**
   * Whether a new proposal, though followers are free to take it, waits for
   * more: the last batch held several proposals, so their clients are
   * sending the next ones now, and fewer than that wait yet. On one thread
   * (every object of a local cluster) the first of such a burst would
   * otherwise go out alone, and the follower answer before the second
   * arrived: at 64 clients, 60% of a leader's batches held one proposal, each
   * costing a transaction on the leader and a follower and an append.
   */
  private fillingBatch(): boolean {
    return this.settings.batchWaitMs > 0 && this.deferred + 1 < this.lastBatch;
  }

  private releaseBatch(): void {
    this.batchTimer = undefined;
    // Even if followers look busy now: what made them so may be a send still queued in the
    // core, such as the append of what waits that a heartbeat round in a held event started.
    if (this.deferred > 0) this.event(() => {});
  }

  private stopBatchTimer(): void {
    if (this.batchTimer === undefined) return;
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
  }

  /**
   * Persists, applies and queues sends for whatever the core has ready, in
   * one transaction. Most reads under load only join a round already in
   * flight and leave nothing ready; a round's answers and the reads they
   * release leave nothing to write; a leader's new entries may only be sent
   * (Driver.sendBeforePersist): these run without a transaction.
   */
  private processReady(): void {
    const d = this.driver;
    if (!d.hasWork()) return;
    if (d.writesStorage()) this.host.sql.transaction(() => d.process());
    else d.process();
    if (d.holdsUnpersisted()) this.armPersistTimer();
  }

  private armPersistTimer(): void {
    if (this.persistTimer !== undefined) return;
    const armedFor = this.driver.unpersistedId();
    this.persistTimer = setTimeout(() => this.persistSent(armedFor), this.settings.sendBeforePersistMs);
  }

  /**
   * The leader sent entries before persisting them, and no event has come
   * since to persist them (with the follower's answer, normally): do it now.
   * The timer is not cleared when an event does it first (clearing costs as
   * much as this check): it then finds nothing held, or a Ready sent ahead
   * since, which gets a timer of its own rather than being cut short.
   */
  private persistSent(armedFor: number): void {
    this.persistTimer = undefined;
    const held = this.driver.unpersistedId();
    if (held === 0) return;
    if (held === armedFor) this.event(() => {});
    else this.armPersistTimer();
  }

  /** Counts a leader change: a leader (a node in a term) other than the last one seen. Waking to the same one is none. */
  private observeLeader(): void {
    const { leader, term } = this.driver.node.basicStatus();
    if (leader === '') return;
    const seen = `${term}/${leader}`;
    if (seen === this.seenLeader) return;
    this.seenLeader = seen;
    this.host.metrics.leaderChanges.inc();
  }

  private wake(): void {
    // Told it was removed: only a leader's message (which clears that) wakes it.
    if (!this.quiet || this.toldRemoved) return;
    this.quiet = false;
    this.idleTicks = 0;
    // Time asleep does not count towards timeouts: nobody expected to hear anything.
    this.lastTickAt = this.host.now();
  }

  private sleep(leader: NodeId): void {
    this.quiet = true;
    this.quietLeader = leader;
    this.driver.node.forgetLeader();
    this.armAlarm();
  }

  private catchUpTicks(step?: () => void): void {
    const { tickMs, electionTicks } = this.settings;
    const elapsed = Math.floor((this.host.now() - this.lastTickAt) / tickMs);
    if (elapsed <= 0) {
      step?.();
      return;
    }
    this.lastTickAt += elapsed * tickMs;
    // After a long absence a few election timeouts' worth is as good as all of them.
    // Time past the node's own timeout is a stall: the core counts it, but
    // judges it only after the messages that queued meanwhile (RawNode.elapse).
    this.driver.node.elapse(Math.min(elapsed, 4 * electionTicks), step);
    this.idleTicks += elapsed;
  }

  /**
   * A leader whose followers have everything, with nothing pending, stops
   * heartbeating after `quiesceAfterTicks`; the batch it sends now tells them.
   */
  private maybeQuiesce(): boolean {
    // The cheap checks first: on a busy leader this runs after every event.
    if (this.quiet || !this.driver.idle() || this.idleTicks < this.settings.quiesceAfterTicks) return false;
    if (this.driver.node.basicStatus().role !== 'leader') return false;
    const st = this.driver.status();
    if (st.leadTransferee !== '' || st.commit !== st.lastIndex) return false;
    for (const [id, pr] of Object.entries(st.progress)) {
      if (id !== this.id && pr.match !== st.lastIndex) return false;
    }
    // Followers learn the final commit index from this round of heartbeats.
    this.driver.node.heartbeat();
    this.processReady();
    this.quiet = true;
    return true;
  }

  private armAlarm(): void {
    const wakeAt = this.upkeep?.wakeAt(this.quiet);
    if (this.quiet) {
      // Asleep, the only alarm is the owner's (a lease expiry): none at all without one.
      if (this.alarmAt !== wakeAt) this.host.setAlarm(wakeAt);
      this.alarmAt = wakeAt;
      return;
    }
    const ticks = this.driver.node.ticksUntilTimeout();
    const at = Math.min(this.lastTickAt + ticks * this.settings.tickMs, wakeAt ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(at)) return;
    // Re-arming costs a storage write: only move the alarm earlier (a late one catches up), except
    // past a whole heartbeat round that a leader with no request for a round would wake for and
    // send nothing in: one write, not an invocation and a write. (Under requests, a read's round
    // in flight makes the next one due again at every request: moving back and forth would cost
    // two writes each. A follower's timeout moves at every heartbeat: it keeps the early alarm.)
    if (this.alarmAt !== undefined && this.alarmAt <= at && this.alarmAt > this.host.now()) {
      const { heartbeatTicks, tickMs } = this.settings;
      const skipsRound = at >= this.alarmAt + heartbeatTicks * tickMs && this.idleTicks >= heartbeatTicks;
      if (!skipsRound || this.driver.node.basicStatus().role !== 'leader') return;
    }
    this.alarmAt = at;
    this.host.setAlarm(at);
  }
}
