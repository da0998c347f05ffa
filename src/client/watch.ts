/**
 * GET /v1/watch as an async iterator that survives disconnects: it remembers
 * the last revision it delivered and, when the stream ends or breaks (a node
 * restart, a watcher canceled as too slow, a network error), reconnects with
 * `Last-Event-ID: <that revision>`, so the store resumes at the next one: no
 * revision is missed or delivered twice. A start below the compaction point
 * (at first or on a resume) ends it with a CompactedError.
 */
import { backoffMs, sleep } from './backoff.ts';
import { CompactedError, DurableRaftError, UnavailableError } from './errors.ts';
import type { Query, Transport } from './http.ts';
import { sseMessages } from './sse.ts';
import { type KeyValue, type KeyValueJson, kvOf } from './types.ts';

/** What to watch: one key, the interval `[key, rangeEnd)`, or every key under `prefix`. */
export type WatchTarget = { readonly key: string; readonly rangeEnd?: string } | { readonly prefix: string };

export type WatchOptions = WatchTarget & {
  /** The first revision wanted (default: the next one after the watch opens). */
  readonly startRevision?: number;
  /** Each event carries the record it replaced. */
  readonly prevKv?: boolean;
  readonly noPut?: boolean;
  readonly noDelete?: boolean;
  /** The server also sends, every 10 s, the revision it has sent everything up to (a response without events). */
  readonly progressNotify?: boolean;
  /** Ends the watch (the iterator returns). */
  readonly signal?: AbortSignal;
};

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /** The key's new record; for a delete only `key` and `modRevision` (the delete's revision) are set. */
  readonly kv: KeyValue;
  /** The record before, when `prevKv` was asked for and there was one. */
  readonly prevKv?: KeyValue;
}

/** Every change of one revision; no events: a progress notification up to `revision`. */
export interface WatchResponse {
  readonly revision: number;
  readonly events: WatchEvent[];
}

interface EventJson {
  type: 'put' | 'delete';
  kv: KeyValueJson;
  prev_kv?: KeyValueJson;
}

export async function* watch(t: Transport, o: WatchOptions): AsyncGenerator<WatchResponse, void, undefined> {
  // The last revision delivered (or known to hold nothing for us): a resume starts after it.
  let last: number | undefined = o.startRevision ? o.startRevision - 1 : undefined;
  for (let attempt = 0; !o.signal?.aborted; attempt++) {
    const conn = new AbortController();
    const stop = (): void => conn.abort(o.signal?.reason);
    o.signal?.addEventListener('abort', stop, { once: true });
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const res = await t.open(
        {
          method: 'GET',
          path: '/v1/watch',
          query: queryOf(o),
          headers: { Accept: 'text/event-stream', ...(last !== undefined ? { 'Last-Event-ID': String(last) } : {}) },
          retry: 'read',
        },
        conn.signal,
      );
      // A watch from "the next revision" starts after the one the node answered at: keep that place.
      last ??= Number(res.headers.get('X-Revision') ?? 0);
      if (!res.body) throw new UnavailableError(0, 'network', 'the watch answered without a body');
      const r = res.body.getReader();
      reader = r;
      // An in-process fetch may not honour the signal: cancel the body too.
      conn.signal.addEventListener('abort', () => void r.cancel().catch(() => {}), { once: true });
      for await (const m of sseMessages(r)) {
        attempt = 0;
        const data = JSON.parse(m.data) as {
          revision: number;
          events?: EventJson[];
          reason?: string;
          compact_revision?: number;
        };
        if (m.event === 'change') {
          if (data.revision <= last) continue; // already delivered (a replica that replays)
          last = data.revision;
          yield { revision: data.revision, events: (data.events ?? []).map(eventOf) };
        } else if (m.event === 'progress') {
          if (data.revision > last) last = data.revision;
          yield { revision: data.revision, events: [] };
        } else if (m.event === 'canceled') {
          if (data.compact_revision !== undefined)
            throw new CompactedError(data.compact_revision, data.reason ?? 'compacted', data);
          break; // canceled for another reason (too slow, node going away): resume
        }
      }
    } catch (e) {
      if (!resumable(e) || o.signal?.aborted) {
        if (o.signal?.aborted) return;
        throw e;
      }
    } finally {
      o.signal?.removeEventListener('abort', stop);
      conn.abort();
      await reader?.cancel().catch(() => {});
    }
    await sleep(backoffMs(attempt));
  }
}

/** Errors a watch retries by itself: no answer, 503, 5xx. Others (400, 401, 403, 410) end it. */
function resumable(e: unknown): boolean {
  if (e instanceof CompactedError) return false;
  if (e instanceof DurableRaftError) return e.status === 0 || e.status >= 500;
  return !(e instanceof SyntaxError);
}

function queryOf(o: WatchOptions): Query {
  const target: Query = Object.hasOwn(o, 'prefix')
    ? { prefix: (o as { prefix: string }).prefix }
    : { key: (o as { key: string }).key, range_end: (o as { rangeEnd?: string }).rangeEnd };
  const filters = [o.noPut ? 'noput' : '', o.noDelete ? 'nodelete' : ''].filter((f) => f !== '');
  return {
    ...target,
    start_revision: o.startRevision || undefined,
    prev_kv: o.prevKv || undefined,
    filter: filters.length > 0 ? filters.join(',') : undefined,
    progress_notify: o.progressNotify || undefined,
  };
}

function eventOf(e: EventJson): WatchEvent {
  return { type: e.type, kv: kvOf(e.kv), ...(e.prev_kv ? { prevKv: kvOf(e.prev_kv) } : {}) };
}
