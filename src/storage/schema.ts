import type { Sql } from './sql.ts';

/**
 * The node's SQLite schema, as forward-only migrations. Version N is the
 * state after migrations[0..N-1]; a database remembers its version in
 * `schema_version` and is upgraded step by step when opened.
 */
export const migrations: readonly ((sql: Sql) => void)[] = [
  // v1: the node's name and the Raft WAL.
  (sql) => {
    // The node's name, and the initial members it was bootstrapped with (JSON; empty: from the config).
    sql.exec(`CREATE TABLE node_identity (
      id INTEGER PRIMARY KEY CHECK (id = 0), name TEXT NOT NULL, initial_members TEXT NOT NULL DEFAULT '')`);
    sql.exec(`CREATE TABLE raft_state (
      id INTEGER PRIMARY KEY CHECK (id = 0),
      term INTEGER NOT NULL, vote TEXT NOT NULL, commit_index INTEGER NOT NULL)`);
    sql.exec(`INSERT INTO raft_state (id, term, vote, commit_index) VALUES (0, 0, '', 0)`);
    sql.exec(`CREATE TABLE raft_log (
      idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL)`);
    sql.exec(`CREATE TABLE raft_snapshot (
      id INTEGER PRIMARY KEY CHECK (id = 0),
      idx INTEGER NOT NULL, term INTEGER NOT NULL, conf TEXT NOT NULL)`);
    sql.exec(`INSERT INTO raft_snapshot (id, idx, term, conf) VALUES (0, 0, 0, '{"voters":[],"learners":[]}')`);
  },
  // v2: the key-value state machine. WITHOUT ROWID: one b-tree row per key, so a put writes one row.
  (sql) => {
    sql.exec(`CREATE TABLE kv (
      key BLOB PRIMARY KEY, value BLOB NOT NULL,
      create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID`);
    sql.exec(`CREATE TABLE kv_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`);
    // Results of requests with an idempotency key, so a retried write applies once.
    sql.exec(`CREATE TABLE kv_request (
      id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, revision INTEGER NOT NULL,
      fingerprint INTEGER NOT NULL, result BLOB NOT NULL)`);
  },
  // v3: snapshot streaming. A leader exports a copy of the kv tables at one
  // applied index (export tables) and streams it in chunks; a follower stages
  // what it receives (import tables) and swaps it in when the snapshot installs.
  (sql) => {
    for (const side of ['export', 'import']) {
      sql.exec(`CREATE TABLE kv_${side} (
        key BLOB PRIMARY KEY, value BLOB NOT NULL,
        create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID`);
      sql.exec(`CREATE TABLE kv_${side}_request (
        id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, revision INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL, result BLOB NOT NULL)`);
    }
    // The export's point: log index and term, and the kv meta row (revision, conf) as of it.
    sql.exec(`CREATE TABLE snapshot_export (
      id INTEGER PRIMARY KEY CHECK (id = 0), generation INTEGER NOT NULL,
      idx INTEGER NOT NULL, term INTEGER NOT NULL, conf TEXT NOT NULL, meta BLOB NOT NULL)`);
    // The import in progress: whose session, the next chunk expected, and the meta once complete.
    sql.exec(`CREATE TABLE snapshot_import (
      id INTEGER PRIMARY KEY CHECK (id = 0), session TEXT NOT NULL, next_seq INTEGER NOT NULL,
      complete INTEGER NOT NULL, idx INTEGER NOT NULL, term INTEGER NOT NULL, meta BLOB NOT NULL)`);
  },
  // v4: raft_log rows become segments, n consecutive entries from idx (log-segment.ts), so a Ready
  // of many entries writes one row. Existing rows hold one entry each: n = 1 keeps them valid as they are.
  (sql) => {
    sql.exec('ALTER TABLE raft_log ADD COLUMN n INTEGER NOT NULL DEFAULT 1');
  },
  // v5: the history of changes (history-segment.ts), one row per applied batch (more for a batch over
  // ~1 MiB), keyed by its first event's position; WITHOUT ROWID and no other index, so an insert or a
  // delete writes one row. Export and import twins carry it in snapshots with kv. Meta rows of older
  // code lack `compacted`: they read as 0.
  (sql) => {
    for (const name of ['kv_history', 'kv_export_history', 'kv_import_history']) {
      sql.exec(`CREATE TABLE ${name} (
        first_revision INTEGER NOT NULL, first_seq INTEGER NOT NULL, part INTEGER NOT NULL,
        last_revision INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (first_revision, first_seq, part)) WITHOUT ROWID`);
    }
  },
  // v6: leases. A record's lease (0: none, so existing rows read as none) and the leases themselves
  // (id, granted ttl, checkpointed remaining ttl). kv_lease_keys finds a lease's keys (revoke, expiry); it is
  // partial, so a put without a lease writes no index row (Durable Objects bill index rows written too).
  // Export and import twins carry both in snapshots; they need no index.
  (sql) => {
    for (const name of ['kv', 'kv_export', 'kv_import'])
      sql.exec(`ALTER TABLE ${name} ADD COLUMN lease INTEGER NOT NULL DEFAULT 0`);
    sql.exec('CREATE INDEX kv_lease_keys ON kv (lease, key) WHERE lease != 0');
    for (const name of ['kv_lease', 'kv_export_lease', 'kv_import_lease'])
      sql.exec(`CREATE TABLE ${name} (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, remaining INTEGER NOT NULL)`);
  },
  // v7: the lease deadlines a leader kept when it went quiet (node-local, never in a snapshot), so a
  // leader whose memory is reset while the cluster sleeps expires its leases on time (lease-clock-store.ts).
  (sql) => {
    sql.exec(`CREATE TABLE lease_clock (
      id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, data BLOB NOT NULL)`);
  },
];

export const SCHEMA_VERSION = migrations.length;

/** The `lease` column (kv and its twins, since v6) of a record attached to no lease: lease ids are positive. */
export const NO_LEASE = 0;

/** Brings the database up to `target` (default: the latest), one migration per transaction. */
export function migrate(sql: Sql, target = SCHEMA_VERSION): number {
  sql.exec(
    'CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL)',
  );
  let version = Number(sql.exec('SELECT version FROM schema_version WHERE id = 0')[0]?.version ?? 0);
  if (version > SCHEMA_VERSION)
    throw new Error(`schema: database is at v${version}, newer than this code (v${SCHEMA_VERSION})`);
  while (version < target) {
    const step = migrations[version];
    if (!step) break;
    const next = version + 1;
    sql.transaction(() => {
      step(sql);
      sql.exec('INSERT OR REPLACE INTO schema_version (id, version) VALUES (0, ?)', next);
    });
    version = next;
  }
  return version;
}
