/**
 * What a watcher receives of the history (etcd's watch semantics): the
 * events of its key interval, minus the filtered types, without prev records
 * unless asked, grouped by revision so that a revision's events always travel
 * together (atomic), and in revision order.
 */
import { compareKeys } from './keys.ts';
import type { KvEvent } from './types.ts';

export interface WatchFilter {
  /** The interval watched: [start, end); `end` undefined: every key from `start` on. */
  readonly start: string;
  readonly end: string | undefined;
  readonly prevKv: boolean;
  /** etcd's NOPUT and NODELETE filters. */
  readonly noPut: boolean;
  readonly noDelete: boolean;
}

/** The events of one revision that a watcher receives. */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly KvEvent[];
}

export function watches(f: WatchFilter, e: KvEvent): boolean {
  if (e.type === 'put' ? f.noPut : f.noDelete) return false;
  const k = e.kv.key;
  return compareKeys(k, f.start) >= 0 && (f.end === undefined || compareKeys(k, f.end) < 0);
}

/** `events` (in order) as the batches `f` lets through; revisions with nothing for it are left out. */
export function batchesFor(f: WatchFilter, events: readonly KvEvent[]): WatchBatch[] {
  const out: { revision: number; events: KvEvent[] }[] = [];
  for (const e of events) {
    if (!watches(f, e)) continue;
    const shaped = f.prevKv || e.prev === undefined ? e : { type: e.type, revision: e.revision, seq: e.seq, kv: e.kv };
    const last = out[out.length - 1];
    if (last?.revision === e.revision) last.events.push(shaped);
    else out.push({ revision: e.revision, events: [shaped] });
  }
  return out;
}
