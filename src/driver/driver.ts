import type {
  ConfChange,
  Config,
  ConfState,
  Entry,
  Index,
  Message,
  NodeId,
  Ready,
  Status,
  Term,
} from '../raft/index.ts';
import { RawNode } from '../raft/index.ts';
import { CoreStorage } from './core-storage.ts';
import type { ApplyItem, LogStore, StateMachine, Transport } from './interfaces.ts';

/**
 * How a proposal ended, as far as this node can tell:
 * - `applied`: committed and applied; `result` is the state machine's answer;
 * - `notLeader` / `refused`: never entered the log; safe to retry;
 * - `dropped`: entered the log but another leader's entry replaced it; it never applies;
 * - `unknown`: a snapshot overtook it; it may or may not have applied.
 * A proposal still waiting when leadership moves stays waiting: only the
 * runtime's deadline may call it unknown.
 */
export type ProposeOutcome<R> =
  | { readonly status: 'applied'; readonly index: Index; readonly term: Term; readonly result: R }
  | { readonly status: 'notLeader'; readonly leader: NodeId }
  | {
      readonly status: 'refused';
      /**
       * Why: `transferring` and `confPending` pass; `noQuorum`: this leader
       * has not heard from a quorum lately (try another node); `invalid` does not pass.
       */
      readonly code: 'transferring' | 'confPending' | 'invalid' | 'noQuorum';
      readonly reason: string;
      readonly leader: NodeId;
    }
  | { readonly status: 'dropped' }
  | { readonly status: 'unknown' };

/** A linearizable read barrier: once `ready`, reading the state machine is linearizable. */
export type ReadOutcome =
  | { readonly status: 'ready'; readonly index: Index }
  | { readonly status: 'notLeader'; readonly leader: NodeId };

export interface DriverOptions<R> {
  readonly raft: Omit<Config, 'storage' | 'applied'>;
  readonly log: LogStore;
  readonly sm: StateMachine<R>;
  readonly transport: Transport;
  /**
   * The cluster's initial membership, the same on every node, including one
   * added later: conf entries in the log are changes relative to it, so a
   * node replaying the log from index 1 must start from it. Required when
   * the state machine has no configuration yet.
   */
  readonly bootstrap?: ConfState;
  /** Snapshot and compact once this many applied entries sit in the log (0: never). */
  readonly compactAfterEntries?: number;
  /**
   * Entries compaction keeps behind the applied index, so a follower a little
   * behind catches up from the log. Only for a state machine whose snapshots
   * are taken when sent (`snapshot()` returns no bytes): one that serializes
   * its state can only snapshot at its applied index.
   */
  readonly compactKeepEntries?: number;
  /**
   * Batching: when true, `propose` and `read` only queue their work and the
   * runtime calls `process()` once its turn ends, so every proposal of that
   * turn goes out in one AppendEntries per follower and one persist.
   */
  readonly deferProcessing?: boolean;
  /**
   * A leader sends new entries before persisting them (thesis §10.2.1; see
   * `Ready`, "a leader may send first"), and persists them at the start of
   * the next `process()`: when that is the follower's answer, one
   * transaction persists the entries and applies them. The runtime must call
   * `process()` again soon while `holdsUnpersisted()`.
   */
  readonly sendBeforePersist?: boolean;
}

interface ProposalWaiter<R> {
  readonly term: Term;
  readonly cb: (o: ProposeOutcome<R>) => void;
}

/**
 * The Ready loop, written once for every runtime: persist, apply, send,
 * answer waiting clients, advance (see `Ready`). The simulator runs it with
 * memory stores; the Durable Object with SQLite and internal fetch.
 * Everything here is synchronous: callers may not hold it across an await.
 */
export class Driver<R> {
  readonly node: RawNode;
  private readonly opts: DriverOptions<R>;
  private readonly proposals = new Map<Index, ProposalWaiter<R>>();
  private readonly reads = new Map<string, (o: ReadOutcome) => void>();
  /** Read states whose index is not applied yet, in arrival order. */
  private readyReads: { ctx: string; index: Index }[] = [];
  private readSeq = 0;
  private readonly readPrefix: string;
  private leader: NodeId = '';
  /** A leader's Ready whose messages went out before its entries were persisted (sendBeforePersist). */
  private unpersisted: Ready | undefined;
  /** How many Readys were sent ahead so far: the current one's number, while there is one. */
  private sentAhead = 0;

  constructor(opts: DriverOptions<R>) {
    this.opts = opts;
    const conf = opts.sm.conf() ?? opts.bootstrap;
    if (!conf && opts.log.initialState().conf.voters.length === 0) {
      // Replaying "add d" onto an empty membership would make d a cluster of one.
      throw new Error("driver: a node with no configuration needs the cluster's initial membership (bootstrap)");
    }
    const storage = new CoreStorage(opts.log, conf, opts.sm.applied());
    this.node = new RawNode({ ...opts.raft, storage, applied: opts.sm.applied() });
    // Read contexts must not collide with those of this node's earlier lives.
    this.readPrefix = `${opts.raft.id}.${opts.raft.rng.int(2 ** 31).toString(36)}`;
  }

  tick(): void {
    this.node.tick();
    this.process();
  }

  receive(m: Message): void {
    this.node.step(m);
    this.process();
  }

  campaign(): void {
    this.node.campaign();
    this.process();
  }

  transferLeader(to: NodeId): void {
    this.node.transferLeader(to);
    this.process();
  }

  status(): Status {
    return this.node.status();
  }

  /** Whether no proposal or read is waiting on this node. */
  idle(): boolean {
    return this.proposals.size === 0 && this.reads.size === 0;
  }

  /** Propose a state machine command; `cb` is called exactly once, or never if this node crashes first. */
  propose(data: Uint8Array, cb: (o: ProposeOutcome<R>) => void): void {
    this.await(this.node.propose(data), cb);
  }

  /** Propose a membership change; on success the result is undefined. */
  proposeConfChange(cc: ConfChange, cb: (o: ProposeOutcome<R | undefined>) => void): void {
    this.await(this.node.proposeConfChange(cc), cb as (o: ProposeOutcome<R>) => void);
  }

  private await(res: ReturnType<RawNode['propose']>, cb: (o: ProposeOutcome<R>) => void): void {
    if (!res.ok) {
      if (res.reason === 'notLeader') cb({ status: 'notLeader', leader: res.leader });
      else cb({ status: 'refused', code: res.reason, reason: res.detail ?? res.reason, leader: res.leader });
      return;
    }
    // An older waiter at this index lost its entry from our log; another node may still commit it.
    this.proposals.get(res.index)?.cb({ status: 'unknown' });
    this.proposals.set(res.index, { term: res.term, cb });
    if (!this.opts.deferProcessing) this.process();
  }

  /** A linearizable read barrier (ReadIndex, thesis §6.4). */
  read(cb: (o: ReadOutcome) => void): void {
    const st = this.node.basicStatus();
    // A leader out of touch with its quorum could not confirm the read before the caller gives up.
    if ((st.role !== 'leader' && st.leader === '') || !this.node.quorumInContact()) {
      cb({ status: 'notLeader', leader: '' });
      return;
    }
    const ctx = `${this.readPrefix}.${++this.readSeq}`;
    this.reads.set(ctx, cb);
    this.node.readIndex(ctx);
    if (!this.opts.deferProcessing) this.process();
  }

  /** Runs Ready batches until there is no work left (a leader's new entries may only be sent: see sendBeforePersist). */
  process(): void {
    if (this.sendAhead()) return;
    this.persistUnpersisted();
    while (this.node.hasReady()) this.handle(this.node.ready());
  }

  /** Whether `process()` has anything to do. */
  hasWork(): boolean {
    return this.unpersisted !== undefined || this.node.hasReady();
  }

  /** Whether `process()` would write storage now: if not, the runtime needs no transaction around it. */
  writesStorage(): boolean {
    return this.unpersisted !== undefined || (this.node.readyNeedsStorage() && !this.sendsAhead());
  }

  /** Whether entries were sent that are not durable here yet: `process()` persists them. */
  holdsUnpersisted(): boolean {
    return this.unpersisted !== undefined;
  }

  /** Which Ready was sent ahead and is not persisted yet (a number that grows), or 0 if none. */
  unpersistedId(): number {
    return this.unpersisted ? this.sentAhead : 0;
  }

  private sendsAhead(): boolean {
    return this.opts.sendBeforePersist === true && this.unpersisted === undefined && this.node.readyOnlySends();
  }

  /** Sends a leader's new entries now and keeps their Ready for the next `process()` to persist. */
  private sendAhead(): boolean {
    if (!this.sendsAhead()) return false;
    const rd = this.node.ready();
    this.opts.transport.send(rd.messages);
    this.unpersisted = rd;
    this.sentAhead++;
    return true;
  }

  private persistUnpersisted(): void {
    const rd = this.unpersisted;
    if (!rd) return;
    this.unpersisted = undefined;
    this.opts.log.persist({ entries: rd.entries });
    this.node.advance(rd);
  }

  private handle(rd: Ready): void {
    const { log, sm, transport } = this.opts;
    if (rd.softState && rd.softState.leader !== this.leader) {
      this.leader = rd.softState.leader;
      this.failReads();
    }
    // 1. Persist (the snapshot, entries and hard state in one atomic step).
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState)
      log.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
    if (rd.snapshot) {
      sm.restore(rd.snapshot);
      this.settleOvertaken(rd.snapshot.meta.index);
    }
    // 2. Apply.
    if (rd.committedEntries.length > 0) this.apply(rd.committedEntries);
    // 3. Send: only now may messages promise what step 1 made durable.
    if (rd.messages.length > 0) transport.send(rd.messages);
    // 4. Serve reads whose index is applied.
    for (const rs of rd.readStates) {
      if (rs.refused) this.refuseRead(rs.ctx);
      else this.readyReads.push(rs);
    }
    this.serveReads();
    this.node.advance(rd);
    this.maybeCompact();
  }

  private apply(entries: readonly Entry[]): void {
    const items: ApplyItem[] = [];
    const confOf = new Map<Index, ConfState>();
    for (const e of entries) {
      if (e.type === 'conf') {
        const cc = RawNode.decodeConfChange(e.data);
        const conf = cc ? this.node.applyConfChange(cc) : this.node.status().conf;
        confOf.set(e.index, conf);
        items.push({ index: e.index, kind: 'conf', conf });
      } else if (e.data.byteLength === 0) {
        items.push({ index: e.index, kind: 'noop' });
      } else {
        items.push({ index: e.index, kind: 'command', data: e.data });
      }
    }
    const results = this.opts.sm.apply(items);
    let next = 0;
    for (const e of entries) {
      const isCommand = e.type === 'normal' && e.data.byteLength > 0;
      const result = isCommand ? results[next++] : undefined;
      const w = this.proposals.get(e.index);
      if (!w) continue;
      this.proposals.delete(e.index);
      if (w.term !== e.term) w.cb({ status: 'dropped' });
      else w.cb({ status: 'applied', index: e.index, term: e.term, result: result as R });
    }
  }

  /** Waiters at or below `index` that were not answered were overtaken (by a snapshot or a replaced entry). */
  private settleOvertaken(index: Index): void {
    for (const [i, w] of this.proposals) {
      if (i > index) continue;
      this.proposals.delete(i);
      w.cb({ status: 'unknown' });
    }
  }

  private serveReads(): void {
    const applied = this.opts.sm.applied();
    const waiting: { ctx: string; index: Index }[] = [];
    for (const rs of this.readyReads) {
      if (rs.index > applied) {
        waiting.push(rs);
        continue;
      }
      const cb = this.reads.get(rs.ctx);
      this.reads.delete(rs.ctx);
      cb?.({ status: 'ready', index: rs.index });
    }
    this.readyReads = waiting;
  }

  /** The leader refused the read (it has not heard from a quorum lately): the caller tries another node. */
  private refuseRead(ctx: string): void {
    const cb = this.reads.get(ctx);
    this.reads.delete(ctx);
    cb?.({ status: 'notLeader', leader: '' });
  }

  /** A read waiting on a leader that is gone will never be answered: tell its caller to retry. */
  private failReads(): void {
    const served = new Set(this.readyReads.map((r) => r.ctx));
    for (const [ctx, cb] of this.reads) {
      if (served.has(ctx)) continue;
      this.reads.delete(ctx);
      cb({ status: 'notLeader', leader: this.leader });
    }
  }

  /** Whether a conf entry lies in (lo, hi]: compaction there would record the wrong membership. */
  private confChangedAfter(lo: Index, hi: Index): boolean {
    return this.opts.log.entries(lo + 1, hi + 1, Number.POSITIVE_INFINITY).some((e) => e.type === 'conf');
  }

  private maybeCompact(): void {
    const every = this.opts.compactAfterEntries ?? 0;
    const { log, sm } = this.opts;
    const applied = sm.applied();
    if (every <= 0 || applied - log.firstIndex() + 1 < every) return;
    const data = sm.snapshot();
    const keep = data.byteLength === 0 ? (this.opts.compactKeepEntries ?? 0) : 0;
    this.compactThrough(applied - Math.min(keep, every - 1), data);
  }

  /**
   * Snapshots the state machine and compacts the log through the applied
   * index now, keeping no entry behind it: any follower behind that index
   * then needs a snapshot. For operators and fault tests; what the driver
   * does by itself past compactAfterEntries. False if there was nothing to compact.
   */
  compactNow(): boolean {
    const { sm } = this.opts;
    return this.compactThrough(sm.applied(), sm.snapshot());
  }

  private compactThrough(index: Index, data: Uint8Array): boolean {
    const { log, sm } = this.opts;
    const applied = sm.applied();
    const term = log.term(index);
    if (term === undefined || index < log.firstIndex()) return false;
    // The conf as of `index`: the current one unless a conf entry applied after it (then wait).
    const conf = sm.conf() ?? this.node.status().conf;
    if (index < applied && this.confChangedAfter(index, applied)) return false;
    log.compact({ index, term, conf }, data);
    return true;
  }
}
