import type { Index } from './types.ts';

/**
 * A bounded window of AppendEntries in flight to one follower, by count and
 * by bytes. Entries are the last index each message carried, in send order.
 * Invariant: indexes are strictly increasing.
 */
export class Inflights {
  private readonly lasts: Index[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  private readonly maxCount: number;
  private readonly maxBytes: number;

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  add(last: Index, size: number): void {
    this.lasts.push(last);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Frees every message whose last index is at most `index` (acknowledged). */
  freeLE(index: Index): void {
    let n = 0;
    while (n < this.lasts.length && (this.lasts[n] ?? 0) <= index) {
      this.bytes -= this.sizes[n] ?? 0;
      n++;
    }
    if (n > 0) {
      this.lasts.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  /** Frees the oldest message: a heartbeat reply proves the follower is alive though an append reply was lost. */
  freeFirstOne(): void {
    if (this.lasts.length === 0) return;
    this.bytes -= this.sizes[0] ?? 0;
    this.lasts.shift();
    this.sizes.shift();
  }

  full(): boolean {
    return this.lasts.length >= this.maxCount || this.bytes >= this.maxBytes;
  }

  count(): number {
    return this.lasts.length;
  }

  reset(): void {
    this.lasts.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

/**
 * How the leader replicates to one follower (etcd's tracker.Progress):
 * - `probe`: one AppendEntries at a time until the follower's match is found;
 * - `replicate`: pipelined, `next` advanced optimistically, bounded by inflights;
 * - `snapshot`: waiting for an InstallSnapshot to land.
 * Invariant: match < next.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match: Index = 0;
  next: Index;
  state: ProgressState = 'probe';
  /** In probe state: a message is out and we wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** The snapshot index being installed, in snapshot state. */
  pendingSnapshot: Index = 0;
  /** Leader ticks spent in snapshot state, to retry a snapshot that was lost. */
  snapshotTicks = 0;
  /** The highest commit index this follower was told (bounded by what each message carried). */
  sentCommit: Index = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The leader's tick (Raft.leaderTicks) when this follower last answered. */
  lastHeardTick = 0;
  /** The leader's tick when it last sent this follower an AppendEntries (-1: never). */
  lastAppendTick = -1;
  /** The leader's tick when it last sent this follower anything that resets its election timer (-1: never). */
  lastSentTick = -1;
  /**
   * Quorum-first replication: the last append went to this follower as a
   * spare (entries it had been held back from), so while it is in flight it
   * does not count towards the followers that commit new entries.
   */
  spare = false;
  readonly inflights: Inflights;

  constructor(next: Index, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    // After a snapshot, probing resumes just past it.
    const from = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.reset('probe');
    this.next = from;
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(index: Index): void {
    this.reset('snapshot');
    this.pendingSnapshot = index;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  /** A successful AppendEntries reply up to `n`. Returns whether match moved. */
  maybeUpdate(n: Index): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of `rejected` (the prevIndex the follower refused), with
   * `probeFrom` the leader's best guess of where the logs agree. Returns false
   * when the reply is stale and must be ignored.
   */
  maybeDecrTo(rejected: Index, probeFrom: Index): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold further AppendEntries to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  /** Record that `count` entries up to `last` (of `bytes` total) were just sent. */
  sentEntries(last: Index, count: number, bytes: number): void {
    if (this.state === 'replicate') {
      // An empty append only carries the commit index: it takes no window slot.
      if (count === 0) return;
      this.next = last + 1;
      this.inflights.add(last, bytes);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }
}
