/**
 * A watch as etcd's gateway streams it: one JSON object per line,
 * `{"result":{…}}`: `created` first, then the events of each revision
 * (a put event has no `type`, PUT being the zero value; a delete's `kv`
 * holds only the key and its mod revision), progress, and `canceled` with
 * the `compact_revision` when the history before the start is gone. The
 * node writes these lines itself (watch-streams.ts), so the Worker pipes them.
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

function head(ctx: EtcdWatchContext, storeRevision?: number): Record<string, string> {
  return {
    cluster_id: ctx.clusterId,
    member_id: ctx.memberId,
    ...(storeRevision === undefined ? {} : { revision: showRevision(storeRevision) }),
    raft_term: String(ctx.term()),
  };
}

const line = (result: Record<string, unknown>): string => `${JSON.stringify({ result })}\n`;

export function createdLine(ctx: EtcdWatchContext, storeRevision: number): string {
  return line({ header: head(ctx, storeRevision), created: true });
}

/** The gateway's answer to a watch that starts below the compaction point (`compacted`, the store's). */
export function compactedLines(ctx: EtcdWatchContext, storeRevision: number, compacted: number): string {
  return (
    createdLine(ctx, storeRevision) +
    line({ header: head(ctx), canceled: true, compact_revision: showRevision(compacted) })
  );
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

export function etcdWatchLine(ctx: EtcdWatchContext, m: WatchOut): string {
  switch (m.kind) {
    case 'batch': {
      const events = kept(ctx, m.batch.events);
      // Nothing left of the revision: etcd sends nothing for it.
      if (events.length === 0) return '';
      const shown = events.map((e) => eventJson(e, e.revision > ctx.compacted()));
      return line({ header: head(ctx, m.batch.revision), events: shown });
    }
    case 'progress':
      return line({ header: head(ctx, m.revision) });
    case 'canceled':
      return line({
        header: head(ctx),
        canceled: true,
        ...(m.compactRevision !== undefined ? { compact_revision: showRevision(m.compactRevision) } : {}),
        ...(m.compactRevision === undefined ? { cancel_reason: m.reason } : {}),
      });
  }
}
