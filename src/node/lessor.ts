import type { Lease } from '../kv/index.ts';

/**
 * The leader's lease clock (etcd's lessor): when each lease expires, in the
 * leader's own time. Only the leader measures time; the replicated state
 * holds each lease's TTL and last checkpoint (see Lease). Pure: every call
 * takes `now` (ms), so it is tested without a clock.
 *
 * What it promises: a lease renewed at `t` by this leader does not expire
 * here before `t + ttl`; a new leader starts every lease from its checkpoint
 * (or its full TTL) plus `extendMs`, and an old leader renews only after a
 * read barrier (RaftNode), so no lease expires early because leadership moved.
 */
export interface LessorOptions {
  /** What a new leader adds to every lease: its election timeout, the longest it may have been without a leader. */
  readonly extendMs: number;
  /**
   * Leases with more than this left get their remaining TTL checkpointed
   * through the log every this often, so a long lease that is not renewed
   * is not restarted from full by each new leader (etcd's lease checkpoints).
   */
  readonly checkpointMs: number;
  /** After a revocation that did not commit, try again after this long. */
  readonly retryMs: number;
}

interface Clock {
  readonly ttl: number;
  deadline: number;
  /** When to checkpoint next (Infinity: a lease too short to need it). */
  checkpointAt: number;
  /** A checkpoint with time left is (or will be) in the log: a renewal must clear it there. */
  checkpointed: boolean;
  /** Its revocation was proposed and has not applied yet: not proposed twice. */
  revoking: boolean;
}

export class Lessor {
  private readonly opts: LessorOptions;
  private readonly clocks = new Map<number, Clock>();
  private primary = false;
  /**
   * Nothing is due before this (ms): a lower bound, kept exact enough that
   * the checks run after every event of a busy leader cost O(1) until
   * something may be due, and made exact when the cluster goes to sleep.
   */
  private due = Number.POSITIVE_INFINITY;

  constructor(opts: LessorOptions) {
    this.opts = opts;
  }

  /** Leases on this clock (a metric). */
  get size(): number {
    return this.clocks.size;
  }

  isPrimary(): boolean {
    return this.primary;
  }

  /**
   * Becomes the leader's clock: every lease restarts from its checkpoint (or
   * TTL) plus `extendMs`, unless `saved` holds a deadline this same leader
   * kept for it and no other leader can have renewed it since (the caller
   * decides that: see LeaseKeeper).
   */
  promote(now: number, leases: Iterable<Lease>, saved?: ReadonlyMap<number, number>): void {
    this.clocks.clear();
    this.primary = true;
    for (const l of leases) {
      const left = (l.remaining > 0 ? l.remaining : l.ttl) * 1000;
      const deadline = saved?.get(l.id) ?? now + left + this.opts.extendMs;
      this.clocks.set(l.id, this.clock(now, l.ttl, deadline, l.remaining > 0));
    }
    this.recomputeDue();
  }

  /** Every lease's deadline, to save while the cluster sleeps. */
  deadlines(): [number, number][] {
    return [...this.clocks].map(([id, c]) => [id, c.deadline]);
  }

  /** No longer the leader: forget every clock (the next leader starts its own). */
  demote(): void {
    this.primary = false;
    this.clocks.clear();
    this.due = Number.POSITIVE_INFINITY;
  }

  /** A grant applied. */
  granted(id: number, ttl: number, now: number): void {
    if (!this.primary) return;
    const c = this.clock(now, ttl, now + ttl * 1000, false);
    this.clocks.set(id, c);
    this.due = Math.min(this.due, c.deadline, c.checkpointAt);
  }

  /** A revocation (or expiry) applied. */
  revoked(id: number): void {
    this.clocks.delete(id);
  }

  /** A checkpoint applied; one with time left must be cleared by the next renewal (see renew). */
  checkpointApplied(id: number, remaining: number): void {
    const c = this.clocks.get(id);
    if (c && remaining > 0) c.checkpointed = true;
  }

  /**
   * Renews lease `id` to `now + ttl`: its TTL, and whether the log holds a
   * checkpoint the renewal must clear (through the log) before it is
   * acknowledged; undefined if this clock does not know the lease.
   * The deadline moves now, before the clear is proposed, so a checkpoint
   * proposed after this renewal records the renewed time.
   *
   * `expired` if its deadline has passed: its revocation is (or is about to
   * be) in the log and cannot be called back, so a renewal now would be
   * acknowledged for keys about to go. The caller waits for the revocation
   * and answers that the lease is gone, as etcd does.
   */
  renew(id: number, now: number): { ttl: number; clearCheckpoint: boolean } | 'expired' | undefined {
    const c = this.clocks.get(id);
    if (!this.primary || c === undefined) return undefined;
    if (c.revoking || c.deadline <= now) return 'expired';
    c.deadline = now + c.ttl * 1000;
    const clearCheckpoint = c.checkpointed;
    c.checkpointed = false;
    c.checkpointAt = this.checkpointAfter(now, c.ttl);
    return { ttl: c.ttl, clearCheckpoint };
  }

  /** Milliseconds lease `id` has left by this clock (at least 0), or undefined if it does not know it. */
  timeLeft(id: number, now: number): number | undefined {
    const c = this.clocks.get(id);
    return this.primary && c !== undefined ? Math.max(0, c.deadline - now) : undefined;
  }

  /** Leases past their deadline whose revocation is not under way yet; each is marked as under way. */
  expired(now: number): number[] {
    if (now < this.due) return [];
    const out: number[] = [];
    for (const [id, c] of this.clocks) {
      if (c.revoking || c.deadline > now) continue;
      c.revoking = true;
      out.push(id);
    }
    this.recomputeDue();
    return out;
  }

  /**
   * A revocation was refused before it entered the log (a leadership
   * transfer, no quorum): try again after retryMs. One that entered the log
   * and was not seen to apply stays under way: it applies, or this leader
   * loses its leadership (and its clock) first.
   */
  revokeRefused(id: number, now: number): void {
    const c = this.clocks.get(id);
    if (!c?.revoking) return;
    c.revoking = false;
    c.deadline = Math.max(c.deadline, now + this.opts.retryMs);
    this.due = Math.min(this.due, c.deadline);
  }

  /**
   * The remaining TTLs (whole seconds, rounded up, so never short) of the
   * leases due for a checkpoint, at most `max`; each is marked checkpointed.
   * Leases due within the next quarter interval come along, so the
   * checkpoints of leases renewed at different times fall into one round
   * (one wake of a sleeping cluster) instead of one each.
   */
  checkpoints(now: number, max: number): { id: number; remaining: number }[] {
    if (now < this.due) return [];
    const out: { id: number; remaining: number }[] = [];
    const horizon = now + this.opts.checkpointMs / 4;
    for (const [id, c] of this.clocks) {
      if (out.length >= max) break;
      if (c.revoking || c.checkpointAt > horizon) continue;
      const remaining = Math.ceil(Math.max(0, c.deadline - now) / 1000);
      c.checkpointAt = this.checkpointAfter(now, remaining);
      if (remaining === 0) continue;
      c.checkpointed = true;
      out.push({ id, remaining });
    }
    this.recomputeDue();
    return out;
  }

  /**
   * When the leader must next act (an expiry or a checkpoint), or undefined
   * if never. Not `exact`: possibly earlier (an alarm that finds nothing to
   * do is harmless to an awake leader); `exact` costs a pass over the leases,
   * for an alarm that wakes a sleeping cluster.
   */
  nextWake(exact = false): number | undefined {
    if (exact) this.recomputeDue();
    return Number.isFinite(this.due) ? this.due : undefined;
  }

  private recomputeDue(): void {
    let at = Number.POSITIVE_INFINITY;
    for (const c of this.clocks.values()) {
      if (!c.revoking) at = Math.min(at, c.deadline);
      at = Math.min(at, c.checkpointAt);
    }
    this.due = at;
  }

  private clock(now: number, ttl: number, deadline: number, checkpointed: boolean): Clock {
    return { ttl, deadline, checkpointAt: this.checkpointAfter(now, ttl), checkpointed, revoking: false };
  }

  /** Only a lease with more than an interval left is worth a checkpoint. */
  private checkpointAfter(now: number, secondsLeft: number): number {
    return secondsLeft * 1000 > this.opts.checkpointMs ? now + this.opts.checkpointMs : Number.POSITIVE_INFINITY;
  }
}
