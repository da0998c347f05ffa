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

/**
 * Each event without its prev record, made once and shared by every watcher
 * that did not ask for prev_kv (so an encoder can cache by event, too).
 */
const withoutPrev = new WeakMap<KvEvent, KvEvent>();

function shaped(f: WatchFilter, e: KvEvent): KvEvent {
  if (f.prevKv || e.prev === undefined) return e;
  const cached = withoutPrev.get(e);
  if (cached) return cached;
  const bare: KvEvent = { type: e.type, revision: e.revision, seq: e.seq, kv: e.kv };
  withoutPrev.set(e, bare);
  return bare;
}

/** `events` (in order) as the batches `f` lets through; revisions with nothing for it are left out. */
export function batchesFor(f: WatchFilter, events: readonly KvEvent[]): WatchBatch[] {
  const out: { revision: number; events: KvEvent[] }[] = [];
  for (const e of events) {
    if (!watches(f, e)) continue;
    const shapedEvent = shaped(f, e);
    const last = out[out.length - 1];
    if (last?.revision === e.revision) last.events.push(shapedEvent);
    else out.push({ revision: e.revision, events: [shapedEvent] });
  }
  return out;
}
