/**
 * etcd's WatchCreateRequest as the store reads it, for both faces of the
 * v3 watch: the streamed POST /v3/watch (watch-route.ts) and the WebSocket
 * (src/node/watch-sockets-v3.ts). Pure: no Hono, no Durable Object.
 */
import type { WatchSpec } from '../../node/watch-streams.ts';
import { ETCD, EtcdError } from './etcd-errors.ts';
import { boolField, bytesField, intField, keyOf, listField } from './etcd-json.ts';
import { intervalOf } from './range.ts';

const FILTERS = ['NOPUT', 'NODELETE'] as const;

/** A create request read: what to watch, and the start revision as etcd's client gave it. */
export interface EtcdWatchCreate {
  readonly spec: Omit<WatchSpec, 'etcd'>;
  /** etcd's start_revision (0: from the next revision). */
  readonly etcdStart: number;
}

/**
 * A WatchCreateRequest. etcd's start_revision counts one more than the
 * store's, and its revision 1 (the empty store) has no events: any start at
 * or below it is the store's first revision; 0 (or absent) is the next one.
 */
export function watchCreateOf(r: Record<string, unknown>): EtcdWatchCreate {
  const key = keyOf(bytesField(r, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const end = bytesField(r, 'range_end');
  const { start, end: stop } = intervalOf({
    key,
    rangeEnd: end.byteLength === 0 ? undefined : keyOf(end, 'range_end'),
  });
  const rev = intField(r, 'start_revision');
  const filters = { noPut: false, noDelete: false };
  for (const f of listField(r, 'filters')) {
    const name = typeof f === 'number' ? FILTERS[f] : FILTERS.find((x) => x === f);
    if (name === 'NOPUT') filters.noPut = true;
    else if (name === 'NODELETE') filters.noDelete = true;
    else throw EtcdError.badJson(`filters: unknown value ${JSON.stringify(f)}`);
  }
  return {
    spec: {
      start,
      end: stop,
      startRevision: rev <= 0 ? undefined : Math.max(1, rev - 1),
      prevKv: boolField(r, 'prev_kv'),
      progressNotify: boolField(r, 'progress_notify'),
      ...filters,
    },
    etcdStart: rev,
  };
}

/**
 * Whether a watch from etcd's revision `etcdStart` starts below the store's
 * compaction point `compacted`: its start is the store's `etcdStart - 1`
 * (etcd's revision 1 is the store's 0, which a compaction to 1 passed).
 */
export function startCompacted(etcdStart: number, compacted: number): boolean {
  return etcdStart > 0 && etcdStart - 1 < compacted;
}
