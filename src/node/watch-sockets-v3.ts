/**
 * etcd's watch protocol on a WebSocket, as etcd's gateway serves GET
 * /v3/watch (grpc-gateway's websocket proxy): each message in is one
 * WatchRequest in protobuf JSON, each message out one WatchResponse as
 * `{"result":{…}}`, the same objects a streamed POST /v3/watch writes
 * (watch-frames.ts) plus the watch's id:
 * - `{"create_request":{key, range_end?, start_revision?, filters?,
 *   prev_kv?, watch_id?}}` answers `created` at the replica's revision, and
 *   the watch's events follow. The watch id is the client's, or the next of
 *   0, 1, 2, … (as etcd assigns them, never reused on the socket). A start
 *   below the compaction point answers `created`, then `canceled` with the
 *   `compact_revision`. A refusal is `created` and `canceled` at once, with
 *   etcd's `cancel_reason`: a key range outside the token's prefixes
 *   ("etcdserver: permission denied"), an id in use (watch id -1, "mvcc:
 *   duplicate watch ID provided on the WatchStream"), or a socket whose
 *   attachment has no room for one more watch (SOCKET_FULL_REASON: open
 *   another socket for it). `progress_notify` is taken and not acted on (a
 *   timer would keep the object from hibernating): ask with a
 *   progress_request; `fragment` too (answers are never split).
 * - `{"cancel_request":{"watch_id":N}}` answers `canceled` for N, and
 *   nothing if the socket has no watch N (as etcd).
 * - `{"progress_request":{}}` answers a header-only result with watch id
 *   -1 whose revision every watch of the socket has been sent all of.
 * - A message that is not a WatchRequest (or sets more than one of them)
 *   answers `{"error":{"grpc_code","http_code","message","http_status"}}`
 *   and changes nothing; an empty one is ignored, as etcd does.
 *
 * The attachment keeps each watch in a few bytes (Entry), so a socket holds
 * some dozens of watches of short keys.
 */
import type { Principal } from '../api/auth.ts';
import { intervalAllowed } from '../api/auth.ts';
import { ETCD, EtcdError, GRPC } from '../api/v3/etcd-errors.ts';
import { intField, messageField, parseMessage } from '../api/v3/etcd-json.ts';
import {
  compactedResult,
  createdResult,
  type EtcdWatchContext,
  etcdWatchResult,
  watchResult,
} from '../api/v3/watch-frames.ts';
import { startCompacted, watchCreateOf } from '../api/v3/watch-request.ts';
import { prefixEnd, type WatchFilter } from '../kv/index.ts';
import type { SocketProtocol, WatchSockets } from './watch-sockets.ts';

/** The ids every answer's header carries. */
export interface EtcdIds {
  readonly clusterId: string;
  readonly memberId: string;
}

/**
 * A watch in the attachment: [watch id, start key, end, flags]. End: 0 the
 * one key `start`, 1 every key under the prefix `start`, null every key
 * from `start` on, else the end key. Flags (left out when 0): 1 prev_kv,
 * 2 NOPUT, 4 NODELETE.
 */
type Entry = readonly [number, string, 0 | 1 | string | null, number?];

export interface V3Attachment {
  readonly principal: Principal;
  /** c: the cluster id, m: this member's id, n: the next watch id to assign. */
  readonly v3: { readonly c: string; readonly m: string; readonly n: number };
  readonly w: readonly Entry[];
}

/** The cancel_reason of a watch refused because the socket's attachment is full (the bridge matches it). */
export const SOCKET_FULL_REASON = 'durable-raft: no room for another watch on this socket; open another socket';
const DUPLICATE_ID_REASON = 'mvcc: duplicate watch ID provided on the WatchStream';
/** etcd's cancel_reason for a watch of keys the caller may not read (ErrGRPCPermissionDenied). */
const PERMISSION_DENIED_REASON = 'etcdserver: permission denied';
const REQUESTS = ['create_request', 'cancel_request', 'progress_request'] as const;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Result = Record<string, unknown>;
const text = (r: Result): string => JSON.stringify({ result: r });

function context(host: WatchSockets, a: V3Attachment): EtcdWatchContext {
  return {
    clusterId: a.v3.c,
    memberId: a.v3.m,
    term: () => host.node.term(),
    compacted: () => host.node.compacted(),
  };
}

export const v3Protocol: SocketProtocol<V3Attachment> & {
  attachment(principal: Principal, ids: EtcdIds): V3Attachment;
} = {
  attachment: (principal, ids) => ({ principal, v3: { c: ids.clusterId, m: ids.memberId, n: 0 }, w: [] }),
  watches: (a) => a.w.map((e) => ({ id: e[0], filter: filterOf(e) })),
  without: (a, id) => ({ ...a, w: a.w.filter((e) => e[0] !== id) }),
  frame(host, a, id) {
    const ctx = context(host, a);
    return (m) => {
      const r = etcdWatchResult(ctx, m, id);
      return r === undefined ? '' : text(r);
    };
  },
  error(e) {
    if (e instanceof EtcdError) return JSON.stringify(e.streamBody());
    console.warn('watch socket message failed:', e);
    return JSON.stringify(new EtcdError(GRPC.internal, 'durable-raft: the watch request failed').streamBody());
  },
  tooLarge: JSON.stringify(ETCD.requestTooLarge().streamBody()),
  handle(host, ws, a, data) {
    let t: string;
    try {
      t = typeof data === 'string' ? data : strictUtf8.decode(data);
    } catch {
      throw EtcdError.badJson('malformed JSON request body');
    }
    const m = parseMessage(t);
    const set = REQUESTS.filter((name) => Object.hasOwn(m, name) && m[name] !== null);
    if (set.length > 1) throw EtcdError.badJson(`expected one of ${REQUESTS.join(', ')}, not ${set.join(' and ')}`);
    const [name] = set;
    if (name === 'create_request') create(host, ws, a, messageField(m, name));
    else if (name === 'cancel_request') cancel(host, ws, a, messageField(m, name));
    else if (name === 'progress_request') {
      messageField(m, name);
      ws.send(text(watchResult(context(host, a), host.sentUpTo(ws), -1, {})));
    }
    // None set: etcd ignores an empty request.
  },
};

function create(host: WatchSockets, ws: WebSocket, a: V3Attachment, r: Record<string, unknown>): void {
  const { spec, etcdStart } = watchCreateOf(r);
  const asked = intField(r, 'watch_id');
  const ctx = context(host, a);
  const revision = host.node.revision();
  /** `created`, with the rest of the answer (a refusal's cancel). */
  const created = (id: number, rest: Result = {}): void =>
    ws.send(text({ ...createdResult(ctx, revision, id), ...rest }));
  const refused = (reason: string): Result => ({ canceled: true, cancel_reason: reason });
  if (!intervalAllowed(a.principal, spec.start, spec.end)) {
    created(asked, refused(PERMISSION_DENIED_REASON));
    return;
  }
  const inUse = (id: number): boolean => a.w.some((e) => e[0] === id);
  let id = asked;
  let next = a.v3.n;
  if (asked === 0) {
    for (id = next; inUse(id); ) id++;
    next = id + 1;
  } else if (inUse(asked)) {
    created(-1, refused(DUPLICATE_ID_REASON));
    return;
  }
  const v3 = { ...a.v3, n: next };
  const filter: WatchFilter = {
    start: spec.start,
    end: spec.end,
    prevKv: spec.prevKv,
    noPut: spec.noPut,
    noDelete: spec.noDelete,
  };
  const compacted = host.node.compacted();
  if (startCompacted(etcdStart, compacted)) {
    // Created, then canceled at once: the id is spent, as etcd's would be.
    host.save(ws, { ...a, v3 });
    created(id);
    ws.send(text(compactedResult(ctx, compacted, id)));
  } else if (host.save(ws, { ...a, v3, w: [...a.w, entryOf(id, filter)] })) {
    created(id);
    host.start(ws, id, filter, spec.startRevision);
  } else created(id, refused(SOCKET_FULL_REASON));
}

function cancel(host: WatchSockets, ws: WebSocket, a: V3Attachment, r: Record<string, unknown>): void {
  const id = intField(r, 'watch_id');
  // etcd answers nothing for a watch id it does not have.
  if (!host.stop(ws, id)) return;
  ws.send(text(watchResult(context(host, a), host.node.revision(), id, { canceled: true })));
}

function entryOf(id: number, f: WatchFilter): Entry {
  const end = f.end === undefined ? null : f.end === `${f.start}\u0000` ? 0 : f.end === prefixEnd(f.start) ? 1 : f.end;
  const flags = (f.prevKv ? 1 : 0) | (f.noPut ? 2 : 0) | (f.noDelete ? 4 : 0);
  return flags === 0 ? [id, f.start, end] : [id, f.start, end, flags];
}

function filterOf([, start, end, flags = 0]: Entry): WatchFilter {
  return {
    start,
    end: end === null ? undefined : end === 0 ? `${start}\u0000` : end === 1 ? prefixEnd(start) : end,
    prevKv: (flags & 1) !== 0,
    noPut: (flags & 2) !== 0,
    noDelete: (flags & 4) !== 0,
  };
}
