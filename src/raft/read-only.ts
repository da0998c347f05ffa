import type { Index, NodeId } from './types.ts';

/** A linearizable read waiting for a quorum to confirm the leader still leads. */
export interface PendingRead {
  readonly ctx: string;
  /** The commit index when the read arrived: the read may be served once it is applied. */
  readonly index: Index;
  /** Who asked: this node, or a follower that forwarded it. */
  readonly from: NodeId;
  readonly acks: Set<NodeId>;
}

/**
 * ReadIndex bookkeeping (thesis §6.4): reads queue in arrival order; a
 * heartbeat round carrying a read's ctx confirms it and every read queued
 * before it, since the leader was still leader when all of them arrived.
 *
 * Reads share rounds: while one round is unanswered, newer reads only queue,
 * and the round that confirms them starts when it is answered (or at the
 * next heartbeat). A round started after a read arrived proves leadership at
 * a time after that read, which is all ReadIndex needs; so under load there
 * is one round per round trip, not one per read.
 */
export class ReadOnly {
  private readonly byCtx = new Map<string, PendingRead>();
  private queue: string[] = [];
  /** The ctx of the newest round sent and not yet confirmed ('' if none). */
  private inFlight = '';
  /** The followers that confirmed the last round, fastest first: whom a quorum-only round asks. */
  private lastAckers: NodeId[] = [];

  add(ctx: string, index: Index, from: NodeId): void {
    if (this.byCtx.has(ctx)) return;
    this.byCtx.set(ctx, { ctx, index, from, acks: new Set() });
    this.queue.push(ctx);
  }

  /** Records `from`'s heartbeat ack of `ctx`; returns the acks so far, or undefined for an unknown ctx. */
  ack(ctx: string, from: NodeId): ReadonlySet<NodeId> | undefined {
    const p = this.byCtx.get(ctx);
    if (!p) return undefined;
    p.acks.add(from);
    return p.acks;
  }

  /** A heartbeat round carrying `ctx` was sent. */
  roundSent(ctx: string): void {
    this.inFlight = ctx;
  }

  /** Whether a round was sent that no quorum has confirmed yet: a new read waits for it to end. */
  roundInFlight(): boolean {
    return this.inFlight !== '';
  }

  /** Removes and returns `ctx` and every read queued before it. */
  release(ctx: string): PendingRead[] {
    const at = this.queue.indexOf(ctx);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    this.lastAckers = [...(this.byCtx.get(ctx)?.acks ?? [])];
    const out: PendingRead[] = [];
    for (const c of done) {
      const p = this.byCtx.get(c);
      this.byCtx.delete(c);
      if (p) out.push(p);
    }
    if (!this.byCtx.has(this.inFlight)) this.inFlight = '';
    return out;
  }

  /** The followers that confirmed the last round, in the order their acks arrived. */
  fastest(): readonly NodeId[] {
    return this.lastAckers;
  }

  /** The newest pending ctx, sent with heartbeats so one round confirms all. */
  lastCtx(): string {
    return this.queue[this.queue.length - 1] ?? '';
  }

  size(): number {
    return this.queue.length;
  }

  clear(): void {
    this.byCtx.clear();
    this.queue = [];
    this.inFlight = '';
  }
}
