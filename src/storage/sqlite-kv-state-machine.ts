import { KvStateMachine, type KvStateMachineOptions } from '../kv/index.ts';
import type { Snapshot } from '../raft/index.ts';
import { decodeSnapshotRef, SnapshotTables } from './snapshot-tables.ts';
import type { Sql } from './sql.ts';
import { SqliteKvTable } from './sqlite-kv-table.ts';

/**
 * The key-value state machine of a Durable Object. Its SQLite tables are
 * the snapshot, so compaction copies nothing (`snapshot()` is empty), and a
 * snapshot's data names a staged import (`SnapshotTables`) that `restore`
 * swaps in (keys, requests and history): the state never passes through
 * memory whole, however large.
 */
export class SqliteKvStateMachine extends KvStateMachine {
  readonly snapshots: SnapshotTables;
  private readonly kvTable: SqliteKvTable;

  constructor(sql: Sql, opts: KvStateMachineOptions = {}) {
    const table = new SqliteKvTable(sql);
    super(table, opts);
    this.kvTable = table;
    this.snapshots = new SnapshotTables(sql);
  }

  override snapshot(): Uint8Array {
    return new Uint8Array(0);
  }

  /** Installs the staged import the snapshot names; throws, changing nothing, if it is missing or of another index. */
  override restore(snapshot: Snapshot): void {
    const session = decodeSnapshotRef(snapshot.data);
    const point = session === undefined ? undefined : this.snapshots.completeImport(session);
    if (session === undefined || !point || point.index !== snapshot.meta.index) {
      throw new Error(`snapshot at ${snapshot.meta.index}: no complete staged import for it`);
    }
    this.kvTable.transaction(() => {
      this.snapshots.install(session);
      this.kvTable.reload();
      // The installed meta row is the leader's as of the export: keep its revision and compaction point.
      const { revision, compacted } = this.kvTable.meta();
      this.kvTable.setMeta({ revision, applied: snapshot.meta.index, conf: snapshot.meta.conf, compacted });
    });
    this.onRestored?.();
  }
}
