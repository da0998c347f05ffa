/**
 * The watchers of one replica, after etcd's watchable store. A watcher that
 * has caught up is *synced*: it gets the events of each applied batch right
 * after the batch commits, from the same event, so delivery follows apply
 * order. A new or resumed watcher is *unsynced*: it reads the history in
 * bounded steps until it reaches the applied revision, then joins the synced
 * ones. A watcher whose sink is full is canceled with a reason and resumes by
 * revision, so memory stays bounded and no event is sent twice or skipped.
 * No Cloudflare API here: sinks are what the Durable Object gives it.
 */
import { batchesFor, beforeRevision, type KvEvent, type WatchBatch, type WatchFilter } from '../kv/index.ts';

export type WatchMessage =
  | { readonly kind: 'batch'; readonly batch: WatchBatch }
  | { readonly kind: 'progress'; readonly revision: number }
  | { readonly kind: 'canceled'; readonly reason: string; readonly compactRevision?: number };

/** Where a watcher's messages go. */
export interface WatchSink {
  /** Takes a message; false if its backlog is full (the hub then cancels the watcher). */
  send(m: WatchMessage): boolean;
}

/** What the hub reads: the state machine's history. */
export interface WatchHistory {
  revision(): number;
  compacted(): number;
  events(after: { revision: number; seq: number }, limit: number): KvEvent[];
}

interface Watcher {
  readonly filter: WatchFilter;
  readonly sink: WatchSink;
  /** The first revision not delivered yet. */
  next: number;
  synced: boolean;
}

export class WatchHub {
  private readonly history: WatchHistory;
  private readonly watchers = new Map<number, Watcher>();
  private nextId = 1;

  constructor(history: WatchHistory) {
    this.history = history;
  }

  get size(): number {
    return this.watchers.size;
  }

  /**
   * Starts a watch at `startRevision` (undefined: the next revision). Returns
   * its id, or undefined if it was canceled at once (its start is compacted).
   */
  add(filter: WatchFilter, startRevision: number | undefined, sink: WatchSink): number | undefined {
    const current = this.history.revision();
    const next = startRevision === undefined || startRevision === 0 ? current + 1 : startRevision;
    const compacted = this.history.compacted();
    if (next < compacted) {
      sink.send(compactedMessage(compacted));
      return undefined;
    }
    const id = this.nextId++;
    this.watchers.set(id, { filter, sink, next, synced: next > current });
    return id;
  }

  remove(id: number): void {
    this.watchers.delete(id);
  }

  /** The first revision watcher `id` has not been sent, if it is still watching. */
  position(id: number): number | undefined {
    return this.watchers.get(id)?.next;
  }

  /** The events of one applied batch, oldest first: synced watchers get theirs now. */
  onEvents(events: readonly KvEvent[]): void {
    const last = events[events.length - 1];
    if (last === undefined) return;
    for (const [id, w] of this.watchers) {
      if (!w.synced) continue;
      // A watcher may start past this replica's revision (it resumed here from a replica further
      // ahead): the revisions below its start were delivered before, by that replica.
      const batches = batchesFor(w.filter, events).filter((b) => b.revision >= w.next);
      if (!this.deliver(id, w, batches)) continue;
      w.next = Math.max(w.next, last.revision + 1);
    }
  }

  /**
   * The state jumped ahead (a snapshot installed): the revisions it skipped
   * reached no synced watcher, so every watcher now reads the history from
   * the first revision it has not been sent (the snapshot carries it, or
   * cancels the watcher as compacted).
   */
  resync(): void {
    const current = this.history.revision();
    for (const w of this.watchers.values()) w.synced = w.next > current;
  }

  /**
   * Feeds unsynced watchers from the history, reading at most about
   * `maxEvents` events in all (a revision is never split, so one larger than
   * that is read whole). True if some watcher is still behind.
   */
  catchUp(maxEvents: number): boolean {
    let budget = maxEvents;
    for (const [id, w] of this.watchers) {
      if (w.synced) continue;
      if (budget <= 0) return true;
      const compacted = this.history.compacted();
      if (w.next < compacted) {
        this.cancel(id, w, compactedMessage(compacted));
        continue;
      }
      const events = this.wholeRevisions(w.next, budget);
      budget -= events.length;
      if (!this.deliver(id, w, batchesFor(w.filter, events))) continue;
      const last = events[events.length - 1];
      if (last !== undefined) w.next = last.revision + 1;
      w.synced = w.next > this.history.revision();
    }
    for (const w of this.watchers.values()) if (!w.synced) return true;
    return false;
  }

  /**
   * A progress notification (etcd's) for watcher `id`, if it is synced (an
   * unsynced one has events pending): nothing at or below the revision it
   * names is still to come.
   */
  progressFor(id: number): void {
    const w = this.watchers.get(id);
    if (w?.synced && !w.sink.send({ kind: 'progress', revision: this.history.revision() }))
      this.cancel(id, w, slowMessage());
  }

  /** Cancels every watcher (the node is going away): each resumes elsewhere by revision. */
  closeAll(reason: string): void {
    for (const [id, w] of this.watchers) this.cancel(id, w, { kind: 'canceled', reason });
  }

  /** Events from `from` on, about `limit` of them, ending at a revision's end. */
  private wholeRevisions(from: number, limit: number): KvEvent[] {
    const out = this.history.events(beforeRevision(from), limit);
    const last = out[out.length - 1];
    if (out.length < limit || last === undefined) return out;
    // The page may have cut its last revision: drop it, unless it is the only one, then read it to its end.
    const first = out[0] as KvEvent;
    if (first.revision !== last.revision) return out.filter((e) => e.revision !== last.revision);
    for (let more = this.history.events(last, limit); more[0]?.revision === last.revision; ) {
      const same = more.filter((e) => e.revision === last.revision);
      out.push(...same);
      if (same.length < more.length) break;
      more = this.history.events(same[same.length - 1] as KvEvent, limit);
    }
    return out;
  }

  /** Sends each batch; false (and the watcher canceled) if its sink is full. */
  private deliver(id: number, w: Watcher, batches: readonly WatchBatch[]): boolean {
    for (const batch of batches) {
      if (!w.sink.send({ kind: 'batch', batch })) {
        this.cancel(id, w, slowMessage());
        return false;
      }
      w.next = batch.revision + 1;
    }
    return true;
  }

  private cancel(id: number, w: Watcher, m: WatchMessage): void {
    this.watchers.delete(id);
    w.sink.send(m);
  }
}

function compactedMessage(compacted: number): WatchMessage {
  return {
    kind: 'canceled',
    reason: `the history before revision ${compacted} has been compacted`,
    compactRevision: compacted,
  };
}

function slowMessage(): WatchMessage {
  return { kind: 'canceled', reason: 'the watcher fell too far behind; resume from its last revision + 1' };
}
