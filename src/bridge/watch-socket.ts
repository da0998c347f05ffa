/**
 * One WebSocket to the store (GET /v3/watch, etcd's gateway protocol: one
 * WatchRequest per message out, one `{"result"}` or `{"error"}` per message
 * back) carrying some of one gRPC Watch stream's watches. Each watch has an
 * id of this socket's own, chosen here (1, 2, 3, … never reused), so the
 * store's answers name it; the stream (watch.ts) keeps the client's ids.
 *
 * The socket reconnects when its connection ends (a replica restarted or
 * left, the network, a store watch canceled as too slow), with backoff, and
 * creates every watch again from the revision after the last one it took
 * (`Watch.delivered`), so each revision reaches the client once. A
 * connection refused before it opened is asked about with a POST
 * progress_request: a refusal another attempt would meet again (a token the
 * store does not know) ends the socket's watches with its reason. The store
 * answers every create with `created`, or an error, in order; a create
 * refused with SOCKET_FULL_REASON moves to another socket (the stream's
 * choice). Progress requests are answered in order too, each with a revision
 * every watch of the socket has been sent all of.
 */
import { type CallContext, type Gateway, parseObject, type SocketLike, streamError } from './gateway.ts';
import { FINAL, RETRY_FIRST_MS, RETRY_MAX_MS } from './retry.ts';

export type Message = Record<string, unknown>;

/**
 * The store's cancel_reason for a watch its socket has no room for: the same
 * text as src/node/watch-sockets-v3.ts (test/bridge/watch.test.ts checks it).
 */
export const SOCKET_FULL_REASON = 'durable-raft: no room for another watch on this socket; open another socket';

/** A watch as a socket needs it. */
export interface SocketWatch {
  /** The client's create request, without its watch id. */
  readonly create: Message;
  /** The last revision (etcd's) every event of which the bridge took (0: none yet). */
  delivered: number;
}

/** What the socket tells the stream that owns its watches. */
export interface SocketOwner<W extends SocketWatch> {
  /** The store created `w` (again, after a reconnection: the owner tells which). */
  created(w: W, result: Message): void;
  /** Events (or progress) of `w`. */
  events(w: W, result: Message): void;
  /** `w` ended for good: canceled with a compact_revision (`result`), or refused (`reason`). */
  ended(w: W, end: { result: Message } | { reason: string }): void;
  /** `w` does not fit this socket: it has left it, for another. */
  displaced(w: W): void;
  /** A progress answer: every watch of the socket created before it was sent all up to its header's revision. */
  progressed(header: Message, watches: readonly W[]): void;
}

type State = 'idle' | 'connecting' | 'open' | 'waiting' | 'paused' | 'closed';

export class StoreSocket<W extends SocketWatch> {
  readonly #gateway: Gateway;
  readonly #ctx: CallContext;
  readonly #owner: SocketOwner<W>;
  /** The watches this socket carries, by its own ids. */
  readonly #watches = new Map<number, W>();
  readonly #ids = new Map<W, number>();
  /** Creates sent on this connection and not answered yet, in order. */
  #pending: number[] = [];
  /** Progress answers awaited, in the order their requests went. */
  #waiters: ((header: Message | undefined) => void)[] = [];
  #ws: SocketLike | undefined;
  #state: State = 'idle';
  #nextId = 1;
  #wait = RETRY_FIRST_MS;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The store refused a watch for want of room (cleared when one leaves). */
  full = false;

  constructor(gateway: Gateway, ctx: CallContext, owner: SocketOwner<W>) {
    this.#gateway = gateway;
    this.#ctx = ctx;
    this.#owner = owner;
  }

  get size(): number {
    return this.#watches.size;
  }

  watches(): IterableIterator<W> {
    return this.#watches.values();
  }

  /** Carries `w` from now on: creates it on the store from the revision after its `delivered`. */
  add(w: W): void {
    if (this.#state === 'closed') return;
    const id = this.#nextId++;
    this.#watches.set(id, w);
    this.#ids.set(w, id);
    if (this.#state === 'open') this.#create(id, w);
    else if (this.#state === 'idle') this.#connect();
  }

  /** Stops carrying `w` (the store's watch is canceled; an answer for it that still comes is ignored). */
  remove(w: W): void {
    const id = this.#ids.get(w);
    if (id === undefined) return;
    this.#forget(id, w);
    if (this.#state === 'open') this.#send({ cancel_request: { watch_id: String(id) } });
  }

  /** A progress answer's header (undefined if the socket closes first), after every event sent before it. */
  progress(): Promise<Message | undefined> {
    if (this.#state === 'closed') return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      if (this.#state === 'open') this.#send({ progress_request: {} });
      else if (this.#state === 'idle') this.#connect();
    });
  }

  /** Drops the connection until resume() (the client is not reading): the store's watches end, ours wait. */
  pause(): void {
    if (this.#state === 'closed') return;
    this.#disconnect();
    this.#state = 'paused';
  }

  resume(): void {
    if (this.#state !== 'paused') return;
    this.#state = 'idle';
    if (this.#watches.size > 0 || this.#waiters.length > 0) this.#connect();
  }

  close(): void {
    this.#disconnect();
    this.#state = 'closed';
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  #connect(): void {
    this.#state = 'connecting';
    let ws: SocketLike;
    try {
      ws = this.#gateway.socket('/v3/watch', this.#ctx);
    } catch {
      this.#lost(false);
      return;
    }
    this.#ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      if (this.#ws !== ws) return;
      opened = true;
      this.#state = 'open';
      for (const [id, w] of this.#watches) this.#create(id, w);
      for (let i = 0; i < this.#waiters.length; i++) this.#send({ progress_request: {} });
    });
    ws.addEventListener('message', (e) => {
      if (this.#ws === ws) this.#message(e.data);
    });
    const lost = (): void => {
      if (this.#ws === ws) this.#lost(opened);
    };
    ws.addEventListener('close', lost);
    ws.addEventListener('error', lost);
  }

  /** Closes the connection (if any) without reconnecting. */
  #disconnect(): void {
    const ws = this.#ws;
    this.#ws = undefined;
    this.#pending = [];
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      ws?.close(1000);
    } catch {
      // already closing
    }
  }

  /** The connection ended (or never opened): connect again after a pause, unless nothing waits for it. */
  #lost(opened: boolean): void {
    this.#disconnect();
    if (this.#state === 'closed' || this.#state === 'paused') return;
    if (this.#watches.size === 0 && this.#waiters.length === 0) {
      this.#state = 'idle';
      return;
    }
    this.#state = 'waiting';
    const wait = this.#wait;
    this.#wait = Math.min(RETRY_MAX_MS, this.#wait * 2);
    const again = (): void => {
      if (this.#state !== 'waiting') return;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.#state === 'waiting') this.#connect();
      }, wait);
    };
    if (opened) again();
    else void this.#refusal().then((reason) => (reason === undefined ? again() : this.#refuseAll(reason)));
  }

  /** Why the store refused the socket, if another attempt would meet the same refusal (a POST tells). */
  async #refusal(): Promise<string | undefined> {
    const a = await this.#gateway.call('/v3/watch', { progress_request: {} }, this.#ctx, false);
    if (a.ok || !FINAL.has(a.status.code)) return undefined;
    return a.status.details;
  }

  #refuseAll(reason: string): void {
    if (this.#state !== 'waiting') return;
    this.#state = 'idle';
    const ended = [...this.#watches.values()];
    this.#watches.clear();
    this.#ids.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
    for (const w of ended) this.#owner.ended(w, { reason });
  }

  #create(id: number, w: W): void {
    // After the last revision taken, and never before the revision the client asked to start at.
    const from = Math.max(w.delivered + 1, startOf(w.create));
    const create = w.delivered > 0 ? { ...w.create, start_revision: String(from) } : w.create;
    this.#pending.push(id);
    this.#send({ create_request: { ...create, watch_id: String(id) } });
  }

  #send(m: Message): void {
    try {
      this.#ws?.send(JSON.stringify(m));
    } catch {
      // The connection is going: its close event reconnects.
    }
  }

  #forget(id: number, w: W): void {
    this.#watches.delete(id);
    this.#ids.delete(w);
    this.full = false;
  }

  /** A message from the store. Anything that does not fit the protocol drops the connection (and reconnects). */
  #message(data: unknown): void {
    const m = typeof data === 'string' ? parseObject(data) : undefined;
    const r = m?.result;
    if (m !== undefined && Object.hasOwn(m, 'error')) {
      // The answer to the oldest create not answered yet: it refused it.
      const id = this.#pending.shift();
      const w = id === undefined ? undefined : this.#watches.get(id);
      if (id === undefined) this.#drop();
      else if (w !== undefined) {
        this.#forget(id, w);
        this.#owner.ended(w, { reason: streamError(m.error).details });
      }
      return;
    }
    if (typeof r !== 'object' || r === null || Array.isArray(r)) this.#drop();
    else this.#result(r as Message);
  }

  #result(r: Message): void {
    const id = Number(r.watch_id ?? 0);
    if (r.created === true) {
      const at = this.#pending.indexOf(id);
      if (at >= 0) this.#pending.splice(at, 1);
      const w = this.#watches.get(id);
      if (w === undefined) return;
      if (r.canceled !== true) {
        this.#wait = RETRY_FIRST_MS;
        this.#owner.created(w, r);
        return;
      }
      this.#forget(id, w);
      const reason = typeof r.cancel_reason === 'string' ? r.cancel_reason : '';
      if (reason !== SOCKET_FULL_REASON || this.#watches.size === 0) {
        this.#owner.ended(w, { reason });
        return;
      }
      this.full = true;
      this.#owner.displaced(w);
      return;
    }
    if (id === -1 && r.canceled !== true) {
      const settled = [...this.#watches].filter(([i]) => !this.#pending.includes(i)).map(([, w]) => w);
      if (typeof r.header === 'object' && r.header !== null) this.#owner.progressed(r.header as Message, settled);
      this.#waiters.shift()?.(r.header as Message | undefined);
      return;
    }
    const w = this.#watches.get(id);
    if (w === undefined) return;
    if (r.canceled !== true) this.#owner.events(w, r);
    else if (Object.hasOwn(r, 'compact_revision')) {
      this.#forget(id, w);
      this.#owner.ended(w, { result: r });
    } else {
      // Canceled for another reason (too slow, the replica leaving): every watch resumes on a new connection.
      this.#drop();
    }
  }

  #drop(): void {
    this.#lost(true);
  }
}

/** The revision a create request asks to start at (0: now). */
export function startOf(create: Message): number {
  const s = Number(create.start_revision ?? 0);
  return Number.isSafeInteger(s) && s > 0 ? s : 0;
}
