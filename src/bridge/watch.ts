/**
 * etcd's Watch service: one bidirectional stream carries many watches, and
 * the bridge carries them to the store on one WebSocket (GET /v3/watch,
 * etcd's gateway protocol: watch-socket.ts), opened at the stream's first
 * create; when the store says a socket has no room for another watch, the
 * stream opens another for the watches that follow. The client's watch ids
 * stay the client's (or are assigned here, 0 upward); each socket has ids
 * of its own.
 *
 * What the stream guarantees, as etcd does: `created` answers come in the
 * order of the creates (a watch's events wait behind its `created`, held
 * within a bound; past it they are dropped and the watch is created again
 * from where it was once its turn comes); per watch, the revision it has
 * taken up to (`delivered`), so a socket that reconnects creates it again
 * from the next revision and each revision reaches the client once;
 * compaction's cancel is passed on. A client that does not read holds
 * messages in gRPC's buffer; past MAX_UNREAD_BYTES the stream drops its
 * sockets (a WebSocket cannot be paused) and opens them again, from each
 * watch's next revision, once the client has read what is buffered.
 * progress_notify is the bridge's (the store keeps no timer, so it can
 * hibernate): every PROGRESS_NOTIFY_MS each such watch that had no events
 * meanwhile gets a header-only answer at a revision its socket says every
 * watch on it has been sent all of. A progress_request is answered with the
 * lowest of every socket's such revision (with no socket, by a POST).
 *
 * The bridge holds no state that matters: one that restarts loses only
 * these streams, and etcd's clients resume their watches from their own
 * last revision, as they do after any etcd member goes away.
 */
import { callContext } from './context.ts';
import { internal } from './errors.ts';
import type { CallContext } from './gateway.ts';
import { type DuplexCall, Status, type StatusObject } from './grpc.ts';
import type { Bridge } from './unary.ts';
import { type Message, type SocketOwner, type SocketWatch, StoreSocket, startOf } from './watch-socket.ts';

/** Watches on one stream, at most (etcd has no such bound). */
const MAX_WATCHES = 1024;
/** etcd's default progress notify interval (--experimental-watch-progress-notify-interval). */
export const PROGRESS_NOTIFY_MS = 10 * 60_000;
/** Bytes (as JSON) given to gRPC past what the client has read, before the stream stops taking from the store. */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024;
/** Bytes (as JSON) of events held for watches whose `created` waits for an earlier watch's. */
const MAX_HELD_BYTES = 1024 * 1024;
const DUPLICATE_ID_REASON = 'mvcc: duplicate watch ID provided on the WatchStream';

/** A place in the order of `created` answers: its watch, and the answer once there is one. */
interface Slot {
  readonly watch: Watch | undefined;
  answer: Message[] | undefined;
}

interface Watch extends SocketWatch {
  /** The client's id. */
  readonly id: string;
  readonly progressNotify: boolean;
  readonly slot: Slot;
  /** The last revision given to gRPC (`delivered` also counts what is held). */
  written: number;
  /** The last header seen, for answers the bridge makes itself (a cancel). */
  header: Message;
  /** The store has created it (once: a reconnection's `created` is not the client's business). */
  created: boolean;
  /** The client has its `created`: its messages go straight out. */
  announced: boolean;
  /** Messages waiting for `announced`. */
  held: { readonly m: Message; readonly revision: number; readonly bytes: number }[];
  /** Its held messages were dropped (and its store watch canceled): created again once announced. */
  parked: boolean;
  /** No events since the last progress tick. */
  quiet: boolean;
  ended: boolean;
  socket: StoreSocket<Watch> | undefined;
}

export function watchService(b: Bridge, progressNotifyMs = PROGRESS_NOTIFY_MS): { Watch: (call: DuplexCall) => void } {
  return { Watch: (call) => void new WatchStream(b, call, progressNotifyMs) };
}

class WatchStream implements SocketOwner<Watch> {
  readonly #b: Bridge;
  readonly #call: DuplexCall;
  readonly #ctx: CallContext & { abort(): void };
  readonly #progressNotifyMs: number;
  /** Live watches by the client's id. */
  readonly #watches = new Map<string, Watch>();
  readonly #sockets: StoreSocket<Watch>[] = [];
  /** `created` answers not given yet, in the order of the creates. */
  readonly #order: Slot[] = [];
  #nextId = 0n;
  #closed = false;
  #lastHeader: Message = {};
  /** gRPC's buffer was full at the last write: counting what is written until it drains. */
  #draining = false;
  #unread = 0;
  #paused = false;
  #heldBytes = 0;
  #ticker: ReturnType<typeof setInterval> | undefined;

  constructor(b: Bridge, call: DuplexCall, progressNotifyMs: number) {
    this.#b = b;
    this.#call = call;
    this.#ctx = callContext(call, b.token);
    this.#progressNotifyMs = progressNotifyMs;
    call.on('data', (m) => {
      if (this.#closed) return;
      try {
        if (isMessage(m.create_request)) this.#create(m.create_request);
        else if (isMessage(m.cancel_request)) this.#cancel(m.cancel_request);
        else if (isMessage(m.progress_request)) this.#progress();
        // An empty request (no member of the oneof set): etcd ignores it.
      } catch (e) {
        this.#fail(internal(e));
      }
    });
    call.on('end', () => {
      this.#close();
      call.end();
    });
    const close = (): void => this.#close();
    call.on('error', close);
    call.on('cancelled', close);
    call.on('close', close);
  }

  // ---- the client's requests ----

  #create(r: Message): void {
    const asked = idOf(r.watch_id);
    if (asked === undefined) {
      this.#fail({ code: Status.INVALID_ARGUMENT, details: 'watch_id: not an integer' });
      return;
    }
    const refuse = (watchId: string, reason: string): void => {
      const answer = [
        { header: this.#lastHeader, watch_id: watchId, created: true, canceled: true, cancel_reason: reason },
      ];
      this.#order.push({ watch: undefined, answer });
      this.#release();
    };
    if (this.#watches.size >= MAX_WATCHES) {
      refuse(String(asked), 'durable-raft bridge: too many watches on one stream');
      return;
    }
    let id: string;
    if (asked !== 0n) {
      id = String(asked);
      // etcd answers a duplicate with watch id -1.
      if (this.#watches.has(id)) {
        refuse('-1', DUPLICATE_ID_REASON);
        return;
      }
    } else {
      while (this.#watches.has(String(this.#nextId))) this.#nextId++;
      id = String(this.#nextId++);
    }
    const { watch_id: _id, fragment: _fragment, ...create } = r;
    const slot: Slot = { watch: undefined, answer: undefined };
    const w: Watch = {
      id,
      create,
      progressNotify: r.progress_notify === true,
      slot,
      delivered: 0,
      written: 0,
      header: {},
      created: false,
      announced: false,
      held: [],
      parked: false,
      quiet: true,
      ended: false,
      socket: undefined,
    };
    (slot as { watch: Watch }).watch = w;
    this.#watches.set(id, w);
    this.#order.push(slot);
    this.#place(w);
    if (w.progressNotify) this.#arm();
  }

  #cancel(r: Message): void {
    const id = idOf(r.watch_id);
    const w = id === undefined ? undefined : this.#watches.get(String(id));
    // etcd answers nothing for a watch id it does not have.
    if (w === undefined) return;
    this.#end(w);
    const canceled = { header: w.header, watch_id: w.id, canceled: true };
    if (w.announced) {
      this.#write(canceled);
      return;
    }
    this.#dropHeld(w);
    w.slot.answer = [...(w.slot.answer ?? [{ header: w.header, watch_id: w.id, created: true }]), canceled];
    this.#release();
  }

  #progress(): void {
    const live = this.#sockets.filter((s) => s.size > 0);
    void Promise.all(live.map((s) => s.progress())).then((headers) => {
      const got = headers.filter((h): h is Message => h !== undefined);
      if (got.length === 0) return this.#progressByPost();
      const lowest = got.reduce((a, h) => (revisionOf(h) < revisionOf(a) ? h : a));
      this.#write({ header: lowest, watch_id: '-1' });
    });
  }

  /** No socket to ask: the store's revision now, by a POST. */
  #progressByPost(): void {
    this.#b.gateway.call('/v3/watch', { progress_request: {} }, this.#ctx, false).then(
      (a) => {
        if (!a.ok) return this.#fail(a.status);
        const result = a.message.result;
        if (isMessage(result)) this.#write(result);
      },
      (e: unknown) => this.#fail(internal(e)),
    );
  }

  // ---- what the sockets say ----

  created(w: Watch, r: Message): void {
    this.#saw(w, r);
    if (w.created) return;
    w.created = true;
    // Starting now (no start revision), everything up to the created answer's revision is behind the watch.
    if (w.delivered === 0 && startOf(w.create) === 0) w.delivered = w.written = revisionOf(r.header);
    w.slot.answer = [{ ...r, watch_id: w.id }];
    this.#release();
  }

  events(w: Watch, r: Message): void {
    this.#saw(w, r);
    const events = Array.isArray(r.events) ? r.events : [];
    if (events.length === 0) {
      this.#out(w, { ...r, watch_id: w.id }, revisionOf(r.header));
      return;
    }
    const revision = events.reduce<number>((top, e) => Math.max(top, eventRevision(e)), 0);
    // Taken before (the store resumes after `delivered`, so this is only a guard).
    if (revision <= w.delivered) return;
    w.quiet = false;
    this.#out(w, { ...r, watch_id: w.id }, revision);
  }

  ended(w: Watch, end: { result: Message } | { reason: string }): void {
    if (w.ended) return;
    this.#end(w);
    if ('result' in end) {
      this.#saw(w, end.result);
      this.#out(w, { ...end.result, watch_id: w.id }, w.delivered);
    } else if (w.created) {
      this.#out(w, { header: w.header, watch_id: w.id, canceled: true, cancel_reason: end.reason }, w.delivered);
    } else {
      w.slot.answer = [{ header: w.header, watch_id: w.id, created: true, canceled: true, cancel_reason: end.reason }];
      this.#release();
    }
  }

  displaced(w: Watch): void {
    w.socket = undefined;
    this.#place(w);
  }

  progressed(header: Message, watches: readonly Watch[]): void {
    const revision = revisionOf(header);
    for (const w of watches) {
      w.delivered = Math.max(w.delivered, revision);
      if (w.announced) w.written = Math.max(w.written, revision);
    }
  }

  // ---- placing watches on sockets ----

  /** Puts `w` on a socket with room (a new one if none has), to be created from its next revision. */
  #place(w: Watch): void {
    if (this.#closed || w.ended) return;
    let s = this.#sockets.find((x) => !x.full);
    if (s === undefined) {
      s = new StoreSocket<Watch>(this.#b.gateway, this.#ctx, this);
      if (this.#paused) s.pause();
      this.#sockets.push(s);
    }
    w.socket = s;
    s.add(w);
  }

  #end(w: Watch): void {
    if (this.#watches.get(w.id) === w) this.#watches.delete(w.id);
    w.ended = true;
    w.socket?.remove(w);
    w.socket = undefined;
  }

  // ---- output ----

  #saw(w: Watch, r: Message): void {
    if (!isMessage(r.header)) return;
    w.header = r.header;
    if (r.header.revision !== undefined) this.#lastHeader = r.header;
  }

  /** A message of `w`'s that takes it up to `revision`: out now, or held until its `created` is out. */
  #out(w: Watch, m: Message, revision: number): void {
    if (w.announced) {
      this.#write(m);
      w.delivered = Math.max(w.delivered, revision);
      w.written = Math.max(w.written, revision);
      return;
    }
    if (w.parked) return;
    const bytes = JSON.stringify(m).length;
    w.held.push({ m, revision, bytes });
    w.delivered = Math.max(w.delivered, revision);
    this.#heldBytes += bytes;
    if (this.#heldBytes > MAX_HELD_BYTES) this.#park();
  }

  /** Too much held: each watch holding some drops it, and its store watch, until its turn comes. */
  #park(): void {
    for (const slot of this.#order) {
      const w = slot.watch;
      if (w === undefined || w.held.length === 0 || w.ended) continue;
      this.#dropHeld(w);
      w.delivered = w.written;
      w.parked = true;
      w.socket?.remove(w);
      w.socket = undefined;
    }
  }

  #dropHeld(w: Watch): void {
    for (const h of w.held) this.#heldBytes -= h.bytes;
    w.held = [];
  }

  /** Gives every answer whose turn has come, and the messages its watch holds. */
  #release(): void {
    for (let slot = this.#order[0]; slot?.answer !== undefined; slot = this.#order[0]) {
      this.#order.shift();
      for (const m of slot.answer) this.#write(m);
      const w = slot.watch;
      if (w === undefined) continue;
      w.announced = true;
      for (const h of w.held) {
        this.#write(h.m);
        w.written = Math.max(w.written, h.revision);
      }
      this.#dropHeld(w);
      if (w.parked) {
        w.parked = false;
        this.#place(w);
      }
    }
  }

  #write(m: Message): void {
    if (this.#closed) return;
    if (this.#call.write(m) && !this.#draining) return;
    if (!this.#draining) {
      this.#draining = true;
      this.#unread = 0;
      this.#call.once('drain', () => this.#drained());
    }
    this.#unread += JSON.stringify(m).length;
    if (this.#unread > MAX_UNREAD_BYTES && !this.#paused) {
      this.#paused = true;
      for (const s of this.#sockets) s.pause();
    }
  }

  #drained(): void {
    this.#draining = false;
    this.#unread = 0;
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    for (const s of this.#sockets) s.resume();
  }

  // ---- progress notify ----

  #arm(): void {
    if (this.#ticker !== undefined || this.#closed) return;
    this.#ticker = setInterval(() => this.#tick(), this.#progressNotifyMs);
    (this.#ticker as { unref?: () => void }).unref?.();
  }

  #tick(): void {
    const due = new Map<StoreSocket<Watch>, Watch[]>();
    let asked = false;
    for (const w of this.#watches.values()) {
      if (!w.progressNotify) continue;
      asked = true;
      const s = w.socket;
      if (w.quiet && w.announced && s !== undefined) due.set(s, [...(due.get(s) ?? []), w]);
      w.quiet = true;
    }
    if (!asked && this.#ticker !== undefined) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
    for (const [s, watches] of due)
      void s.progress().then((header) => {
        if (header === undefined) return;
        for (const w of watches)
          if (!w.ended && w.socket === s) this.#out(w, { header, watch_id: w.id }, revisionOf(header));
      });
  }

  // ---- the end ----

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#ticker !== undefined) clearInterval(this.#ticker);
    for (const s of this.#sockets) s.close();
    this.#watches.clear();
    this.#ctx.abort();
  }

  #fail(status: StatusObject): void {
    if (this.#closed) return;
    this.#close();
    this.#call.emit('error', status);
  }
}

/** A header's revision (etcd's), 0 if it has none. */
function revisionOf(header: unknown): number {
  if (!isMessage(header)) return 0;
  const r = Number(header.revision ?? 0);
  return Number.isSafeInteger(r) ? r : 0;
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
