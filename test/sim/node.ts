import type { ApplyItem, Driver } from '../../src/driver/index.ts';
import { beforeRevision, type KvEvent, type KvResult, KvStateMachine, MemoryKvTable } from '../../src/kv/index.ts';
import type { Entry, HardState, Message, NodeId, Snapshot, SnapshotMeta } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';
import { hashBytes, hashString } from './hash.ts';
import type { Invariants } from './invariants.ts';

/** A MemoryLogStore that shows every update to the invariants before making it durable. */
export class CheckedLogStore extends MemoryLogStore {
  private readonly node: NodeId;
  private readonly inv: Invariants;
  compactions = 0;

  constructor(node: NodeId, inv: Invariants) {
    super();
    this.node = node;
    this.inv = inv;
  }

  override persist(update: {
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    hardState?: HardState | undefined;
  }): void {
    this.inv.onPersist(this.node, this, update);
    super.persist(update);
  }

  override compact(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index > this.snapshot().meta.index) this.compactions++;
    super.compact(meta, data);
  }
}

/** A digest of a KV table's replicated state (records, revision, idempotency records). */
export function tableDigest(t: MemoryKvTable): string {
  let h = 0x811c9dc5;
  for (const kv of t.range('', undefined)) {
    h = hashString(kv.key, h);
    h = hashBytes(kv.value, h);
    h = hashString(`${kv.createRevision}.${kv.modRevision}.${kv.version}.${kv.lease ?? 0}`, h);
  }
  for (const l of t.leases()) h = hashString(`lease.${l.id}.${l.ttl}.${l.remaining}`, h);
  const m = t.meta();
  // The history too: every replica, however it got there (log or snapshot), keeps the same events.
  let events = 0;
  for (let page = t.events(beforeRevision(m.compacted), 256); page.length > 0; ) {
    for (const e of page) {
      h = hashString(`${e.type}.${e.revision}.${e.seq}.${e.kv.key}.${e.prev?.modRevision ?? 0}.${e.kv.lease ?? 0}`, h);
      h = hashBytes(e.kv.value, h);
    }
    events += page.length;
    page = t.events(page[page.length - 1] as KvEvent, 256);
  }
  return `${m.applied}/${m.revision}/${m.compacted}/${events}/${t.requestCount()}/${t.leases().length}/${h.toString(16)}`;
}

/** The KV state machine, reporting each applied batch and installed snapshot to the invariants. */
export class CheckedKvMachine extends KvStateMachine {
  /** The durable table (kept by the node across crashes). */
  readonly kv: MemoryKvTable;
  private readonly node: NodeId;
  private readonly inv: Invariants;
  /** Called with every applied item (for the run's trace). */
  onItem: ((it: ApplyItem) => void) | undefined;
  /** Called before a batch applies; may throw to crash the node mid-Ready. */
  beforeApply: (() => void) | undefined;
  restores = 0;

  constructor(node: NodeId, inv: Invariants, table = new MemoryKvTable()) {
    super(table);
    this.kv = table;
    this.node = node;
    this.inv = inv;
  }

  override apply(items: readonly ApplyItem[]): KvResult[] {
    this.beforeApply?.();
    const out = super.apply(items);
    const last = items[items.length - 1];
    if (last) {
      for (const it of items) this.onItem?.(it);
      this.inv.onApply(this.node, items, last.index, tableDigest(this.kv));
    }
    return out;
  }

  override restore(snapshot: Snapshot): void {
    super.restore(snapshot);
    this.restores++;
    this.inv.onRestore(this.node, snapshot.meta.index, tableDigest(this.kv));
  }
}

/** One simulated server: its durable parts survive a crash, the Driver (memory) does not. */
export interface SimNode {
  readonly id: NodeId;
  readonly store: CheckedLogStore;
  readonly sm: CheckedKvMachine;
  /** Undefined while crashed. */
  driver: Driver<KvResult> | undefined;
  /** Virtual ms of the node's next tick. */
  nextTick: number;
  /** This node's tick period (clock drift). */
  tickMs: number;
  /** Virtual ms to restart at while crashed. */
  restartAt: number;
  lives: number;
  /** A crash waiting for the node's next apply or send (the middle of a Ready). */
  armed: 'apply' | 'send' | undefined;
  /** Crash anyway at this time if the armed point never comes. */
  armedUntil: number;
  downFor: number;
  /** Virtual ms until which the node does not run (its process is busy): what arrives meanwhile waits in `held`. */
  stalledUntil: number;
  /** What arrived during the stall, each with the ticks that had fallen due before it. */
  held: { readonly m: Message; readonly after: number }[];
  /** Ticks that fell due during the stall, handed to the core at once when it ends (RawNode.elapse). */
  missedTicks: number;
  /** The node's own timeout, in ticks, when the stall began: where its alarm would have fired. */
  dueTicks: number;
  /** SimConfig.sleepy: ticks that fell due since the node last ran, handed over when it next runs. */
  sleptTicks: number;
  /**
   * Not sleepy: ticks before the timeout the core announced when it last ran
   * (RawNode.ticksUntilTimeout), in which a tick must do nothing, because a
   * sleepy runtime sleeps through them (World.tickAwake).
   */
  silentTicks: number;
  /** SimConfig.quiesceAfterTicks: asleep with no alarm until a message (not an ack) or a request wakes it. */
  quiet: boolean;
  /** The leader it followed when that leader went quiet ('' for none): a request then does not campaign at once. */
  quietLeader: NodeId;
  /** Ticks handed over since the last request (NodeRuntime.idleTicks). */
  idleTicks: number;
  /** SimConfig.batchWaitMs: entries the node's last flush of held proposals persisted. */
  lastBatch: number;
  /** SimConfig.batchWaitMs: virtual ms since which proposals wait unpersisted (-1: none wait). */
  heldSince: number;
}
