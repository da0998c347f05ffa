/**
 * Watches over WebSockets, many watches per socket, in one of two
 * protocols: /v1's (GET /v1/watch, below) or etcd's gateway's (GET
 * /v3/watch, watch-sockets-v3.ts); the attachment says which. Sockets are
 * accepted with the Hibernation API, so an idle watcher keeps no object in
 * memory and costs nothing: each socket's attachment holds its principal and
 * its watches, and when the object wakes (for a Raft message, before it
 * applies anything) every watch is added back to the hub from the revision
 * it had reached. An object only hibernates once idle, so that is the
 * store's revision at waking: nothing applies while it sleeps. What the two
 * protocols share is here: the hub's watchers of each socket, the
 * attachment's size limit, a slow socket's watches canceled, restore.
 *
 * /v1's messages in: {"create":{key|prefix, range_end?, start_revision?,
 * prev_kv?, filter?, watch_id?}}, {"cancel":{"watch_id":N}}, {"progress":{}}.
 * Out: {"watch_id":N,"created":true,"revision":R}, event batches,
 * {"watch_id":N,"canceled":true,"reason":…,"compact_revision"?:C},
 * {"progress":{"revision":R}}, and {"error":{code,message}} for a bad message.
 */
import type { Principal } from '../api/auth.ts';
import { ApiError } from '../api/errors.ts';
import { wsFrame } from '../api/watch-json.ts';
import { watchSpecOf } from '../api/watch-route.ts';
import type { WatchFilter } from '../kv/index.ts';
import type { WatchHub, WatchMessage } from './watch-hub.ts';
import { type EtcdIds, type V3Attachment, v3Protocol } from './watch-sockets-v3.ts';

/** Which protocol a watch socket speaks: /v1's JSON, or etcd's gateway messages (with its header's cluster). */
export type WatchSocketProtocol =
  | { readonly kind: 'v1' }
  | { readonly kind: 'v3'; readonly clusterId: string; readonly clusterPrefix: string };

const PROTOCOL_HEADER = 'x-watch-protocol';
const ETCD_HEADER = 'x-watch-etcd';

/** The headers that tell the node which protocol a forwarded upgrade speaks. */
export function watchProtocolHeaders(p: WatchSocketProtocol): Record<string, string> {
  if (p.kind === 'v1') return { [PROTOCOL_HEADER]: 'v1' };
  return {
    [PROTOCOL_HEADER]: 'v3',
    [ETCD_HEADER]: JSON.stringify({ clusterId: p.clusterId, clusterPrefix: p.clusterPrefix }),
  };
}

/** The protocol the Worker's headers name (none: /v1), or undefined if they are not valid. */
export function watchProtocolOf(headers: Headers): WatchSocketProtocol | undefined {
  const name = headers.get(PROTOCOL_HEADER);
  if (name === null || name === 'v1') return { kind: 'v1' };
  if (name !== 'v3') return undefined;
  try {
    const v = JSON.parse(headers.get(ETCD_HEADER) ?? '') as Record<string, unknown>;
    if (typeof v.clusterId !== 'string' || typeof v.clusterPrefix !== 'string') return undefined;
    return { kind: 'v3', clusterId: v.clusterId, clusterPrefix: v.clusterPrefix };
  } catch {
    return undefined;
  }
}

interface V1Attachment {
  readonly principal: Principal;
  readonly watches: readonly { readonly id: number; readonly filter: WatchFilter }[];
}

/** What a socket remembers across hibernation (at most 2 KiB serialized, the platform's limit). */
export type Attachment = V1Attachment | V3Attachment;

/** What a socket's protocol reads from the node it runs on. */
export interface SocketNode {
  /** The store's revision this replica has applied. */
  revision(): number;
  compacted(): number;
  /** This replica's Raft term (etcd's header raft_term). */
  term(): number;
}

/** One protocol: reading its messages, writing its frames, keeping its watches in the attachment. */
export interface SocketProtocol<A extends Attachment> {
  /** The watches `a` holds, by the socket's watch id. */
  watches(a: A): readonly { readonly id: number; readonly filter: WatchFilter }[];
  /** `a` without watch `id`. */
  without(a: A, id: number): A;
  /** How watch `id`'s hub messages are written ('' for nothing). */
  frame(host: WatchSockets, a: A, id: number): (m: WatchMessage) => string;
  /** A client message; it throws what `error` turns into the answer to a bad message. */
  handle(host: WatchSockets, ws: WebSocket, a: A, data: string | ArrayBuffer): void;
  error(e: unknown): string;
  /** The answer to a message over MAX_MESSAGE_BYTES. */
  readonly tooLarge: string;
}

/**
 * An attachment's JSON in UTF-8 bytes, at most: the platform allows 2,048
 * bytes of its own serialization (V8's), which for these plain objects is
 * never larger than their JSON.
 */
const MAX_ATTACHMENT_BYTES = 2000;
/** A client message, at most: a text one's length (in UTF-16 units), a binary one's bytes. */
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

const utf8 = new TextEncoder();

/** The hub's watchers that belong to sockets, and back. */
export class WatchSockets {
  private readonly hub: WatchHub;
  readonly node: SocketNode;
  /** Called when a watch was added that may be behind (the node then drives the hub's catch-up). */
  private readonly added: () => void;
  /** Per socket: its watch ids and the hub's ids for them. */
  private readonly bySocket = new Map<WebSocket, Map<number, number>>();

  constructor(hub: WatchHub, node: SocketNode, added: () => void) {
    this.hub = hub;
    this.node = node;
    this.added = added;
  }

  /** The attachment a freshly accepted socket starts with: /v1's, or etcd's gateway's with its header's ids. */
  static attachment(principal: Principal, etcd?: EtcdIds): Attachment {
    return etcd ? v3Protocol.attachment(principal, etcd) : { principal, watches: [] };
  }

  /** Adds back the watches of sockets that outlived the object's memory (hibernation). */
  restore(sockets: readonly WebSocket[]): void {
    const from = this.node.revision() + 1;
    for (const ws of sockets) {
      const a = attachmentOf(ws);
      if (a) for (const w of protocolOf(a).watches(a)) this.start(ws, w.id, w.filter, from);
    }
  }

  /** A client message; a bad one gets an error message and changes nothing. */
  onMessage(ws: WebSocket, data: string | ArrayBuffer): void {
    const a = attachmentOf(ws);
    if (!a) return;
    const protocol = protocolOf(a);
    if ((typeof data === 'string' ? data.length : data.byteLength) > MAX_MESSAGE_BYTES) {
      ws.send(protocol.tooLarge);
      return;
    }
    try {
      protocol.handle(this, ws, a, data);
    } catch (e) {
      ws.send(protocol.error(e));
    }
  }

  /** The socket closed: its watches end. */
  onClose(ws: WebSocket): void {
    for (const hubId of this.bySocket.get(ws)?.values() ?? []) this.hub.remove(hubId);
    this.bySocket.delete(ws);
  }

  // ---- for the protocols ----

  /** Saves `a` as the socket's attachment if it fits the platform's limit; false (nothing saved) if not. */
  save(ws: WebSocket, a: Attachment): boolean {
    if (utf8.encode(JSON.stringify(a)).byteLength > MAX_ATTACHMENT_BYTES) return false;
    ws.serializeAttachment(a);
    return true;
  }

  /** Starts watch `watchId` (already in the attachment) at store revision `from` (undefined: the next). */
  start(ws: WebSocket, watchId: number, filter: WatchFilter, from: number | undefined): void {
    const a = attachmentOf(ws);
    if (!a) return;
    const frame = protocolOf(a).frame(this, a, watchId);
    const sink = {
      send: (m: WatchMessage): boolean => {
        // A socket that queues more than this unsent is too slow: the watch is canceled and resumes by revision.
        if (m.kind !== 'canceled' && (ws.bufferedAmount ?? 0) > MAX_BACKLOG_BYTES) return false;
        const text = frame(m);
        if (text !== '') ws.send(text);
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

  /** Ends watch `watchId` of the socket; false if the socket has no such watch. */
  stop(ws: WebSocket, watchId: number): boolean {
    const hubId = this.bySocket.get(ws)?.get(watchId);
    if (hubId === undefined) return false;
    this.hub.remove(hubId);
    this.forget(ws, watchId);
    return true;
  }

  /**
   * The last revision every watch of the socket has been sent all of (the
   * revision now if it has none): nothing at or below it is still to come.
   */
  sentUpTo(ws: WebSocket): number {
    let upTo = this.node.revision();
    for (const hubId of this.bySocket.get(ws)?.values() ?? []) {
      const next = this.hub.position(hubId);
      if (next !== undefined) upTo = Math.min(upTo, next - 1);
    }
    return upTo;
  }

  /** Drops watch `watchId` from the socket's attachment and maps. */
  private forget(ws: WebSocket, watchId: number): void {
    this.bySocket.get(ws)?.delete(watchId);
    const a = attachmentOf(ws);
    if (a) ws.serializeAttachment(protocolOf(a).without(a, watchId));
  }
}

function attachmentOf(ws: WebSocket): Attachment | null {
  return ws.deserializeAttachment() as Attachment | null;
}

function protocolOf(a: Attachment): SocketProtocol<Attachment> {
  return (Object.hasOwn(a, 'v3') ? v3Protocol : v1Protocol) as SocketProtocol<Attachment>;
}

/** /v1's protocol (the header comment above). */
const v1Protocol: SocketProtocol<V1Attachment> = {
  watches: (a) => a.watches,
  without: (a, id) => ({ ...a, watches: a.watches.filter((w) => w.id !== id) }),
  frame: (_host, _a, id) => (m) => wsFrame(id, m),
  error(e) {
    if (!(e instanceof ApiError)) console.warn('watch socket message failed:', e);
    const error =
      e instanceof ApiError
        ? { code: e.code, message: e.message }
        : { code: 'bad_request', message: 'not a watch message' };
    return JSON.stringify({ error });
  },
  tooLarge: JSON.stringify({ error: { code: 'bad_request', message: 'expected a JSON text message' } }),
  handle(host, ws, a, data) {
    if (typeof data !== 'string') throw bad('expected a JSON text message');
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
    if (name === 'create') v1Create(host, ws, a, body);
    else if (name === 'cancel') v1Cancel(host, ws, body);
    else if (name === 'progress') {
      if (Object.keys(body).length > 0) throw bad('progress takes no fields');
      ws.send(JSON.stringify({ progress: { revision: host.node.revision() } }));
    } else throw bad('expected exactly one of create, cancel, progress');
  },
};

function v1Create(host: WatchSockets, ws: WebSocket, a: V1Attachment, body: Record<string, unknown>): void {
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
  const watchId = q.has('watch_id') ? Number(q.get('watch_id')) : freeId(a);
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
  if (!host.save(ws, { ...a, watches: [...a.watches, { id: watchId, filter }] }))
    throw bad('too many or too large watches on one socket; open another');
  ws.send(JSON.stringify({ watch_id: watchId, created: true, revision: host.node.revision() }));
  host.start(ws, watchId, filter, spec.startRevision);
}

function v1Cancel(host: WatchSockets, ws: WebSocket, body: Record<string, unknown>): void {
  const id = body.watch_id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || Object.keys(body).length !== 1)
    throw bad('cancel: expected {"watch_id": N}');
  if (!host.stop(ws, id)) throw bad(`cancel: no watch ${id}`);
  ws.send(JSON.stringify({ watch_id: id, canceled: true, reason: 'canceled by the client' }));
}

function freeId(a: V1Attachment): number {
  let id = 0;
  while (a.watches.some((w) => w.id === id)) id++;
  return id;
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${field}: expected an object`);
  return v as Record<string, unknown>;
}

function bad(message: string): ApiError {
  return new ApiError(400, 'bad_request', message);
}
