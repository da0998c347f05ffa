import type { StateMachine } from '../driver/index.ts';
import type { KeyValue, KvResult, KvStateMachine, RangeQuery, RangeReadResult } from '../kv/index.ts';
import type { SnapshotTables, Sql } from '../storage/index.ts';
import { SqliteKvStateMachine } from '../storage/index.ts';
import { NodeObject } from './node-object.ts';
import type { Timed } from './runtime.ts';

/** The answer to a read: the value (or nothing) and the revision it was read at, or why there is none. */
export type ReadAnswer<T> =
  | { readonly status: 'ok'; readonly value: T; readonly revision: number; readonly stale: boolean }
  | { readonly status: 'notLeader'; readonly leader: string }
  | { readonly status: 'timeout' };

/**
 * One replica of the key-value store: a Raft node whose state machine is
 * the KvStateMachine over this object's SQLite storage.
 */
export class RaftNode extends NodeObject<KvResult> {
  private kv: KvStateMachine | undefined;

  protected makeStateMachine(sql: Sql): { sm: StateMachine<KvResult>; tables: SnapshotTables } {
    const kv = new SqliteKvStateMachine(sql);
    this.kv = kv;
    return { sm: kv, tables: kv.snapshots };
  }

  /** A key's record. `linearizable` reads go through ReadIndex; `serializable` ones read this replica as it is. */
  async get(
    key: string,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
  ): Promise<ReadAnswer<KeyValue | undefined>> {
    return this.read(consistency, timeoutMs, (kv) => kv.get(key));
  }

  async range(
    query: RangeQuery,
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
  ): Promise<ReadAnswer<RangeReadResult>> {
    return this.read(consistency, timeoutMs, (kv) => kv.range(query));
  }

  private async read<T>(
    consistency: 'linearizable' | 'serializable',
    timeoutMs: number,
    fn: (kv: KvStateMachine) => T,
  ): Promise<ReadAnswer<T>> {
    const node = this.node();
    const kv = this.kv as KvStateMachine;
    if (consistency === 'serializable') {
      return {
        status: 'ok',
        value: fn(kv),
        revision: kv.revision(),
        stale: node.driver.node.basicStatus().role !== 'leader',
      };
    }
    const barrier: Timed<{ status: string; leader?: string }> = await this.readBarrier(timeoutMs);
    if (barrier.status === 'notLeader') return { status: 'notLeader', leader: barrier.leader ?? '' };
    if (barrier.status !== 'ready') return { status: 'timeout' };
    // Synchronous from here: applied >= read index, and nothing else runs until we return.
    return { status: 'ok', value: fn(kv), revision: kv.revision(), stale: false };
  }
}
