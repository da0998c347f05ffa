/**
 * Watches served as Server-Sent Events by one replica: each is a stream the
 * node writes SSE frames into as it applies (WatchHub decides what and
 * when); the Worker hands the stream to the client as it is. An open stream
 * keeps the object in memory (it is a request in flight), so SSE suits a few
 * watchers; idle watchers that cost nothing are WebSocket ones (watch-sockets.ts).
 */
import { createdLine, type EtcdWatchContext, etcdWatchLine } from '../api/v3/watch-frames.ts';
import { sseFrame } from '../api/watch-json.ts';
import type { WatchFilter } from '../kv/index.ts';
import type { WatchHub, WatchMessage, WatchSink } from './watch-hub.ts';

/** What a watcher asks for. */
export interface WatchSpec extends WatchFilter {
  /** The first revision wanted (undefined: the next one). */
  readonly startRevision: number | undefined;
  /** Send a progress notification every PROGRESS_EVERY_MS (etcd's progress_notify). */
  readonly progressNotify: boolean;
  /** Stream etcd's gateway lines (`{"result":…}` per line) instead of Server-Sent Events. */
  readonly etcd?: { readonly clusterId: string; readonly clusterPrefix: string } | undefined;
}

/** Bytes a stream may hold unread before its watcher is canceled as too slow (it resumes by revision). */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
/** How often a watcher that asked for them gets a progress notification. */
export const PROGRESS_EVERY_MS = 10_000;

const utf8 = new TextEncoder();

/**
 * Opens `spec` on `hub` as a stream of SSE frames, starting with a comment
 * line so headers and the first bytes leave at once; or, given `etcd` (the
 * gateway's header context), as etcd's gateway lines starting with
 * `created` at store revision `revision`. The caller has checked that the
 * start is not compacted. `onAdded` runs once the watcher is in the hub (the
 * node then drives its catch-up).
 */
export function openSseWatch(
  hub: WatchHub,
  spec: WatchSpec,
  onAdded: () => void,
  etcd?: { readonly ctx: EtcdWatchContext; readonly revision: number },
): ReadableStream<Uint8Array> {
  const frame = etcd ? (m: WatchMessage) => etcdWatchLine(etcd.ctx, m) : sseFrame;
  const ts = new TransformStream<Uint8Array, Uint8Array>(
    undefined,
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
  const writer = ts.writable.getWriter();
  let id: number | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    if (id !== undefined) hub.remove(id);
    if (timer !== undefined) clearInterval(timer);
    // After the frames still waiting for this turn's flush (a canceled message among them).
    queueMicrotask(() => writer.close().catch(() => {}));
  };
  // Frames made in one turn (one applied batch can hold many revisions) leave as one chunk.
  let pending: string[] = [];
  const flush = (): void => {
    const text = pending.join('');
    pending = [];
    writer.write(utf8.encode(text)).catch(close);
  };
  const write = (text: string): void => {
    if (text !== '' && pending.push(text) === 1) queueMicrotask(flush);
  };
  const sink: WatchSink = {
    send(m: WatchMessage): boolean {
      if (closed) return false;
      if (m.kind === 'canceled') {
        write(frame(m));
        close();
        return true;
      }
      if ((writer.desiredSize ?? 0) < -MAX_BACKLOG_BYTES) return false;
      write(frame(m));
      return true;
    },
  };
  write(
    etcd
      ? createdLine(etcd.ctx, etcd.revision)
      : `: watching [${JSON.stringify(spec.start)}, ${JSON.stringify(spec.end ?? null)})\n\n`,
  );
  id = hub.add(spec, spec.startRevision, sink);
  // The client went away: the readable side was canceled.
  writer.closed.catch(close);
  if (id !== undefined) {
    const watcher = id;
    if (spec.progressNotify) timer = setInterval(() => hub.progressFor(watcher), PROGRESS_EVERY_MS);
    onAdded();
  }
  return ts.readable;
}
