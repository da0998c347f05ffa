import { Driver } from '../../src/driver/index.ts';
import type { KvResult } from '../../src/kv/index.ts';
import type { ConfState, Message, NodeId } from '../../src/raft/index.ts';
import { Clients } from './clients.ts';
import type { SimConfig } from './config.ts';
import { Faults, type FaultWorld } from './faults.ts';
import { hashString, TraceHash } from './hash.ts';
import { Invariants, itemHash, SimViolation } from './invariants.ts';
import { Network } from './network.ts';
import { CheckedKvMachine, CheckedLogStore, type SimNode, tableDigest } from './node.ts';
import { SimRng } from './rng.ts';

/** Thrown inside a driver call to crash its node mid-Ready; never escapes the world. */
class CrashSignal extends Error {}

/**
 * A seeded simulated cluster: N nodes, each a Driver over a MemoryLogStore
 * and a KV state machine, a lossy reordering network, clients and a fault
 * injector, all in virtual time (one step = one virtual ms) and all driven
 * by one PRNG. Invariants are checked after every event.
 */
export class World implements FaultWorld {
  readonly seed: number;
  readonly cfg: SimConfig;
  readonly rng: SimRng;
  readonly net: Network;
  readonly nodes: SimNode[] = [];
  readonly ids: NodeId[];
  readonly inv = new Invariants();
  readonly trace = new TraceHash();
  readonly clients: Clients;
  readonly faults: Faults;
  private readonly bootstrap: ConfState;
  private readonly byId = new Map<NodeId, SimNode>();
  private readonly verbose: ((line: string) => void) | undefined;
  time = 0;
  delivered = 0;
  /** Vote requests (PreVote included) sent once a first leader was elected: campaigns started after the first. */
  voteRequests = 0;
  /** SimConfig.sleepy: runs of a leader for its own timeout alone. */
  leaderAlarms = 0;
  /** The node whose driver call the world is running (the only place a mid-Ready crash may strike). */
  private inCall: SimNode | undefined;
  /** SimConfig.quiesceAfterTicks: the node sending its last round before it goes quiet, and that round's messages. */
  private quieting: SimNode | undefined;
  private readonly quietRound = new WeakSet<Message>();
  /** SimConfig.quiesceAfterTicks: times a leader went quiet, and times a quiet node was woken. */
  quiesced = 0;
  woken = 0;

  constructor(seed: number, cfg: SimConfig, verbose?: (line: string) => void) {
    this.seed = seed;
    this.cfg = cfg;
    this.verbose = verbose;
    this.rng = new SimRng(seed);
    this.net = new Network(this.rng, cfg.net);
    this.ids = Array.from({ length: cfg.nodes }, (_, i) => `n${i}`);
    this.bootstrap = { voters: [...this.ids], learners: [] };
    for (const id of this.ids) {
      const sm = new CheckedKvMachine(id, this.inv);
      const n: SimNode = {
        id,
        store: new CheckedLogStore(id, this.inv),
        sm,
        driver: undefined,
        nextTick: this.rng.int(cfg.tickMs),
        // Clock skew: each node ticks up to 20% faster or slower than nominal.
        tickMs: Math.max(1, Math.round(cfg.tickMs * (0.8 + this.rng.int(41) / 100))),
        restartAt: 0,
        lives: 0,
        armed: undefined,
        armedUntil: 0,
        downFor: 0,
        stalledUntil: 0,
        held: [],
        missedTicks: 0,
        dueTicks: 0,
        sleptTicks: 0,
        silentTicks: 0,
        quiet: false,
        quietLeader: '',
        idleTicks: 0,
        lastBatch: 0,
        heldSince: -1,
      };
      const nodeHash = hashString(id);
      sm.onItem = (it) => {
        this.trace.add(nodeHash);
        this.trace.add(it.index);
        this.trace.add(itemHash(it));
      };
      sm.beforeApply = () => {
        if (n.armed === 'apply' && this.inCall === n) throw new CrashSignal();
      };
      this.nodes.push(n);
      this.byId.set(id, n);
      this.start(n);
    }
    if (cfg.slowNodeDelay > 0) this.net.slow.set(this.rng.pick(this.ids), cfg.slowNodeDelay);
    this.clients = new Clients(this, cfg);
    this.faults = new Faults(this, cfg);
  }

  now(): number {
    return this.time;
  }

  /** The node if it is up and running (not crashed, not stalled). */
  live(id: NodeId): SimNode | undefined {
    const n = this.byId.get(id);
    return n?.driver && n.stalledUntil <= this.time ? n : undefined;
  }

  log(line: string): void {
    this.verbose?.(`[${this.time}] ${line}`);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    let term = -1;
    for (const n of this.nodes) {
      if (n.stalledUntil > this.time) continue;
      const st = n.driver?.status();
      if (st?.role === 'leader' && st.term > term) {
        best = n;
        term = st.term;
      }
    }
    return best;
  }

  /** The fault phase, then the heal phase; throws SimViolation on any broken property. */
  run(): void {
    for (; this.time < this.cfg.steps; this.time++) this.step(true);
    this.healAll();
    this.clients.stopping = true;
    const end = this.time + this.cfg.healSteps;
    for (; this.time < end; this.time++) {
      this.step(false);
      if (this.time % this.cfg.tickMs === 0 && !this.clients.busy() && this.converged()) break;
    }
    if (this.clients.busy()) {
      throw new SimViolation(
        'liveness',
        `client ops still pending ${this.cfg.healSteps} ms after healing: ${this.describe()}`,
      );
    }
    this.clients.finish();
    this.inv.checkLogMatching(this.nodes);
    if (!this.converged()) {
      throw new SimViolation('liveness', `no convergence ${this.cfg.healSteps} ms after healing: ${this.describe()}`);
    }
    const digests = new Set(this.nodes.map((n) => tableDigest(n.sm.kv)));
    if (digests.size !== 1) throw new SimViolation('convergence', `KV states differ: ${this.describe()}`);
  }

  /** One virtual ms: deliveries, ticks and restarts, clients, faults. */
  private step(faulty: boolean): void {
    const now = this.time;
    for (const n of this.nodes) if (n.driver && n.stalledUntil === now) this.resume(n);
    for (const { msg: m, lost } of this.net.due(now)) {
      if (lost) {
        this.lose(m);
        continue;
      }
      const n = this.byId.get(m.to);
      if (!n?.driver) {
        this.lose(m);
        continue;
      }
      if (n.stalledUntil > now) {
        n.held.push({ m, after: n.missedTicks });
        continue;
      }
      if (!this.deliver(n, m)) this.lose(m);
    }
    for (const n of this.nodes) {
      if (!n.driver) {
        if (now >= n.restartAt) this.start(n);
        continue;
      }
      if (n.armed && now >= n.armedUntil) this.crash(n, 'now', n.downFor);
      else if (now >= n.nextTick) {
        n.nextTick += n.tickMs;
        // Quiet: no alarm, so no time passes for the core until something wakes the node.
        if (n.quiet) continue;
        if (n.stalledUntil > now) n.missedTicks++;
        else if (this.cfg.sleepy) this.sleepTick(n);
        else this.tickAwake(n);
      }
    }
    this.clients.step();
    if (faulty) this.faults.step();
    else this.faults.finishMembership();
    for (const n of this.nodes) {
      if (!n.driver || n.stalledUntil > now) continue;
      // A client or a fault called into it directly (after wake): its timeout is as it now says.
      if (n.silentTicks < 0) n.silentTicks = n.driver.node.ticksUntilTimeout() - 1;
      // As NodeRuntime does: a leader whose ready followers cannot make a quorum with it
      // leaves new proposals for the next answer (or tick) to persist and send, and
      // (batchWaitMs) one whose followers are free waits a little for a burst like its last.
      if (this.cfg.batching) {
        if (!n.driver.node.followersPaused() && !this.fillingBatch(n, now)) this.call(n, (d) => d.process());
      } else this.after(n);
    }
    if (now % this.cfg.tickMs === 0) this.inv.checkLogMatching(this.nodes);
  }

  /**
   * SimConfig.batchWaitMs, as NodeRuntime.fillingBatch: whether `n` keeps its
   * proposals waiting (appended in memory, not persisted) for more, because
   * fewer wait than its last batch held and not for batchWaitMs yet. Any
   * message or tick still releases them, as any event does in the runtime.
   */
  private fillingBatch(n: SimNode, now: number): boolean {
    const wait = this.cfg.batchWaitMs ?? 0;
    // Entries a leader sent before persisting them are not waiting for a batch: the next process() persists them.
    if (wait === 0 || !n.driver || n.driver.holdsUnpersisted()) return false;
    const held = n.driver.node.status().lastIndex - n.store.lastIndex();
    if (held <= 0) {
      n.heldSince = -1;
      return false;
    }
    if (n.heldSince < 0) n.heldSince = now;
    if (held < n.lastBatch && now - n.heldSince < wait) return true;
    n.lastBatch = held;
    n.heldSince = -1;
    return false;
  }

  /**
   * Not sleepy: the node is ticked every tick, and checked against what a
   * sleepy runtime would do: sleep until the timeout the core announced when
   * it last ran, then hand over the ticks at once. A tick before that
   * timeout must send nothing and change no role or term (unless it
   * releases work a proposal left pending, as any event would).
   */
  private tickAwake(n: SimNode): void {
    const d = n.driver;
    if (!d) return;
    const early = n.silentTicks > 0 && !d.node.hasReady();
    const left = n.silentTicks;
    const sent = this.net.sent;
    const before = d.node.basicStatus();
    if (!this.call(n, (x) => x.tick()) || n.driver !== d || !early) return;
    const after = d.node.basicStatus();
    if (this.net.sent !== sent || after.role !== before.role || after.term !== before.term)
      throw new SimViolation(
        'early timeout',
        `${n.id} (${before.role}, term ${before.term}) acted ${left} ticks before the timeout it announced`,
      );
    n.silentTicks = left - 1;
  }

  /**
   * SimConfig.sleepy: a tick counts towards the node's alarm, which fires
   * once the core's own timeout fell due. The core's state (and so its
   * timeout) changes only when it runs, so asking it again here is asking
   * what it said when it last ran.
   */
  private sleepTick(n: SimNode): void {
    n.sleptTicks++;
    if (n.driver && n.sleptTicks >= n.driver.node.ticksUntilTimeout()) {
      if (n.driver.node.basicStatus().role === 'leader') this.leaderAlarms++;
      this.wake(n);
    }
  }

  /**
   * Runs `n` now if it slept through ticks: they are handed over (as at its
   * alarm) before a client's or a fault's call into it. Returns false if the
   * node crashed doing it. The call is a request: a quiet node wakes, and its
   * idle time starts over (NodeRuntime.wake, and idleTicks at each request).
   */
  wake(n: SimNode): boolean {
    // The caller calls into the node next: what it announced before no longer holds (tickAwake).
    n.silentTicks = -1;
    if (this.quiesces()) {
      this.unquiet(n);
      n.idleTicks = 0;
    }
    if (n.sleptTicks === 0) return true;
    return this.call(n, (d) => {
      this.handOver(n);
      d.process();
    });
  }

  /**
   * A client's request to `n` (SimConfig.quiesceAfterTicks): woken as any
   * call wakes it, and, knowing no leader and not following one that went
   * quiet, it campaigns at once (NodeRuntime.campaignIfLeaderless). False if it crashed.
   */
  request(n: SimNode): boolean {
    if (!this.wake(n)) return false;
    if (!this.quiesces()) return true;
    const st = n.driver?.node.basicStatus();
    const leaderless = st?.leader === '' && st.role === 'follower' && n.quietLeader === '';
    return leaderless ? this.call(n, (d) => d.campaign()) : true;
  }

  hint(id: NodeId): NodeId {
    const n = this.byId.get(id);
    return n?.driver?.node.basicStatus().leader || (n?.quietLeader ?? '');
  }

  private quiesces(): boolean {
    return this.cfg.sleepy === true && (this.cfg.quiesceAfterTicks ?? 0) > 0;
  }

  private unquiet(n: SimNode): void {
    if (!n.quiet) return;
    n.quiet = false;
    n.idleTicks = 0;
    // Time asleep does not count towards timeouts: nobody expected to hear anything.
    n.sleptTicks = 0;
    this.woken++;
    this.log(`wake ${n.id}`);
  }

  /**
   * As NodeRuntime.maybeQuiesce after each event: a leader idle for
   * quiesceAfterTicks, with nothing pending, no transfer, everything
   * committed and every follower holding all of it, sends a last heartbeat
   * round marked quiet and sleeps.
   */
  private maybeQuiesce(n: SimNode, d: Driver<KvResult>): void {
    const after = this.cfg.quiesceAfterTicks ?? 0;
    if (!this.quiesces() || n.quiet || !d.idle() || n.idleTicks < after) return;
    if (d.node.basicStatus().role !== 'leader') return;
    const st = d.status();
    if (st.leadTransferee !== '' || st.commit !== st.lastIndex) return;
    for (const [id, pr] of Object.entries(st.progress)) if (id !== n.id && pr.match !== st.lastIndex) return;
    this.quieting = n;
    try {
      d.node.heartbeat();
      d.process();
    } finally {
      this.quieting = undefined;
    }
    n.quiet = true;
    this.quiesced++;
    this.log(`quiet ${n.id}`);
  }

  /**
   * A message reaches `n` (SimConfig.quiesceAfterTicks): any but an ack wakes
   * it; the quiet round of the leader it follows puts it to sleep once stepped.
   */
  private arrives(n: SimNode, m: Message): void {
    if (m.type !== 'heartbeatResp' && m.type !== 'appResp') this.unquiet(n);
  }

  private stepped(n: SimNode, m: Message): void {
    const d = n.driver;
    if (!d || !this.quietRound.has(m) || d.node.basicStatus().leader !== m.from) return;
    n.quiet = true;
    n.quietLeader = m.from;
    d.node.forgetLeader();
    n.sleptTicks = 0;
    this.log(`sleep ${n.id} (${m.from} went quiet)`);
  }

  /** Hands `n` its slept ticks, with `step`, the message that woke it (RawNode.elapse, as NodeRuntime.catchUpTicks). */
  private handOver(n: SimNode, step?: () => void): void {
    const ticks = n.sleptTicks;
    n.sleptTicks = 0;
    n.idleTicks += ticks;
    if (n.driver && ticks > 0) n.driver.node.elapse(ticks, step);
    else step?.();
  }

  /**
   * A message that never arrived: its sender's transport reports the peer
   * unreachable (a failed fetch). The receiver learns nothing, as in production.
   */
  private lose(m: Message): void {
    if (this.cfg.net.reportLoss) this.reportTo(m.from, m.to, m.type === 'snapshot');
  }

  /** `at` learns that `peer` did not get (all of) what it sent. */
  private reportTo(at: NodeId, peer: NodeId, snapshotFailed = false): void {
    const n = this.live(at);
    if (n) this.call(n, (d) => this.handOver(n, () => d.node.reportUnreachable(peer, snapshotFailed)));
  }

  /**
   * Runs a driver call and checks the invariants it may have touched; a
   * CrashSignal crashes the node. Returns false if the node crashed.
   */
  private call(n: SimNode, fn: (d: Driver<KvResult>) => void): boolean {
    const d = n.driver;
    if (!d) return false;
    this.inCall = n;
    try {
      fn(d);
      if (n.driver === d) {
        n.silentTicks = d.node.ticksUntilTimeout() - 1;
        this.maybeQuiesce(n, d);
        // Following a leader again: it no longer names the one that went quiet (NodeRuntime.event).
        if (d.node.basicStatus().leader !== '') n.quietLeader = '';
      }
    } catch (e) {
      if (!(e instanceof CrashSignal)) throw e;
      this.crash(n, 'now', n.downFor);
      return false;
    } finally {
      this.inCall = undefined;
    }
    this.after(n);
    return true;
  }

  private after(n: SimNode): void {
    const d = n.driver;
    if (d) this.inv.afterEvent(n.id, d.status(), n.store);
  }

  stall(n: SimNode, ms: number): void {
    if (!n.driver) return;
    n.stalledUntil = this.time + ms;
    n.dueTicks = n.driver.node.ticksUntilTimeout();
    // Ticks it slept through are as good as ticks of the stall: both count from when it last ran.
    n.missedTicks = n.sleptTicks;
    n.sleptTicks = 0;
    this.log(`stall ${n.id} until ${n.stalledUntil}`);
  }

  /**
   * A stall ends as it does in a Durable Object, whose events wait in
   * arrival order: the node's alarm among them once its timeout fell due.
   * The first event hands the core every tick that fell due, with its
   * message if it is one (RawNode.elapse, as NodeRuntime does); the rest
   * follow with no time between them.
   */
  private resume(n: SimNode): void {
    const held = n.held;
    const ticks = n.missedTicks;
    n.held = [];
    n.missedTicks = 0;
    if (ticks === 0 && held.length === 0) return;
    this.log(`resume ${n.id}: ${ticks} ticks, ${held.length} messages`);
    const first = held[0];
    const alarmFirst = ticks >= n.dueTicks && (first === undefined || first.after >= n.dueTicks);
    const withFirst = alarmFirst ? undefined : first;
    if (withFirst) {
      this.delivered++;
      this.traceMessage(withFirst.m);
      this.arrives(n, withFirst.m);
    }
    n.idleTicks += ticks;
    const caughtUp = this.call(n, (d) => {
      d.node.elapse(ticks, withFirst && (() => d.node.step(withFirst.m)));
      d.process();
    });
    if (!caughtUp) return;
    if (withFirst) this.stepped(n, withFirst.m);
    const rest = withFirst ? held.slice(1) : held;
    for (const { m } of rest) if (!this.deliver(n, m)) return;
  }

  /** Steps `m` into `n`, counted and traced; false if the node crashed doing it. */
  private deliver(n: SimNode, m: Message): boolean {
    this.delivered++;
    this.traceMessage(m);
    this.arrives(n, m);
    const ok = this.call(n, (d) => {
      this.handOver(n, () => d.node.step(m));
      d.process();
    });
    if (ok) this.stepped(n, m);
    return ok;
  }

  crash(n: SimNode, when: 'now' | 'apply' | 'send', downFor: number): void {
    if (!n.driver) return;
    n.downFor = downFor;
    if (when !== 'now') {
      n.armed = when;
      n.armedUntil = this.time + 30;
      this.log(`crash ${n.id} armed at its next ${when}`);
      return;
    }
    n.driver = undefined;
    n.armed = undefined;
    n.stalledUntil = 0;
    n.held = [];
    n.missedTicks = 0;
    n.sleptTicks = 0;
    // A node starts awake: its election timer runs until it hears from a leader.
    n.quiet = false;
    n.quietLeader = '';
    n.idleTicks = 0;
    n.restartAt = this.time + downFor;
    this.log(`crash ${n.id} until ${n.restartAt}`);
    this.clients.onCrash(n.id);
  }

  /** (Re)starts a node from what its store and state machine made durable. */
  private start(n: SimNode): void {
    const persistedCommit = n.store.initialState().hardState.commit;
    const persistedApplied = n.sm.applied();
    const cfg = this.cfg;
    n.lives++;
    n.armed = undefined;
    n.silentTicks = 0;
    n.driver = new Driver<KvResult>({
      raft: {
        id: n.id,
        rng: this.rng.fork(),
        electionTicks: cfg.electionTicks,
        heartbeatTicks: cfg.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        maxInflightMsgs: cfg.maxInflightMsgs,
        maxMsgBytes: cfg.maxMsgBytes,
        lazyCommit: cfg.lazyCommit,
        holdBackEntries: cfg.holdBackEntries,
        quorumReads: cfg.quorumReads,
        appendsAsHeartbeats: cfg.appendsAsHeartbeats,
      },
      log: n.store,
      sm: n.sm,
      transport: {
        send: (ms: readonly Message[]) => {
          if (n.armed === 'send' && this.inCall === n) throw new CrashSignal();
          for (const m of ms) {
            if (m.type === 'vote' && this.inv.elections > 0) this.voteRequests++;
            if (this.quieting === n) this.quietRound.add(m);
            this.net.send(m, this.time);
          }
        },
      },
      bootstrap: this.bootstrap,
      compactAfterEntries: cfg.compactAfterEntries,
      deferProcessing: cfg.batching,
      sendBeforePersist: cfg.sendBeforePersist ?? false,
    });
    n.nextTick = this.time + 1 + this.rng.int(n.tickMs);
    if (n.lives > 1) {
      this.log(`restart ${n.id}`);
      this.inv.onRestart(n.id, n.driver.status(), persistedCommit, persistedApplied);
    }
  }

  private healAll(): void {
    // Every stall ends now: what a stalled node missed reaches it before the heal.
    for (const n of this.nodes) {
      if (!n.driver || n.stalledUntil < this.time) continue;
      n.stalledUntil = this.time;
      this.resume(n);
    }
    this.net.heal();
    this.net.calm = true;
    this.net.slow.clear();
    for (const n of this.nodes) if (!n.driver) this.start(n);
    this.log('heal all');
  }

  /** Every node is up, a voter of the leader's configuration, and has applied the leader's whole log. */
  converged(): boolean {
    const l = this.leader();
    const ld = l?.driver;
    if (!ld || !this.faults.membershipDone()) return false;
    const ls = ld.status();
    if (ls.commit !== ls.lastIndex || ls.conf.voters.length !== this.nodes.length) return false;
    for (const n of this.nodes) {
      const st = n.driver?.status();
      if (!st || st.applied !== ls.lastIndex || st.term !== ls.term) return false;
    }
    return true;
  }

  describe(): string {
    return this.nodes
      .map((n) => {
        const st = n.driver?.status();
        if (!st) return `${n.id}:down`;
        return `${n.id}:${st.role}/t${st.term}/c${st.commit}/a${st.applied}/l${st.lastIndex}/v[${st.conf.voters.join(',')}]/L[${st.conf.learners.join(',')}]`;
      })
      .join(' ');
  }

  private traceMessage(m: Message): void {
    const t = this.trace;
    t.add(this.time);
    t.addString(`${m.type}|${m.from}|${m.to}`);
    t.add(m.term);
    switch (m.type) {
      case 'app':
        t.add(m.prevIndex);
        t.add(m.prevTerm);
        t.add(m.commit);
        t.add(m.entries.length);
        break;
      case 'appResp':
        t.add(m.index);
        t.add(m.reject ? 1 : 0);
        t.add(m.hintIndex);
        break;
      case 'vote':
        t.add(m.lastIndex);
        t.add(m.lastTerm);
        t.add(m.preVote ? 1 : 0);
        break;
      case 'voteResp':
        t.add(m.reject ? 1 : 0);
        break;
      case 'heartbeat':
        t.add(m.commit);
        t.addString(m.ctx);
        break;
      case 'snapshot':
        t.add(m.snapshot.meta.index);
        break;
      case 'readIndexResp':
        t.add(m.index);
        break;
      default:
        break;
    }
  }
}
