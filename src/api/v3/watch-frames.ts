/**
 * A watch as etcd's gateway sends it: one `{"result":{…}}` object per
 * answer: `created` first, then the events of each revision (a put event has
 * no `type`, PUT being the zero value; a delete's `kv` holds only the key and
 * its mod revision), progress, and `canceled` with the `compact_revision`
 * when the history before the start is gone. A streamed POST /v3/watch
 * carries one watch, one answer per line (the `…Line` builders) and no
 * `watch_id`; a WebSocket (src/node/watch-sockets-v3.ts) carries many, one
 * answer per message, each with its watch's id (the `…Result` builders; as
 * every zero value, id 0 is left out). The node writes these itself
 * (watch-streams.ts, watch-sockets-v3.ts), so the Worker pipes them.
 */
import type { KvEvent } from '../../kv/index.ts';
import type { WatchOut } from '../watch-json.ts';
import { kvJson, showKey, showRevision } from './etcd-json.ts';

/** What a line's header says besides the revision: which cluster and member, and the member's term now. */
export interface EtcdWatchContext {
  readonly clusterId: string;
  readonly memberId: string;
  readonly term: () => number;
  /** The replica's compaction point (the store's): etcd reads an event's prev_kv at the revision before it. */
  readonly compacted: () => number;
}

type Result = Record<string, unknown>;

/** The header of an answer at store revision `storeRevision` (none: the header has no revision, as etcd's cancels). */
export function etcdWatchHeader(ctx: EtcdWatchContext, storeRevision?: number): Record<string, string> {
  return {
    cluster_id: ctx.clusterId,
    member_id: ctx.memberId,
    ...(storeRevision === undefined ? {} : { revision: showRevision(storeRevision) }),
    raft_term: String(ctx.term()),
  };
}

/** A result: its header, then its watch's id (left out for 0, as etcd's gateway leaves out zero values), then the rest. */
function result(header: Record<string, string>, watchId: number, rest: Result): Result {
  return watchId === 0 ? { header, ...rest } : { header, watch_id: String(watchId), ...rest };
}

/** Watch `watchId`'s answer with a header at `storeRevision` (none: no revision) and `rest` (canceled, …). */
export function watchResult(
  ctx: EtcdWatchContext,
  storeRevision: number | undefined,
  watchId: number,
  rest: Result,
): Result {
  return result(etcdWatchHeader(ctx, storeRevision), watchId, rest);
}

const line = (r: Result): string => `${JSON.stringify({ result: r })}\n`;

export function createdResult(ctx: EtcdWatchContext, storeRevision: number, watchId = 0): Result {
  return result(etcdWatchHeader(ctx, storeRevision), watchId, { created: true });
}

/** The answer that cancels a watch whose start is below the compaction point (`compacted`, the store's). */
export function compactedResult(ctx: EtcdWatchContext, compacted: number, watchId = 0): Result {
  return result(etcdWatchHeader(ctx), watchId, { canceled: true, compact_revision: showRevision(compacted) });
}

export function createdLine(ctx: EtcdWatchContext, storeRevision: number): string {
  return line(createdResult(ctx, storeRevision));
}

/** The gateway's answer to a watch that starts below the compaction point (`compacted`, the store's). */
export function compactedLines(ctx: EtcdWatchContext, storeRevision: number, compacted: number): string {
  return line(createdResult(ctx, storeRevision)) + line(compactedResult(ctx, compacted));
}

/**
 * An event as etcd sends it. `withPrev` false: etcd reads prev_kv at the
 * revision before the event, and leaves it out when that one is compacted.
 */
export function eventJson(e: KvEvent, withPrev = true): Record<string, unknown> {
  const prev = e.prev && withPrev ? { prev_kv: kvJson(e.prev) } : {};
  if (e.type === 'put') return { kv: kvJson(e.kv), ...prev };
  return { type: 'DELETE', kv: { key: showKey(e.kv.key), mod_revision: showRevision(e.kv.modRevision) }, ...prev };
}

/**
 * The events etcd still has: its compaction keeps, at the compaction
 * revision, each key's latest version but drops a deletion's tombstone, so a
 * delete at that revision is gone from its history.
 */
function kept(ctx: EtcdWatchContext, events: readonly KvEvent[]): readonly KvEvent[] {
  const c = ctx.compacted();
  return events.some((e) => e.type === 'delete' && e.revision <= c)
    ? events.filter((e) => e.type === 'put' || e.revision > c)
    : events;
}

/** Watch `watchId`'s answer for a hub message, or undefined when etcd sends nothing for it. */
export function etcdWatchResult(ctx: EtcdWatchContext, m: WatchOut, watchId = 0): Result | undefined {
  switch (m.kind) {
    case 'batch': {
      const events = kept(ctx, m.batch.events);
      // Nothing left of the revision: etcd sends nothing for it.
      if (events.length === 0) return undefined;
      const shown = events.map((e) => eventJson(e, e.revision > ctx.compacted()));
      return result(etcdWatchHeader(ctx, m.batch.revision), watchId, { events: shown });
    }
    case 'progress':
      return result(etcdWatchHeader(ctx, m.revision), watchId, {});
    case 'canceled':
      return result(etcdWatchHeader(ctx), watchId, {
        canceled: true,
        ...(m.compactRevision !== undefined ? { compact_revision: showRevision(m.compactRevision) } : {}),
        ...(m.compactRevision === undefined ? { cancel_reason: m.reason } : {}),
      });
  }
}

export function etcdWatchLine(ctx: EtcdWatchContext, m: WatchOut): string {
  const r = etcdWatchResult(ctx, m);
  return r === undefined ? '' : line(r);
}
