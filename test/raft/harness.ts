import type { ApplyItem } from '../../src/driver/index.ts';
import { Driver, type ProposeOutcome, type StateMachine } from '../../src/driver/index.ts';
import type { ConfState, Index, Message, NodeId, Rng, Snapshot } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';

/** A tiny seeded PRNG (mulberry32) for tests. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return {
    int(n: number): number {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    },
  };
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A state machine that records applied commands as strings; result = the command text. */
export class ListMachine implements StateMachine<string> {
  appliedIndex: Index = 0;
  confState: ConfState | undefined;
  log: string[] = [];

  applied(): Index {
    return this.appliedIndex;
  }
  conf(): ConfState | undefined {
    return this.confState;
  }
  apply(items: readonly ApplyItem[]): string[] {
    const out: string[] = [];
    for (const it of items) {
      if (it.index !== this.appliedIndex + 1) throw new Error(`apply gap: ${it.index} after ${this.appliedIndex}`);
      this.appliedIndex = it.index;
      if (it.kind === 'command') {
        const s = decoder.decode(it.data);
        this.log.push(s);
        out.push(s);
      } else if (it.kind === 'conf') {
        this.confState = it.conf;
      }
    }
    return out;
  }
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ log: this.log, conf: this.confState }));
  }
  restore(s: Snapshot): void {
    const v = JSON.parse(decoder.decode(s.data)) as { log: string[] };
    this.log = v.log;
    this.appliedIndex = s.meta.index;
    this.confState = s.meta.conf;
  }
}

export interface TestNode {
  id: NodeId;
  log: MemoryLogStore;
  sm: ListMachine;
  driver: Driver<string>;
}

export interface ClusterOptions {
  seed?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  compactAfterEntries?: number;
  maxInflightMsgs?: number;
  maxMsgBytes?: number;
  /** Followers learn the commit index with the next append or heartbeat (as the node runtime runs). */
  lazyCommit?: boolean;
}

/**
 * An in-memory cluster with a manual network: messages queue in `inbox`
 * until `deliver()`; `cut(a, b)` drops traffic between two nodes.
 * Crash-restart keeps only the node's MemoryLogStore and state machine.
 */
export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  inbox: Message[] = [];
  private readonly cuts = new Set<string>();
  private readonly opts: ClusterOptions;
  private readonly bootstrap: ConfState;
  private seed: number;

  constructor(ids: NodeId[], opts: ClusterOptions = {}) {
    this.opts = opts;
    this.seed = opts.seed ?? 1;
    this.bootstrap = { voters: ids, learners: [] };
    for (const id of ids) this.start(id, new MemoryLogStore(), new ListMachine(), this.bootstrap);
  }

  start(id: NodeId, log: MemoryLogStore, sm: ListMachine, bootstrap: ConfState | undefined): TestNode {
    const o = this.opts;
    const driver = new Driver<string>({
      raft: {
        id,
        rng: seededRng(this.seed++),
        electionTicks: o.electionTicks ?? 10,
        heartbeatTicks: o.heartbeatTicks ?? 1,
        preVote: o.preVote ?? true,
        checkQuorum: o.checkQuorum ?? true,
        maxInflightMsgs: o.maxInflightMsgs ?? 256,
        maxMsgBytes: o.maxMsgBytes ?? 1024 * 1024,
        lazyCommit: o.lazyCommit ?? false,
      },
      log,
      sm,
      transport: { send: (ms) => this.inbox.push(...ms) },
      ...(bootstrap ? { bootstrap } : {}),
      compactAfterEntries: o.compactAfterEntries ?? 0,
    });
    const n = { id, log, sm, driver };
    this.nodes.set(id, n);
    return n;
  }

  /**
   * Adds a brand-new node with an empty log. Like every node it starts from the
   * cluster's initial membership; it learns later changes from the log or a snapshot.
   */
  addEmpty(id: NodeId): TestNode {
    return this.start(id, new MemoryLogStore(), new ListMachine(), this.bootstrap);
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Loses everything in memory; keeps what was persisted. */
  restart(id: NodeId): TestNode {
    const n = this.node(id);
    this.inbox = this.inbox.filter((m) => m.to !== id && m.from !== id);
    return this.start(id, n.log, n.sm, this.bootstrap);
  }

  /**
   * Loses everything in memory and the state machine too, keeping only the
   * log store: the state machine is rebuilt from the store's latest snapshot
   * (if any), and the entries after it are applied again.
   */
  restartFromSnapshot(id: NodeId): TestNode {
    const n = this.node(id);
    this.inbox = this.inbox.filter((m) => m.to !== id && m.from !== id);
    const sm = new ListMachine();
    const snap = n.log.snapshot();
    if (snap.meta.index > 0) sm.restore(snap);
    return this.start(id, n.log, sm, this.bootstrap);
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  isolate(a: NodeId): void {
    for (const id of this.nodes.keys()) if (id !== a) this.cut(a, id);
  }

  heal(): void {
    this.cuts.clear();
  }

  /** Delivers queued messages (and those they cause) until the network is quiet or `max` were delivered. */
  deliver(max = 100_000, filter: (m: Message) => boolean = () => true): number {
    let n = 0;
    while (this.inbox.length > 0 && n < max) {
      const m = this.inbox.shift() as Message;
      if (this.cuts.has(`${m.from}|${m.to}`) || !filter(m)) continue;
      this.nodes.get(m.to)?.driver.receive(m);
      n++;
    }
    return n;
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) n.driver.tick();
      this.deliver();
    }
  }

  /** Ticks until some node is leader (at most `maxTicks`), returning its id. */
  elect(maxTicks = 200): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const l = this.leader();
      if (l) return l;
      this.tickAll();
    }
    throw new Error('no leader elected');
  }

  /** The unique leader of the highest term, if any. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const n of this.nodes.values()) {
      const st = n.driver.status();
      if (st.role === 'leader' && (!best || st.term > best.term)) best = { id: n.id, term: st.term };
    }
    return best?.id;
  }

  /** Proposes `cmd` on `id` and delivers until it settles. */
  propose(id: NodeId, cmd: string): ProposeOutcome<string> | undefined {
    let out: ProposeOutcome<string> | undefined;
    this.node(id).driver.propose(encoder.encode(cmd), (o) => {
      out = o;
    });
    this.deliver();
    return out;
  }
}
