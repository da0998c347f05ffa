import { encodeCommand, type KvCommand } from '../../src/kv/index.ts';
import type { ConfChange, NodeId } from '../../src/raft/index.ts';
import type { SimConfig } from './config.ts';
import type { Network } from './network.ts';
import type { SimNode } from './node.ts';
import type { SimRng } from './rng.ts';

/** What the fault injector may do to the world. */
export interface FaultWorld {
  readonly rng: SimRng;
  readonly net: Network;
  readonly nodes: readonly SimNode[];
  now(): number;
  /** The live leader of the highest term, if any. */
  leader(): SimNode | undefined;
  /** Crash now, or at the node's next apply or send (mid-Ready). */
  crash(n: SimNode, when: 'now' | 'apply' | 'send', downFor: number): void;
  /** The node stops running for `ms`; what is sent to it waits. */
  stall(n: SimNode, ms: number): void;
  /** Runs a sleeping node's overdue ticks before a call into it (SimConfig.sleepy); false if it crashed. */
  wake(n: SimNode): boolean;
  log(line: string): void;
}

export interface FaultStats {
  partitions: number;
  crashes: number;
  transfers: number;
  confChanges: number;
  historyCompactions: number;
  leaseOps: number;
  stalls: number;
}

type Phase = 'remove' | 'addLearner' | 'addVoter';

/** One membership episode: remove a voter, then add it back (directly, or as a learner then promoted). */
interface Plan {
  readonly node: NodeId;
  readonly viaLearner: boolean;
  phase: Phase;
  nextTryAt: number;
}

/**
 * Injects the faults of a run at random times: partitions (random splits,
 * an isolated leader, a bridge node, one-way cuts), crash-restarts (between events or in
 * the middle of a Ready), leader transfers and membership episodes.
 */
export class Faults {
  private readonly w: FaultWorld;
  private readonly cfg: SimConfig;
  private next = { partition: 0, crash: 0, membership: 0, transfer: 0, history: 0, lease: 0, stall: 0 };
  private healAt = Number.POSITIVE_INFINITY;
  private plan: Plan | undefined;
  readonly stats: FaultStats = {
    partitions: 0,
    crashes: 0,
    transfers: 0,
    confChanges: 0,
    historyCompactions: 0,
    leaseOps: 0,
    stalls: 0,
  };

  constructor(w: FaultWorld, cfg: SimConfig) {
    this.w = w;
    this.cfg = cfg;
    const f = cfg.faults;
    this.next = {
      partition: this.after(f.partitionEvery),
      crash: this.after(f.crashEvery),
      membership: this.after(f.membershipEvery),
      transfer: this.after(f.transferEvery),
      history: this.after(f.historyCompactEvery ?? 0),
      lease: this.after(f.leaseEvery ?? 0),
      stall: this.after(f.stallEvery ?? 0),
    };
  }

  /** One virtual ms of the fault phase. */
  step(): void {
    const now = this.w.now();
    const f = this.cfg.faults;
    if (now >= this.healAt) {
      this.w.net.heal();
      this.healAt = Number.POSITIVE_INFINITY;
      this.w.log('heal');
    }
    if (now >= this.next.partition) {
      this.next.partition = now + this.after(f.partitionEvery);
      this.partition();
    }
    if (now >= this.next.crash) {
      this.next.crash = now + this.after(f.crashEvery);
      this.crashOne();
    }
    // Compactions and lease commands are requests too: in the clients' lulls (SimConfig.lulls) nobody sends any.
    const lull = this.cfg.lulls !== undefined && now % this.cfg.lulls.every < this.cfg.lulls.length;
    if (now >= this.next.history) {
      this.next.history = now + this.after(f.historyCompactEvery ?? 0);
      if (!lull) this.compactHistory();
    }
    if (now >= this.next.lease) {
      this.next.lease = now + this.after(f.leaseEvery ?? 0);
      if (!lull) this.leaseOp();
    }
    if (now >= this.next.stall) {
      this.next.stall = now + this.after(f.stallEvery ?? 0);
      this.stallOne();
    }
    if (now >= this.next.transfer) {
      this.next.transfer = now + this.after(f.transferEvery);
      this.transfer();
    }
    if (now >= this.next.membership) {
      this.next.membership = now + this.after(f.membershipEvery);
      if (!this.plan) this.startPlan();
    }
    this.drivePlan();
  }

  /** The heal phase: the current membership episode still runs to completion. */
  finishMembership(): void {
    this.drivePlan();
  }

  membershipDone(): boolean {
    return this.plan === undefined;
  }

  private after(mean: number): number {
    if (mean <= 0) return Number.POSITIVE_INFINITY;
    return Math.max(1, Math.floor(mean / 2) + this.w.rng.int(mean));
  }

  private partition(): void {
    const { rng, net, nodes } = this.w;
    const ids = nodes.map((n) => n.id);
    net.heal();
    this.stats.partitions++;
    const kind = rng.int(4);
    if (kind === 0) {
      const shuffled = rng.shuffle(ids);
      const k = 1 + rng.int(ids.length - 1);
      const side = new Set(shuffled.slice(0, k));
      for (const a of ids) for (const b of ids) if (side.has(a) && !side.has(b)) net.cutBoth(a, b);
    } else if (kind === 1) {
      const target = this.w.leader()?.id ?? rng.pick(ids);
      for (const b of ids) if (b !== target) net.cutBoth(target, b);
    } else if (kind === 2) {
      // A bridge: one node hears both halves, which cannot hear each other.
      const [bridge, ...rest] = rng.shuffle(ids);
      const half = new Set(rest.slice(0, Math.ceil(rest.length / 2)));
      for (const a of rest) for (const b of rest) if (half.has(a) && !half.has(b)) net.cutBoth(a, b);
      this.w.log(`bridge ${bridge}`);
    } else {
      const pairs = 1 + rng.int(ids.length);
      for (let i = 0; i < pairs; i++) {
        const a = rng.pick(ids);
        const b = rng.pick(ids);
        if (a !== b) net.cut(a, b);
      }
    }
    this.healAt = this.w.now() + 50 + rng.int(this.cfg.faults.partitionEvery * 2);
    this.w.log(`partition ${net.describeCuts()}`);
  }

  private crashOne(): void {
    const { rng, nodes } = this.w;
    const up = nodes.filter((n) => n.driver);
    const maxDown = Math.floor((nodes.length - 1) / 2);
    if (nodes.length - up.length >= maxDown || up.length === 0) return;
    const leader = this.w.leader();
    const victim = leader && rng.chance(0.4) ? leader : rng.pick(up);
    const when = rng.pick(['now', 'now', 'apply', 'send'] as const);
    this.stats.crashes++;
    this.w.crash(victim, when, 20 + rng.int(600));
  }

  /** One node's process is busy for up to three election timeouts: it neither ticks nor steps meanwhile. */
  private stallOne(): void {
    const { rng, nodes } = this.w;
    const leader = this.w.leader();
    const now = this.w.now();
    if (nodes.some((n) => n.stalledUntil > now)) return;
    const candidates = nodes.filter((n) => n.driver && !(this.cfg.faults.stallFollowersOnly && n === leader));
    if (candidates.length === 0) return;
    this.stats.stalls++;
    this.w.stall(rng.pick(candidates), 10 + rng.int(3 * this.cfg.electionTicks * this.cfg.tickMs));
  }

  private transfer(): void {
    const l = this.w.leader();
    const drv = l && this.w.wake(l) ? l.driver : undefined;
    if (!l || !drv) return;
    const others = drv.status().conf.voters.filter((id) => id !== l.id);
    if (others.length === 0) return;
    const to = this.w.rng.pick(others);
    this.stats.transfers++;
    this.w.log(`transfer ${l.id} -> ${to}`);
    drv.transferLeader(to);
  }

  /** The leader proposes dropping the history below a recent revision (a compact command in the log). */
  private compactHistory(): void {
    const l = this.w.leader();
    const drv = l && this.w.wake(l) ? l.driver : undefined;
    if (!l || !drv) return;
    const revision = l.sm.revision() - this.w.rng.int(10);
    if (revision <= l.sm.compacted()) return;
    this.w.log(`history: compact at ${revision}`);
    drv.propose(encodeCommand({ cmd: { type: 'compact', revision } }), (o) => {
      if (o.status === 'applied' && o.result.type === 'compact') this.stats.historyCompactions++;
    });
  }

  /**
   * The leader proposes a lease command on keys clients never touch
   * (`lease/*`, so expiries do not disturb the linearizability check): the
   * replicas must still agree on every lease and every record's lease.
   */
  private leaseOp(): void {
    const l = this.w.leader();
    const drv = l && this.w.wake(l) ? l.driver : undefined;
    if (!l || !drv) return;
    const rng = this.w.rng;
    const leases = l.sm.leases();
    const pick = rng.int(4);
    const lease = leases.length === 0 ? undefined : rng.pick(leases);
    let cmd: KvCommand;
    if (lease === undefined || pick === 0) cmd = { type: 'leaseGrant', id: 0, ttl: 1 + rng.int(100) };
    else if (pick === 1)
      cmd = { type: 'put', key: `lease/${rng.int(20)}`, value: new Uint8Array([rng.int(256)]), lease: lease.id };
    else if (pick === 2) cmd = { type: 'leaseRevoke', id: lease.id };
    else cmd = { type: 'leaseCheckpoint', checkpoints: [{ id: lease.id, remaining: rng.int(lease.ttl + 1) }] };
    this.w.log(`lease: ${cmd.type}${lease ? ` ${lease.id}` : ''}`);
    drv.propose(encodeCommand({ cmd }), (o) => {
      if (o.status === 'applied' && o.result.type !== 'error') this.stats.leaseOps++;
    });
  }

  private startPlan(): void {
    const l = this.w.leader();
    if (!l?.driver) return;
    const voters = l.driver.status().conf.voters;
    if (voters.length < this.w.nodes.length) return;
    const node = this.w.rng.pick(voters);
    this.plan = { node, viaLearner: this.w.rng.chance(0.5), phase: 'remove', nextTryAt: 0 };
    this.w.log(`membership: cycle ${node}`);
  }

  /** Moves the episode on from what the current leader's configuration shows. */
  private drivePlan(): void {
    const p = this.plan;
    const now = this.w.now();
    if (!p || now < p.nextTryAt) return;
    p.nextTryAt = now + 20;
    const l = this.w.leader();
    const drv = l && this.w.wake(l) ? l.driver : undefined;
    if (!l || !drv) return;
    const st = drv.status();
    // Read the configuration only from a leader that has applied everything up to
    // an entry of its own term: a new leader's applied conf may still lag its log.
    if (st.applied !== st.commit || l.store.term(st.commit) !== st.term) return;
    const conf = st.conf;
    const isVoter = conf.voters.includes(p.node);
    const isLearner = conf.learners.includes(p.node);
    let cc: ConfChange | undefined;
    if (p.phase === 'remove') {
      if (isVoter || isLearner) cc = { type: 'remove', node: p.node };
      else p.phase = p.viaLearner ? 'addLearner' : 'addVoter';
    }
    if (p.phase === 'addLearner') {
      if (isLearner) p.phase = 'addVoter';
      else if (!isVoter) cc = { type: 'addLearner', node: p.node };
    }
    if (p.phase === 'addVoter') {
      if (isVoter) {
        this.w.log(`membership: ${p.node} is a voter again`);
        this.plan = undefined;
        return;
      }
      cc = { type: 'addVoter', node: p.node };
    }
    if (!cc) return;
    const change = cc;
    drv.proposeConfChange(change, (o) => {
      if (o.status === 'applied') {
        this.stats.confChanges++;
        this.w.log(`membership: applied ${change.type} ${change.node}`);
      }
    });
  }
}
