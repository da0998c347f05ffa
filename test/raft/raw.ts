/**
 * Helpers for tests written directly against RawNode: hand-made logs, a
 * Ready loop that persists into a MemoryLogStore, and a tiny manual network
 * that records every message released so tests can assert on exact messages.
 */
import type {
  AppendMsg,
  AppendRespMsg,
  Config,
  ConfState,
  Entry,
  HardState,
  HeartbeatMsg,
  HeartbeatRespMsg,
  Index,
  Message,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
  Status,
  Storage,
  Term,
  VoteMsg,
  VoteRespMsg,
} from '../../src/raft/index.ts';
import { RawNode } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';
import { seededRng } from './harness.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (d: Uint8Array): string => dec.decode(d);

/** Entries with the given terms at consecutive indexes from `start`; data is "i@t". */
export function entriesOf(terms: readonly Term[], start: Index = 1): Entry[] {
  return terms.map((term, i) => ({
    index: start + i,
    term,
    type: 'normal' as const,
    data: bytes(`${start + i}@${term}`),
  }));
}

/** A Storage over a MemoryLogStore whose membership comes from `conf` (or the store's snapshot). */
export class TestStorage implements Storage {
  readonly store: MemoryLogStore;
  private readonly conf: ConfState | undefined;
  constructor(store: MemoryLogStore, conf: ConfState | undefined) {
    this.store = store;
    this.conf = conf;
  }
  initialState(): { hardState: HardState; conf: ConfState } {
    const s = this.store.initialState();
    return { hardState: s.hardState, conf: this.conf ?? s.conf };
  }
  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    return this.store.entries(lo, hi, maxBytes);
  }
  term(i: Index): Term | undefined {
    return this.store.term(i);
  }
  firstIndex(): Index {
    return this.store.firstIndex();
  }
  lastIndex(): Index {
    return this.store.lastIndex();
  }
  snapshot(): Snapshot {
    return this.store.snapshot();
  }
}

export type PeerConfig = Partial<Omit<Config, 'id' | 'storage' | 'rng'>>;

export interface PeerOptions {
  /** Voters of the bootstrap configuration (default: the net's ids). Ignored when `fromSnapshot`. */
  voters?: readonly NodeId[];
  learners?: readonly NodeId[];
  /** Terms of a pre-existing persisted log, from index 1. */
  terms?: readonly Term[];
  /** Persisted hard state (default: term = last log term, no vote, commit 0). */
  hard?: Partial<HardState>;
  /** Reuse a store (a restart); then `terms` and `hard` are ignored. */
  store?: MemoryLogStore;
  /** Take the membership from the store's snapshot instead of `voters`. */
  fromSnapshot?: boolean;
  seed?: number;
  config?: PeerConfig;
}

/** One RawNode with its durable store and everything its Readies produced. */
export class Peer {
  readonly id: NodeId;
  readonly node: RawNode;
  readonly store: MemoryLogStore;
  /** Entries handed out as committed (the state machine's view). */
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];
  readonly snapshots: Snapshot[] = [];
  /** Every Ready handled, in order. */
  readonly readies: Ready[] = [];
  /** Conf changes are applied automatically unless this is false (then they are only recorded). */
  autoApplyConf = true;

  constructor(id: NodeId, defaultVoters: readonly NodeId[], o: PeerOptions = {}) {
    this.id = id;
    let store = o.store;
    if (!store) {
      store = new MemoryLogStore();
      const entries = entriesOf(o.terms ?? []);
      const lastTerm = entries[entries.length - 1]?.term ?? 0;
      store.persist({ entries, hardState: { term: lastTerm, vote: '', commit: 0, ...o.hard } });
    }
    this.store = store;
    const conf = o.fromSnapshot ? undefined : { voters: o.voters ?? defaultVoters, learners: o.learners ?? [] };
    const applied = o.fromSnapshot ? store.snapshot().meta.index : 0;
    this.node = new RawNode({
      electionTicks: 10,
      heartbeatTicks: 1,
      preVote: false,
      checkQuorum: false,
      ...o.config,
      applied,
      id,
      storage: new TestStorage(store, conf),
      rng: seededRng(o.seed ?? hash(id)),
    });
  }

  /** Handles every pending Ready (persist, apply, collect); returns the messages released. */
  flush(): Message[] {
    const out: Message[] = [];
    while (this.node.hasReady()) out.push(...this.handle(this.node.ready()));
    return out;
  }

  /** Handles one Ready per the contract in types.ts and returns its messages. */
  handle(rd: Ready): readonly Message[] {
    this.readies.push(rd);
    this.store.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState });
    if (rd.snapshot) this.snapshots.push(rd.snapshot);
    for (const e of rd.committedEntries) {
      this.applied.push(e);
      if (e.type === 'conf' && this.autoApplyConf) {
        const cc = RawNode.decodeConfChange(e.data);
        if (cc) this.node.applyConfChange(cc);
      }
    }
    this.readStates.push(...rd.readStates);
    this.node.advance(rd);
    return rd.messages;
  }

  /** Terms of the persisted log from firstIndex to lastIndex. */
  terms(): Term[] {
    return this.log().map((e) => e.term);
  }

  log(): Entry[] {
    return this.store.entries(this.store.firstIndex(), this.store.lastIndex() + 1, Number.POSITIVE_INFINITY);
  }

  get status(): Status {
    return this.node.status();
  }
}

function hash(s: string): number {
  let h = 7;
  for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h;
}

/**
 * A manual network of Peers. Messages released by a Ready wait in `queue`
 * until delivered; `sent` keeps every message ever released.
 */
export class RawNet {
  readonly peers = new Map<NodeId, Peer>();
  readonly ids: NodeId[];
  queue: Message[] = [];
  sent: Message[] = [];
  /** Links that drop traffic, as "from|to". */
  readonly cuts = new Set<string>();

  constructor(ids: NodeId[], opts: Partial<Record<NodeId, PeerOptions>> = {}, common: PeerOptions = {}) {
    this.ids = ids;
    for (const id of ids) this.add(id, { ...common, ...opts[id] });
  }

  add(id: NodeId, o: PeerOptions = {}): Peer {
    const p = new Peer(id, this.ids, o);
    this.peers.set(id, p);
    return p;
  }

  /** Replaces a peer by a fresh RawNode over the same store (a crash-restart). */
  restart(id: NodeId, o: PeerOptions = {}): Peer {
    const old = this.peer(id);
    this.queue = this.queue.filter((m) => m.to !== id);
    return this.add(id, { ...o, store: old.store });
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (!p) throw new Error(`no peer ${id}`);
    return p;
  }

  node(id: NodeId): RawNode {
    return this.peer(id).node;
  }

  /** Flushes one peer (or all) and queues what they release; returns those messages. */
  flush(id?: NodeId): Message[] {
    const out: Message[] = [];
    for (const p of id ? [this.peer(id)] : this.peers.values()) out.push(...p.flush());
    this.queue.push(...out);
    this.sent.push(...out);
    return out;
  }

  /** Steps `m` into its destination (bypassing the queue) and flushes it. */
  step(m: Message): Message[] {
    this.peer(m.to).node.step(m);
    return this.flush(m.to);
  }

  tick(id: NodeId, n = 1): Message[] {
    const out: Message[] = [];
    for (let i = 0; i < n; i++) {
      this.node(id).tick();
      out.push(...this.flush(id));
    }
    return out;
  }

  campaign(id: NodeId): Message[] {
    this.node(id).campaign();
    return this.flush(id);
  }

  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) {
      if (other === id) continue;
      this.cuts.add(`${id}|${other}`).add(`${other}|${id}`);
    }
  }

  heal(): void {
    this.cuts.clear();
  }

  /**
   * Delivers queued messages (and those they cause) until quiet. Messages
   * over a cut link or refused by `filter` are dropped. Returns what was delivered.
   */
  deliver(filter: (m: Message) => boolean = () => true, max = 100_000): Message[] {
    const done: Message[] = [];
    while (this.queue.length > 0 && done.length < max) {
      const m = this.queue.shift() as Message;
      if (this.cuts.has(`${m.from}|${m.to}`) || !filter(m) || !this.peers.has(m.to)) continue;
      done.push(m);
      this.step(m);
    }
    return done;
  }

  /** Like deliver, but messages refused by `pred` stay queued (in order) instead of being dropped. */
  deliverOnly(pred: (m: Message) => boolean): Message[] {
    const done: Message[] = [];
    for (;;) {
      const at = this.queue.findIndex(pred);
      if (at < 0) return done;
      const m = this.queue.splice(at, 1)[0] as Message;
      if (this.cuts.has(`${m.from}|${m.to}`) || !this.peers.has(m.to)) continue;
      done.push(m);
      this.step(m);
    }
  }

  /** Proposes on `id` and flushes it; returns the proposal result. */
  propose(id: NodeId, data: string | Uint8Array): ReturnType<RawNode['propose']> {
    const res = this.node(id).propose(typeof data === 'string' ? bytes(data) : data);
    this.flush(id);
    return res;
  }

  /** Removes and returns the queued messages matching `pred`. */
  take(pred: (m: Message) => boolean = () => true): Message[] {
    const hit = this.queue.filter(pred);
    this.queue = this.queue.filter((m) => !pred(m));
    return hit;
  }

  /** Elects `id` (it campaigns and every queued message is delivered). */
  elect(id: NodeId): void {
    this.campaign(id);
    this.deliver();
    if (this.node(id).status().role !== 'leader') throw new Error(`${id} did not win`);
  }
}

// ---- hand-made messages -------------------------------------------------------

export function voteMsg(
  from: NodeId,
  to: NodeId,
  term: Term,
  lastIndex: Index,
  lastTerm: Term,
  o: { preVote?: boolean; transfer?: boolean } = {},
): VoteMsg {
  return {
    type: 'vote',
    from,
    to,
    term,
    lastIndex,
    lastTerm,
    preVote: o.preVote ?? false,
    transfer: o.transfer ?? false,
  };
}

export function voteResp(from: NodeId, to: NodeId, term: Term, reject = false, preVote = false): VoteRespMsg {
  return { type: 'voteResp', from, to, term, reject, preVote };
}

export function appMsg(
  from: NodeId,
  to: NodeId,
  term: Term,
  prevIndex: Index,
  prevTerm: Term,
  entries: readonly Entry[],
  commit: Index,
): AppendMsg {
  return { type: 'app', from, to, term, prevIndex, prevTerm, entries, commit };
}

export function appResp(from: NodeId, to: NodeId, term: Term, index: Index, reject = false): AppendRespMsg {
  return { type: 'appResp', from, to, term, index, reject, hintIndex: 0, hintTerm: 0 };
}

export function heartbeat(from: NodeId, to: NodeId, term: Term, commit: Index, ctx = ''): HeartbeatMsg {
  return { type: 'heartbeat', from, to, term, commit, ctx };
}

export function heartbeatResp(from: NodeId, to: NodeId, term: Term, ctx = ''): HeartbeatRespMsg {
  return { type: 'heartbeatResp', from, to, term, ctx };
}

/** The messages of one type (narrowed), optionally only those to `to`. */
export function ofType<T extends Message['type']>(
  ms: readonly Message[],
  type: T,
  to?: NodeId,
): Extract<Message, { type: T }>[] {
  return ms.filter((m): m is Extract<Message, { type: T }> => m.type === type && (to === undefined || m.to === to));
}
