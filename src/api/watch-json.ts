/**
 * How watch messages look on the wire, in the API's JSON (keys and values as
 * everywhere else: `value` or `value_base64`). Server-Sent Events: one
 * message per revision (`id: <revision>`, `event: change`), `event: progress`,
 * and `event: canceled` before the stream ends. WebSocket: etcd's watch
 * protocol in JSON, one object per message. No Hono here: the Durable Object
 * writes these frames itself, so the Worker only pipes them.
 */
import type { KvEvent, WatchBatch } from '../kv/index.ts';
import { kvJson } from './input.ts';

/** What a node sends a watcher (WatchHub's messages, without the hub's types). */
export type WatchOut =
  | { readonly kind: 'batch'; readonly batch: WatchBatch }
  | { readonly kind: 'progress'; readonly revision: number }
  | { readonly kind: 'canceled'; readonly reason: string; readonly compactRevision?: number };

export function eventJson(e: KvEvent): Record<string, unknown> {
  const kv = e.type === 'put' ? kvJson(e.kv) : { key: e.kv.key, mod_revision: e.kv.modRevision };
  return { type: e.type, kv, ...(e.prev ? { prev_kv: kvJson(e.prev) } : {}) };
}

/**
 * An event's JSON text, encoded once however many watchers get it: the hub
 * hands every watcher the same event objects (watch-filter.ts shares the
 * ones without prev records), so the cache is by object.
 */
const eventTexts = new WeakMap<KvEvent, string>();

function eventText(e: KvEvent): string {
  const cached = eventTexts.get(e);
  if (cached !== undefined) return cached;
  const text = JSON.stringify(eventJson(e));
  eventTexts.set(e, text);
  return text;
}

/** `{"revision":N,"events":[…]}` (with `prefix` fields first), from the cached event texts. */
function batchText(b: WatchBatch, prefix = ''): string {
  return `{${prefix}"revision":${b.revision},"events":[${b.events.map(eventText).join(',')}]}`;
}

/** One Server-Sent Events message. */
export function sseFrame(m: WatchOut): string {
  switch (m.kind) {
    case 'batch':
      return `id: ${m.batch.revision}\nevent: change\ndata: ${batchText(m.batch)}\n\n`;
    case 'progress':
      return `event: progress\ndata: ${JSON.stringify({ revision: m.revision })}\n\n`;
    case 'canceled':
      return `event: canceled\ndata: ${JSON.stringify(canceledJson(m))}\n\n`;
  }
}

/** One WebSocket message of etcd's watch protocol (in JSON) for watch `watchId`. */
export function wsFrame(watchId: number, m: WatchOut): string {
  switch (m.kind) {
    case 'batch':
      return batchText(m.batch, `"watch_id":${watchId},`);
    case 'progress':
      return JSON.stringify({ watch_id: watchId, progress: { revision: m.revision } });
    case 'canceled':
      return JSON.stringify({ watch_id: watchId, canceled: true, ...canceledJson(m) });
  }
}

function canceledJson(m: { reason: string; compactRevision?: number }): Record<string, unknown> {
  return { reason: m.reason, ...(m.compactRevision !== undefined ? { compact_revision: m.compactRevision } : {}) };
}
