/**
 * Watches over WebSockets, etcd's watch protocol in JSON, many watches per
 * socket. Sockets are accepted with the Hibernation API, so an idle watcher
 * keeps no object in memory and costs nothing: each socket's attachment holds
 * its principal and its watches, and when the object wakes (for a Raft
 * message, before it applies anything) every watch is added back to the hub
 * from the revision it had reached. An object only hibernates once idle, so
 * that is the store's revision at waking: nothing applies while it sleeps.
 *
 * Client messages: {"create":{key|prefix, range_end?, start_revision?, prev_kv?,
 * filter?, watch_id?}}, {"cancel":{"watch_id":N}}, {"progress":{}}.
 * Server messages: {"watch_id":N,"created":true,"revision":R}, event batches,
 * {"watch_id":N,"canceled":true,"reason":…,"compact_revision"?:C},
 * {"progress":{"revision":R}}, and {"error":{code,message}} for a bad message.
 */
import type { Principal } from '../api/auth.ts';
import { ApiError } from '../api/errors.ts';
import { wsFrame } from '../api/watch-json.ts';
import { watchSpecOf } from '../api/watch-route.ts';
import type { WatchFilter } from '../kv/index.ts';
import type { WatchHub, WatchMessage } from './watch-hub.ts';

/** What a socket remembers across hibernation (at most 2 KiB serialized, the platform's limit). */
interface Attachment {
  readonly principal: Principal;
  readonly watches: readonly { readonly id: number; readonly filter: WatchFilter }[];
}

const MAX_ATTACHMENT_BYTES = 2000;
const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
/** The fields of a create message and their JSON types (a Map: an inherited name is no field). */
const CREATE_FIELDS = new Map<string, 'string' | 'integer' | 'boolean'>([
  ['key', 'string'],
  ['prefix', 'string'],
  ['range_end', 'string'],
  ['filter', 'string'],
  ['start_revision', 'integer'],
  ['watch_id', 'integer'],
  ['prev_kv', 'boolean'],
  ['progress_notify', 'boolean'],
]);

/** The hub's watchers that belong to sockets, and back. */
export class WatchSockets {
  private readonly hub: WatchHub;
  private readonly revision: () => number;
  /** Called when a watch was added that may be behind (the node then drives the hub's catch-up). */
  private readonly added: () => void;
  /** Per socket: its watch ids and the hub's ids for them. */
  private readonly bySocket = new Map<WebSocket, Map<number, number>>();

  constructor(hub: WatchHub, revision: () => number, added: () => void) {
    this.hub = hub;
    this.revision = revision;
    this.added = added;
  }

  /** The attachment a freshly accepted socket starts with. */
  static attachment(principal: Principal): Attachment {
    return { principal, watches: [] };
  }

  /** Adds back the watches of sockets that outlived the object's memory (hibernation). */
  restore(sockets: readonly WebSocket[]): void {
    const from = this.revision() + 1;
    for (const ws of sockets) {
      const a = ws.deserializeAttachment() as Attachment | null;
      for (const w of a?.watches ?? []) this.start(ws, w.id, w.filter, from);
    }
  }

  /** A client message; a bad one gets an error message and changes nothing. */
  onMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    try {
      this.handle(ws, data);
    } catch (e) {
      const error =
        e instanceof ApiError
          ? { code: e.code, message: e.message }
          : { code: 'bad_request', message: 'not a watch message' };
      if (!(e instanceof ApiError)) console.warn('watch socket message failed:', e);
      ws.send(JSON.stringify({ error }));
    }
  }

  /** The socket closed: its watches end. */
  onClose(ws: WebSocket): void {
    for (const hubId of this.bySocket.get(ws)?.values() ?? []) this.hub.remove(hubId);
    this.bySocket.delete(ws);
  }

  private handle(ws: WebSocket, data: string | ArrayBuffer): void {
    if (typeof data !== 'string' || data.length > MAX_MESSAGE_BYTES) throw bad('expected a JSON text message');
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      throw bad('malformed JSON');
    }
    const o = record(msg, 'message');
    const names = Object.keys(o);
    const [name] = names;
    if (names.length !== 1) throw bad('expected exactly one of create, cancel, progress');
    const body = record(o[name as string], name as string);
    if (name === 'create') this.create(ws, body);
    else if (name === 'cancel') this.cancel(ws, body);
    else if (name === 'progress') {
      if (Object.keys(body).length > 0) throw bad('progress takes no fields');
      ws.send(JSON.stringify({ progress: { revision: this.revision() } }));
    } else throw bad('expected exactly one of create, cancel, progress');
  }

  private create(ws: WebSocket, body: Record<string, unknown>): void {
    const a = ws.deserializeAttachment() as Attachment;
    // The same reader as the SSE route's query: each field as its text.
    const q = new Map<string, string>();
    for (const [k, v] of Object.entries(body)) {
      const type = CREATE_FIELDS.get(k);
      if (type === undefined) throw bad(`create.${k}: unknown field`);
      const ok = type === 'integer' ? typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 : typeof v === type;
      if (!ok) throw bad(`create.${k}: expected ${type === 'integer' ? 'a non-negative integer' : `a ${type}`}`);
      q.set(k, String(v));
    }
    // A timer would keep the object from hibernating: on a socket, progress is asked for with {"progress":{}}.
    if (q.get('progress_notify') === 'true')
      throw bad('create.progress_notify: not on a WebSocket; send {"progress":{}} when you want one');
    const watchId = q.has('watch_id') ? Number(q.get('watch_id')) : this.freeId(a);
    q.delete('watch_id');
    if (a.watches.some((w) => w.id === watchId)) throw bad('create.watch_id: already in use');
    const spec = watchSpecOf(q, undefined, a.principal);
    const filter: WatchFilter = {
      start: spec.start,
      end: spec.end,
      prevKv: spec.prevKv,
      noPut: spec.noPut,
      noDelete: spec.noDelete,
    };
    const next: Attachment = { ...a, watches: [...a.watches, { id: watchId, filter }] };
    if (JSON.stringify(next).length > MAX_ATTACHMENT_BYTES)
      throw bad('too many or too large watches on one socket; open another');
    ws.serializeAttachment(next);
    ws.send(JSON.stringify({ watch_id: watchId, created: true, revision: this.revision() }));
    this.start(ws, watchId, filter, spec.startRevision);
  }

  private cancel(ws: WebSocket, body: Record<string, unknown>): void {
    const id = body.watch_id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || Object.keys(body).length !== 1)
      throw bad('cancel: expected {"watch_id": N}');
    const hubId = this.bySocket.get(ws)?.get(id);
    if (hubId === undefined) throw bad(`cancel: no watch ${id}`);
    this.hub.remove(hubId);
    this.forget(ws, id);
    ws.send(JSON.stringify({ watch_id: id, canceled: true, reason: 'canceled by the client' }));
  }

  private start(ws: WebSocket, watchId: number, filter: WatchFilter, from: number | undefined): void {
    const sink = {
      send: (m: WatchMessage): boolean => {
        // A socket that queues more than this unsent is too slow: the watch is canceled and resumes by revision.
        if (m.kind !== 'canceled' && (ws.bufferedAmount ?? 0) > MAX_BACKLOG_BYTES) return false;
        ws.send(wsFrame(watchId, m));
        if (m.kind === 'canceled') this.forget(ws, watchId);
        return true;
      },
    };
    const hubId = this.hub.add(filter, from, sink);
    if (hubId === undefined) return;
    const ids = this.bySocket.get(ws) ?? new Map<number, number>();
    this.bySocket.set(ws, ids);
    ids.set(watchId, hubId);
    this.added();
  }

  /** Drops watch `watchId` from the socket's attachment and maps. */
  private forget(ws: WebSocket, watchId: number): void {
    this.bySocket.get(ws)?.delete(watchId);
    const a = ws.deserializeAttachment() as Attachment | null;
    if (a) ws.serializeAttachment({ ...a, watches: a.watches.filter((w) => w.id !== watchId) });
  }

  private freeId(a: Attachment): number {
    let id = 0;
    while (a.watches.some((w) => w.id === id)) id++;
    return id;
  }
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${field}: expected an object`);
  return v as Record<string, unknown>;
}

function bad(message: string): ApiError {
  return new ApiError(400, 'bad_request', message);
}
