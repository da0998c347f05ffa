import type { StateMachine } from '../driver/index.ts';
import {
  encodeCommand,
  type KeyValue,
  type KvResult,
  type KvStateMachine,
  type RangeQuery,
  type RangeReadResult,
} from '../kv/index.ts';
import type { SnapshotTables, Sql } from '../storage/index.ts';
import { SqliteKvStateMachine } from '../storage/index.ts';
import { NodeObject } from './node-object.ts';
import type { Timed } from './runtime.ts';

/** The answer to a read: the value (or nothing) and the revision it was read at, or why there is none. */
export type ReadAnswer<T> =
  | { readonly status: 'ok'; readonly value: T; readonly revision: number; readonly stale: boolean }
  | { readonly status: 'notLeader'; readonly leader: string }
  | { readonly status: 'timeout' }
  /** A read at a revision below the compaction point (etcd's ErrCompacted). */
  | { readonly status: 'compacted'; readonly compacted: number }
  /** A read at a revision past this replica's (etcd's ErrFutureRev). */
  | { readonly status: 'futureRevision'; readonly revision: number };

/** How long an automatic compaction may take to commit before the leader tries again. */
const COMPACT_TIMEOUT_MS = 10_000;

/**
 * One replica of the key-value store: a Raft node whose state machine is
 * the KvStateMachine over this object's SQLite storage.
 */
export class RaftNode extends NodeObject<KvResult> {
  private kv: KvStateMachine | undefined;
  private compacting = false;

  protected makeStateMachine(sql: Sql): { sm: StateMachine<KvResult>; tables: SnapshotTables } {
    const kv = new SqliteKvStateMachine(sql);
    this.kv = kv;
    kv.onEvents = () => this.maybeCompact(kv);
    return { sm: kv, tables: kv.snapshots };
  }

  /**
   * A key's record, now or as of `revision`. `linearizable` reads go through
   * ReadIndex; `serializable` ones read this replica as it is.
   */
  async get(
    key: string,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision?: number,
  ): Promise<ReadAnswer<KeyValue | undefined>> {
    return this.read(consistency, timeoutMs, revision, (kv) =>
      revision === undefined ? kv.get(key) : kv.getAt(key, revision),
    );
  }

  async range(
    query: RangeQuery,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision?: number,
  ): Promise<ReadAnswer<RangeReadResult>> {
    return this.read(consistency, timeoutMs, revision, (kv) =>
      revision === undefined ? kv.range(query) : kv.rangeAt(query, revision),
    );
  }

  private async read<T>(
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    revision: number | undefined,
    fn: (kv: KvStateMachine) => T,
  ): Promise<ReadAnswer<T>> {
    const node = this.node();
    const kv = this.kv as KvStateMachine;
    if (consistency === 'linearizable') {
      const barrier: Timed<{ status: string; leader?: string }> = await this.readBarrier(timeoutMs);
      if (barrier.status === 'notLeader') return { status: 'notLeader', leader: barrier.leader ?? '' };
      if (barrier.status !== 'ready') return { status: 'timeout' };
    }
    // Synchronous from here: (linearizable) applied >= read index, and nothing else runs until we return.
    const why = revision === undefined ? undefined : kv.unreadable(revision);
    if (why === 'compacted') return { status: 'compacted', compacted: kv.compacted() };
    if (why === 'future_revision') return { status: 'futureRevision', revision: kv.revision() };
    const stale = consistency === 'serializable' && node.driver.node.basicStatus().role !== 'leader';
    return { status: 'ok', value: fn(kv), revision: kv.revision(), stale };
  }

  /**
   * The leader keeps HISTORY_KEEP_REVISIONS revisions of history: once the
   * history has grown a tenth past that, it proposes a compaction through the
   * log, so every replica drops the same events. Called after each applied
   * batch; the proposal leaves once this event is done.
   */
  private maybeCompact(kv: KvStateMachine): void {
    const keep = this.settings.historyKeepRevisions;
    if (keep === 0 || this.compacting) return;
    const target = kv.revision() - keep;
    if (target - kv.compacted() < Math.max(1, Math.floor(keep / 10))) return;
    if (this.node().driver.node.basicStatus().role !== 'leader') return;
    this.compacting = true;
    queueMicrotask(() => {
      this.node()
        .propose(encodeCommand({ cmd: { type: 'compact', revision: target } }), COMPACT_TIMEOUT_MS)
        .catch((e: unknown) => console.warn('automatic compaction failed:', e))
        .finally(() => {
          this.compacting = false;
        });
    });
  }
}
