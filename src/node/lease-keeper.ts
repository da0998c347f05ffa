import {
  encodeCommand,
  type KvStateMachine,
  type Lease,
  type LeaseChange,
  MAX_LEASE_CHECKPOINTS,
} from '../kv/index.ts';
import type { LeaseClockStore } from './lease-clock-store.ts';
import type { Lessor } from './lessor.ts';

/** What the keeper needs of the node: whether it leads, and a way to propose. */
export interface LeaseKeeperNode {
  /** Leading, with an entry of its own term applied (so every older entry has applied too). */
  leading(): boolean;
  /** Asleep: a caught-up leader with nothing to do, heartbeats stopped. */
  quiet(): boolean;
  term(): number;
  /** The term of the last entry before this leader's first one (undefined if compacted away). */
  priorTerm(): number | undefined;
  /** Another node is known to lead. */
  otherLeader(): boolean;
  /**
   * Proposes `data`: `applied`; `refused` if it never entered the log (it
   * may be proposed again); `pending` if it entered the log and was not seen
   * to apply (it may still: it must not be taken back).
   */
  propose(data: Uint8Array): Promise<'applied' | 'refused' | 'pending'>;
}

/**
 * Runs the leader's side of leases around the Lessor: follows leadership
 * (promote once this leader has applied an entry of its term, so no older
 * leader's grant or checkpoint can still apply after), proposes the
 * revocation of each expired lease once, and checkpoints long leases.
 * The node calls `upkeep` after every event and wakes by alarm at `wakeAt`.
 */
export class LeaseKeeper {
  private readonly lessor: Lessor;
  private readonly kv: KvStateMachine;
  private readonly node: LeaseKeeperNode;
  private readonly now: () => number;
  private readonly saved: LeaseClockStore;
  private checkpointing = false;
  private wasQuiet = false;
  private readonly revokeWaiters = new Map<number, (() => void)[]>();

  constructor(lessor: Lessor, kv: KvStateMachine, node: LeaseKeeperNode, saved: LeaseClockStore, now: () => number) {
    this.lessor = lessor;
    this.kv = kv;
    this.node = node;
    this.saved = saved;
    this.now = now;
  }

  /** After each event: follow leadership, then propose what is due. Proposals leave after the event. */
  upkeep(): void {
    const now = this.now();
    const quiet = this.node.quiet();
    const wasQuiet = this.wasQuiet;
    this.wasQuiet = quiet;
    if (!this.node.leading()) {
      if (this.lessor.isPrimary()) this.lessor.demote();
      // Another leader's clock rules now: deadlines saved by this one are of no more use.
      if (this.node.otherLeader()) this.saved.clear();
      return;
    }
    if (!this.lessor.isPrimary()) this.promote(now);
    for (const id of this.lessor.expired(now)) this.revoke(id);
    if (!this.checkpointing) {
      const checkpoints = this.lessor.checkpoints(now, MAX_LEASE_CHECKPOINTS);
      if (checkpoints.length > 0) this.checkpoint(checkpoints);
    }
    // Going to sleep: keep the deadlines, in case this instance's memory goes before the next
    // expiry. Awake, this leader may renew past them, so they are forgotten.
    if (quiet && !wasQuiet) {
      const deadlines = this.lessor.deadlines();
      if (deadlines.length > 0) this.saved.save(this.node.term(), deadlines);
    } else if (!quiet) this.saved.clear();
  }

  /**
   * Starts the clock of a new leader. The deadlines it saved when it last went
   * quiet are reused if it led the term just before this one (no entry of a
   * later term precedes its own): a leader that renewed a lease in between
   * would have committed an entry of its term first, and a committed entry is
   * in every later leader's log. Otherwise every lease restarts from its
   * checkpoint or TTL plus an election timeout.
   */
  private promote(now: number): void {
    const saved = this.saved.load();
    const prior = this.node.priorTerm();
    const reuse = saved !== undefined && prior !== undefined && saved.term === prior && prior < this.node.term();
    this.lessor.promote(now, allLeases(this.kv), reuse ? saved.deadlines : undefined);
  }

  /** Lease changes of an applied batch. */
  onLeases(changes: readonly LeaseChange[]): void {
    const now = this.now();
    for (const c of changes) {
      if (c.type === 'granted') this.lessor.granted(c.id, c.ttl, now);
      else if (c.type === 'checkpointed') this.lessor.checkpointApplied(c.id, c.remaining);
      else {
        this.lessor.revoked(c.id);
        for (const resolve of this.revokeWaiters.get(c.id) ?? []) resolve();
        this.revokeWaiters.delete(c.id);
      }
    }
  }

  wakeAt(exact: boolean): number | undefined {
    return this.lessor.isPrimary() ? this.lessor.nextWake(exact) : undefined;
  }

  /**
   * Whether this node went to sleep as a leader holding leases and has not
   * seen another leader since: a fresh instance of it (its memory was lost,
   * its lease alarm woke it) should campaign at once rather than after an
   * election timeout, so the expiry it woke for is not late by one.
   */
  sleptAsLeader(): boolean {
    return this.saved.load() !== undefined;
  }

  /** Resolves once lease `id` is revoked here (a keepalive that came too late waits for it). */
  whenRevoked(id: number): Promise<void> {
    return new Promise((resolve) => {
      const list = this.revokeWaiters.get(id) ?? [];
      list.push(resolve);
      this.revokeWaiters.set(id, list);
    });
  }

  private revoke(id: number): void {
    queueMicrotask(() => {
      this.node
        .propose(encodeCommand({ cmd: { type: 'leaseRevoke', id } }))
        .then((outcome) => {
          if (outcome === 'refused') this.lessor.revokeRefused(id, this.now());
        })
        .catch((e: unknown) => console.warn(`revoking expired lease ${id} failed:`, e));
    });
  }

  private checkpoint(checkpoints: { id: number; remaining: number }[]): void {
    this.checkpointing = true;
    queueMicrotask(() => {
      this.node
        .propose(encodeCommand({ cmd: { type: 'leaseCheckpoint', checkpoints } }))
        .catch((e: unknown) => console.warn('lease checkpoint failed:', e))
        .finally(() => {
          this.checkpointing = false;
        });
    });
  }
}

/** Every lease, read a page at a time. */
function* allLeases(kv: KvStateMachine): Generator<Lease> {
  for (let page = kv.leases(0, 1024); page.length > 0; ) {
    yield* page;
    page = kv.leases((page[page.length - 1] as Lease).id, 1024);
  }
}
