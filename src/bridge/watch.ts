/**
 * etcd's Watch service: one bidirectional stream carries many watches. Each
 * watch the client creates is one streamed POST /v3/watch, whose lines are
 * already etcd's WatchResponse messages (the node writes them: created,
 * events, progress, canceled with compact_revision); the bridge gives each
 * its watch id and passes it on. It keeps, per watch, only the revision it
 * has delivered up to, so a connection to the store that ends resumes from
 * the next revision, each revision once; a bridge that restarts loses even
 * that, and etcd's clients resume their watches from their own last
 * revision, as they do after any etcd member goes away.
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import { type CallContext, StreamEnded } from './gateway.ts';
import { type DuplexCall, Status, type StatusObject } from './grpc.ts';
import { FINAL, RETRY_FIRST_MS, RETRY_MAX_MS, sleep } from './retry.ts';
import type { Bridge } from './unary.ts';

/** Watches on one stream, at most (etcd has no such bound; each here holds a connection to the store). */
const MAX_WATCHES = 1024;

type Message = Record<string, unknown>;

interface Watch {
  readonly id: string;
  readonly create: Message;
  readonly stop: AbortController;
  /** The last revision every event of which was delivered (0: none yet; the created line's revision is one). */
  delivered: number;
  /** The last header seen, for answers the bridge makes itself (a cancel). */
  header: Message;
  created: boolean;
  /** Settles once the watch created before this one has answered `created`: etcd's clients match them in order. */
  readonly after: Promise<void>;
  /** Lets the next watch answer `created`. */
  readonly announce: () => void;
}

export function watchService(b: Bridge): { Watch: (call: DuplexCall) => void } {
  return { Watch: (call) => watchStream(b, call) };
}

function watchStream(b: Bridge, call: DuplexCall): void {
  const ctx = callContext(call, b.token);
  const watches = new Map<string, Watch>();
  let nextId = 0n;
  let closed = false;
  let gate: Promise<void> = Promise.resolve();

  // One promise for every watch waiting for the client to read what was written (the stream's buffer is full).
  let drained: Promise<void> | undefined;
  let release = (): void => {};
  const send = (m: Message): void => {
    if (closed || call.write(m) || drained) return;
    drained = new Promise<void>((resolve) => {
      release = resolve;
      call.once('drain', resolve);
    }).finally(() => {
      drained = undefined;
    });
  };
  /** Settles once the client has read what is buffered (or the stream closed): a slow reader slows the store's streams. */
  const writable = (): Promise<void> => drained ?? Promise.resolve();
  const close = (): void => {
    if (closed) return;
    closed = true;
    release();
    for (const w of watches.values()) w.stop.abort();
    watches.clear();
    ctx.abort();
  };
  const fail = (status: StatusObject): void => {
    if (closed) return;
    close();
    call.emit('error', status);
  };

  const create = (r: Message): void => {
    const asked = idOf(r.watch_id);
    if (asked === undefined) {
      fail({ code: Status.INVALID_ARGUMENT, details: 'watch_id: not an integer' });
      return;
    }
    if (watches.size >= MAX_WATCHES) {
      send({
        watch_id: String(asked),
        created: true,
        canceled: true,
        cancel_reason: 'durable-raft bridge: too many watches on one stream',
      });
      return;
    }
    let id: string;
    if (asked !== 0n) {
      id = String(asked);
      if (watches.has(id)) {
        send({
          watch_id: id,
          created: true,
          canceled: true,
          cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
        });
        return;
      }
    } else {
      while (watches.has(String(nextId))) nextId++;
      id = String(nextId++);
    }
    const { watch_id: _id, fragment: _fragment, ...create } = r;
    const after = gate;
    let announce: () => void = () => {};
    gate = new Promise<void>((resolve) => {
      announce = resolve;
    });
    const w: Watch = {
      id,
      create,
      stop: new AbortController(),
      delivered: 0,
      header: {},
      created: false,
      after,
      announce,
    };
    watches.set(id, w);
    void run(b, ctx, w, {
      send: (m) => {
        if (watches.get(id) === w) send({ ...m, watch_id: id });
      },
      writable,
      done: () => {
        if (watches.get(id) === w) watches.delete(id);
      },
    })
      .catch((e: unknown) => fail(internal(e)))
      .finally(w.announce);
  };

  const cancel = (r: Message): void => {
    const id = idOf(r.watch_id);
    const w = id === undefined ? undefined : watches.get(String(id));
    // etcd answers nothing for a watch id it does not have.
    if (w === undefined) return;
    watches.delete(w.id);
    w.stop.abort();
    send({ header: w.header, watch_id: w.id, canceled: true });
  };

  const progress = (): void => {
    b.gateway.call('/v3/watch', { progress_request: {} }, ctx, false).then(
      (a) => {
        if (!a.ok) {
          fail(a.status);
          return;
        }
        const result = a.message.result;
        if (typeof result === 'object' && result !== null) send(result as Message);
      },
      (e: unknown) => fail(internal(e)),
    );
  };

  call.on('data', (m) => {
    if (closed) return;
    try {
      if (isMessage(m.create_request)) create(m.create_request);
      else if (isMessage(m.cancel_request)) cancel(m.cancel_request);
      else if (isMessage(m.progress_request)) progress();
      // An empty request (no member of the oneof set): etcd ignores it.
    } catch (e) {
      fail(internal(e));
    }
  });
  call.on('end', () => {
    close();
    call.end();
  });
  call.on('error', close);
  call.on('cancelled', close);
  call.on('close', close);
}

interface Outlet {
  send(m: Message): void;
  /** Settles when the client can take more. */
  writable(): Promise<void>;
  done(): void;
}

/**
 * Serves one watch until it is canceled (by the client, by the store for
 * compaction, or for a refusal another attempt would meet again) or the
 * stream ends: reconnects to the store after any other end, from the
 * revision after the last one delivered.
 */
async function run(b: Bridge, parent: CallContext, w: Watch, out: Outlet): Promise<void> {
  let wait = RETRY_FIRST_MS;
  const signal = AbortSignal.any([parent.signal, w.stop.signal]);
  const ctx: CallContext = { token: parent.token, deadline: undefined, signal };
  while (!signal.aborted) {
    const body =
      w.delivered > 0
        ? { create_request: { ...w.create, start_revision: String(w.delivered + 1) } }
        : { create_request: w.create };
    try {
      for await (const m of b.gateway.stream('/v3/watch', body, ctx)) {
        if (signal.aborted) return;
        if (isMessage(m.header)) w.header = m.header;
        const revision = Number(isMessage(m.header) ? (m.header.revision ?? 0) : 0);
        if (m.created === true && !m.canceled) {
          // A reconnection's own `created` is not the client's business.
          if (!w.created) {
            w.created = true;
            // Starting now (no start revision), everything up to the created line's revision is behind the watch.
            if (w.delivered === 0 && noStart(w.create)) w.delivered = revision;
            await w.after;
            out.send(m);
            w.announce();
          }
          wait = RETRY_FIRST_MS;
          continue;
        }
        if (m.canceled === true) {
          if (Object.hasOwn(m, 'compact_revision') || !w.created) {
            if (!w.created) await w.after;
            out.send(w.created ? m : { ...m, created: true });
            out.done();
            return;
          }
          // Canceled for another reason (a slow watcher, a replica leaving): resume elsewhere.
          break;
        }
        out.send(m);
        const events = Array.isArray(m.events) ? m.events : [];
        const last = events.reduce<number>((top, e) => Math.max(top, eventRevision(e)), 0);
        // A progress line (no events) says every revision up to its header's was delivered.
        w.delivered = Math.max(w.delivered, events.length === 0 ? revision : last);
        await out.writable();
      }
    } catch (e) {
      if (signal.aborted) return;
      if (!(e instanceof StreamEnded)) throw e;
      if (FINAL.has(e.status.code)) {
        if (!w.created) await w.after;
        out.send({
          header: w.header,
          ...(w.created ? {} : { created: true }),
          canceled: true,
          cancel_reason: e.status.details,
        });
        out.done();
        return;
      }
    }
    await sleep(wait, signal);
    wait = Math.min(RETRY_MAX_MS, wait * 2);
  }
}

function noStart(create: Message): boolean {
  const s = create.start_revision;
  return s === undefined || s === '0' || s === 0;
}

function eventRevision(e: unknown): number {
  if (!isMessage(e) || !isMessage(e.kv)) return 0;
  const r = Number(e.kv.mod_revision ?? 0);
  return Number.isSafeInteger(r) ? r : 0;
}

/** A watch id as the client sent it (a decimal string from the loader; absent is 0). */
function idOf(v: unknown): bigint | undefined {
  if (v === undefined) return 0n;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return BigInt(v);
  return undefined;
}

function isMessage(v: unknown): v is Message {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
