import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { beforeRevision, type KvEvent, type KvMeta } from '../../src/kv/index.ts';
import { encodeBatch } from '../../src/storage/history-segment.ts';
import type { Sql } from '../../src/storage/index.ts';
import { SqliteKvTable, SqliteLogStore } from '../../src/storage/index.ts';
import { migrate, migrations, SCHEMA_VERSION } from '../../src/storage/schema.ts';
import { nodeSql } from '../support/node-sql.ts';
import { schemaVersion, userTables } from '../support/schema-helpers.ts';

/**
 * Schema upgrades (src/storage/schema.ts), written against `migrations` and
 * `SCHEMA_VERSION` rather than a fixed count: a database created by any older
 * version of the code, holding the data that version wrote, opens with the
 * current code, keeps its data and ends at SCHEMA_VERSION. The same checks run
 * on a Durable Object's SQLite in test/integration/storage.test.ts.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Tables, their columns (name, type, not null, primary key) and indexes: what must match a fresh database. */
function shape(sql: Sql): string[] {
  const out: string[] = [];
  for (const t of [...userTables(sql)].sort()) {
    for (const c of sql.exec(`SELECT name, type, "notnull" AS nn, pk FROM pragma_table_info(?) ORDER BY cid`, t))
      out.push(`${t}.${String(c.name)} ${String(c.type)} nn=${String(c.nn)} pk=${String(c.pk)}`);
  }
  for (const r of sql.exec(
    `SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`,
  ))
    out.push(`index ${String(r.name)} on ${String(r.tbl_name)}`);
  return out;
}

/** Columns of `tables` that a database at the previous version lacks (compared against a fresh one). */
function newColumns(sql: Sql, tables: ReadonlySet<string>): { table: string; name: string }[] {
  const older = nodeSql();
  migrate(older, SCHEMA_VERSION - 1);
  const out: { table: string; name: string }[] = [];
  for (const table of tables) {
    const had = new Set(older.exec('SELECT name FROM pragma_table_info(?)', table).map((c) => String(c.name)));
    for (const c of sql.exec('SELECT name FROM pragma_table_info(?) ORDER BY cid', table))
      if (!had.has(String(c.name))) out.push({ table, name: String(c.name) });
  }
  return out;
}

/** What a database written by the code of `v` holds; `seed` writes it as that code would. */
const OLD = {
  hard: { term: 7, vote: 'node-1', commit: 5 },
  snapshot: { index: 2, term: 3, conf: { voters: ['node-0', 'node-1', 'node-2'], learners: ['node-3'] } },
  entries: [
    { index: 3, term: 3, type: 0, data: 'e3' },
    { index: 4, term: 5, type: 1, data: 'conf4' },
    { index: 5, term: 7, type: 0, data: '' },
    { index: 6, term: 7, type: 0, data: 'e6' },
  ],
  kvs: [
    { key: 'a', value: 'va', create: 1, mod: 3, version: 2 },
    { key: '\u{1f600}', value: '', create: 2, mod: 2, version: 1 },
  ],
  // As code before schema v5 wrote it: no compaction point.
  meta: { revision: 3, applied: 5, conf: { voters: ['node-0', 'node-1', 'node-2'], learners: [] } } as Omit<
    KvMeta,
    'compacted'
  >,
  request: { id: 'req-1', index: 4, revision: 3, fingerprint: 12345, result: 'res' },
  history: [
    {
      type: 'put',
      revision: 3,
      seq: 0,
      kv: { key: 'a', value: enc.encode('va'), createRevision: 1, modRevision: 3, version: 2 },
      prev: { key: 'a', value: enc.encode('v0'), createRevision: 1, modRevision: 1, version: 1 },
    },
  ] as KvEvent[],
};

/** Writes OLD into the tables that exist at this database's version, with the SQL that version's code used. */
function seed(sql: Sql): string[] {
  const have = userTables(sql);
  const wrote: string[] = [];
  sql.transaction(() => {
    if (have.has('node_identity')) {
      sql.exec(`INSERT INTO node_identity (id, name, initial_members) VALUES (0, 'c:node-1', '["node-0","node-1"]')`);
      wrote.push('node_identity');
    }
    if (have.has('raft_state')) {
      const h = OLD.hard;
      sql.exec('UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 0', h.term, h.vote, h.commit);
      wrote.push('raft_state');
    }
    if (have.has('raft_snapshot')) {
      const s = OLD.snapshot;
      sql.exec(
        'UPDATE raft_snapshot SET idx = ?, term = ?, conf = ? WHERE id = 0',
        s.index,
        s.term,
        JSON.stringify(s.conf),
      );
      wrote.push('raft_snapshot');
    }
    if (have.has('raft_log')) {
      for (const e of OLD.entries)
        sql.exec(
          // coalesce: node:sqlite binds an empty TextEncoder array as NULL; the stored value is the empty blob either way.
          "INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, ?, coalesce(?, X''))",
          e.index,
          e.term,
          e.type,
          enc.encode(e.data),
        );
      wrote.push('raft_log');
    }
    if (have.has('kv')) {
      for (const k of OLD.kvs)
        sql.exec(
          "INSERT OR REPLACE INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, coalesce(?, X''), ?, ?, ?)",
          enc.encode(k.key),
          enc.encode(k.value),
          k.create,
          k.mod,
          k.version,
        );
      wrote.push('kv');
    }
    if (have.has('kv_meta')) {
      sql.exec(`INSERT OR REPLACE INTO kv_meta (name, value) VALUES ('state', ?)`, encode({ m: OLD.meta }));
      wrote.push('kv_meta');
    }
    if (have.has('kv_request')) {
      const r = OLD.request;
      sql.exec(
        "INSERT OR REPLACE INTO kv_request (id, idx, revision, fingerprint, result) VALUES (?, ?, ?, ?, coalesce(?, X''))",
        r.id,
        r.index,
        r.revision,
        r.fingerprint,
        enc.encode(r.result),
      );
      wrote.push('kv_request');
    }
    if (have.has('kv_history')) {
      for (const r of encodeBatch(OLD.history))
        sql.exec(
          'INSERT INTO kv_history (first_revision, first_seq, part, last_revision, data) VALUES (?, ?, ?, ?, ?)',
          r.firstRevision,
          r.firstSeq,
          r.part,
          r.lastRevision,
          r.data,
        );
      wrote.push('kv_history');
    }
  });
  return wrote;
}

/** Opens the database with the current code and checks that what `seed` wrote reads back through the current APIs. */
function openAndCheck(sql: Sql, wrote: readonly string[]): void {
  const log = new SqliteLogStore(sql);
  const kv = new SqliteKvTable(sql);
  expect(schemaVersion(sql)).toBe(SCHEMA_VERSION);
  if (wrote.includes('raft_state')) expect(log.initialState().hardState).toEqual(OLD.hard);
  if (wrote.includes('raft_snapshot')) {
    expect(log.snapshot().meta).toEqual(OLD.snapshot);
    expect(log.firstIndex()).toBe(OLD.snapshot.index + 1);
    expect(log.term(OLD.snapshot.index)).toBe(OLD.snapshot.term);
  }
  if (wrote.includes('raft_log')) {
    expect(log.lastIndex()).toBe(6);
    const got = log.entries(3, 7, 1 << 20);
    expect(got.map((e) => [e.index, e.term, e.type, dec.decode(e.data)])).toEqual(
      OLD.entries.map((e) => [e.index, e.term, e.type === 1 ? 'conf' : 'normal', e.data]),
    );
  }
  if (wrote.includes('node_identity'))
    expect(sql.exec('SELECT name, initial_members FROM node_identity WHERE id = 0')[0]).toEqual({
      name: 'c:node-1',
      initial_members: '["node-0","node-1"]',
    });
  if (wrote.includes('kv')) {
    expect(
      kv.range('', undefined).map((x) => [x.key, dec.decode(x.value), x.createRevision, x.modRevision, x.version]),
    ).toEqual(OLD.kvs.map((k) => [k.key, k.value, k.create, k.mod, k.version]));
    // Rows written before leases are attached to none.
    for (const x of kv.range('', undefined)) expect(x).not.toHaveProperty('lease');
  }
  // A meta row without a compaction point: the history begins after its revision.
  if (wrote.includes('kv_meta')) expect(kv.meta()).toEqual({ ...OLD.meta, compacted: OLD.meta.revision + 1 });
  if (wrote.includes('kv_history')) expect(kv.events(beforeRevision(1), 10)).toEqual(OLD.history);
  if (wrote.includes('kv_request')) {
    const r = kv.getRequest(OLD.request.id);
    expect(r && { ...r, result: dec.decode(r.result) }).toEqual(OLD.request);
  }
  // The upgraded database keeps working: the current code writes to every table.
  log.persist({
    entries: [{ index: log.lastIndex() + 1, term: 9, type: 'normal', data: enc.encode('new') }],
    hardState: { term: 9, vote: '', commit: 0 },
  });
  const put9: KvEvent = {
    type: 'put',
    revision: 9,
    seq: 0,
    kv: { key: 'new', value: enc.encode('n'), createRevision: 9, modRevision: 9, version: 1, lease: 70 },
  };
  kv.transaction(() => {
    kv.putLease({ id: 70, ttl: 60, remaining: 0 });
    kv.put(put9.kv);
    kv.appendEvents([put9]);
    kv.setMeta({ revision: 9, applied: 9, conf: undefined, compacted: 2 });
  });
  const again = new SqliteLogStore(sql);
  expect(again.initialState().hardState.term).toBe(9);
  expect(dec.decode(again.entries(again.lastIndex(), again.lastIndex() + 1, 1 << 20)[0]?.data)).toBe('new');
  const kvAgain = new SqliteKvTable(sql);
  expect(kvAgain.get('new')).toEqual(put9.kv);
  expect(kvAgain.leases()).toEqual([{ id: 70, ttl: 60, remaining: 0 }]);
  expect(kvAgain.leaseKeys(70)).toEqual(['new']);
  expect(kvAgain.meta().compacted).toBe(2);
  expect(kvAgain.events(beforeRevision(9), 10)).toEqual([put9]);
}

describe('schema migrations', () => {
  it('has at least the WAL and the kv tables, and SCHEMA_VERSION counts the migrations', () => {
    expect(SCHEMA_VERSION).toBe(migrations.length);
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
    const sql = nodeSql();
    expect(migrate(sql)).toBe(SCHEMA_VERSION);
    const t = userTables(sql);
    for (const name of ['schema_version', 'raft_state', 'raft_log', 'raft_snapshot', 'kv', 'kv_meta', 'kv_request'])
      expect(t).toContain(name);
  });

  it('migrate(sql, v) stops at v, and each step adds something', () => {
    const sql = nodeSql();
    let prev = shape(sql);
    for (let v = 1; v <= SCHEMA_VERSION; v++) {
      expect(migrate(sql, v)).toBe(v);
      expect(schemaVersion(sql)).toBe(v);
      const now = shape(sql);
      expect(now, `migration ${v} changes the schema`).not.toEqual(prev);
      prev = now;
    }
  });

  for (let v = 1; v <= SCHEMA_VERSION; v++) {
    const label = v === SCHEMA_VERSION ? `the current version (v${v}) reopens` : `a v${v} database upgrades`;
    it(`${label}: its data reads back through the current APIs, at schema_version ${SCHEMA_VERSION}`, () => {
      const sql = nodeSql();
      expect(migrate(sql, v)).toBe(v);
      const wrote = seed(sql);
      expect(wrote).toContain('raft_log');
      openAndCheck(sql, wrote);
      // Same tables, columns and indexes as a database created at the current version.
      const fresh = nodeSql();
      migrate(fresh);
      expect(shape(sql)).toEqual(shape(fresh));
    });
  }

  it('a v4 database (kv, a meta row without compacted) upgrades to v5: its history begins after its revision, and it takes events', () => {
    const sql = nodeSql();
    expect(migrate(sql, 4)).toBe(4);
    expect(userTables(sql).has('kv_history')).toBe(false);
    const wrote = seed(sql);
    expect(wrote).toEqual(expect.arrayContaining(['kv', 'kv_meta']));
    // The meta row exactly as v4 code stored it: {m: {revision, applied, conf}}.
    expect(Object.keys(OLD.meta).sort()).toEqual(['applied', 'conf', 'revision']);
    const kv = new SqliteKvTable(sql);
    expect(schemaVersion(sql)).toBe(SCHEMA_VERSION);
    for (const t of ['kv_history', 'kv_export_history', 'kv_import_history']) expect(userTables(sql)).toContain(t);
    expect(kv.meta()).toEqual({ ...OLD.meta, compacted: OLD.meta.revision + 1 });
    expect(kv.events(beforeRevision(1), 10)).toEqual([]);
    expect(kv.get('a')?.modRevision).toBe(3);
    // The first apply after the upgrade records its events (with their prev records) beside the old keys.
    const a = kv.get('a');
    if (!a) throw new Error('key a missing');
    const put4: KvEvent = {
      type: 'put',
      revision: 4,
      seq: 0,
      kv: { ...a, value: enc.encode('va2'), modRevision: 4, version: a.version + 1 },
      prev: a,
    };
    const del4: KvEvent = {
      type: 'delete',
      revision: 4,
      seq: 1,
      kv: { key: '\u{1f600}', value: new Uint8Array(0), createRevision: 0, modRevision: 4, version: 0 },
      prev: kv.get('\u{1f600}'),
    };
    kv.transaction(() => {
      kv.put(put4.kv);
      kv.delete('\u{1f600}');
      kv.appendEvents([put4, del4]);
      kv.setMeta({ ...kv.meta(), revision: 4, applied: 6 });
    });
    const again = new SqliteKvTable(sql);
    expect(again.meta()).toEqual({ ...OLD.meta, revision: 4, applied: 6, compacted: OLD.meta.revision + 1 });
    expect(again.events(beforeRevision(1), 10)).toEqual([put4, del4]);
    expect(sql.exec('SELECT count(*) AS n FROM kv_history')[0]?.n).toBe(1);
  });

  it('a v5 database upgrades to v6: its records have no lease, the index leaves them out, and it takes leases', () => {
    const sql = nodeSql();
    expect(migrate(sql, 5)).toBe(5);
    expect(seed(sql)).toContain('kv');
    const kv = new SqliteKvTable(sql);
    expect(schemaVersion(sql)).toBe(SCHEMA_VERSION);
    for (const t of ['kv_lease', 'kv_export_lease', 'kv_import_lease']) expect(userTables(sql)).toContain(t);
    for (const t of ['kv', 'kv_export', 'kv_import'])
      expect(sql.exec(`SELECT name FROM pragma_table_info(?) WHERE name = 'lease'`, t)).toHaveLength(1);
    expect(sql.exec('SELECT DISTINCT lease FROM kv')).toEqual([{ lease: 0 }]);
    expect(kv.range('', undefined).map((x) => x.lease)).toEqual([undefined, undefined]);
    expect(kv.leases()).toEqual([]);
    // The index is partial: the old rows (lease 0) are not in it, so rewriting them writes no index row.
    expect(String(sql.exec(`SELECT sql FROM sqlite_master WHERE name = 'kv_lease_keys'`)[0]?.sql)).toMatch(
      /WHERE lease != 0$/,
    );
    // And leaseKeys' query is one the planner can answer from it.
    const queries: string[] = [];
    const recording: Sql = {
      exec: (q, ...params) => {
        queries.push(q);
        return sql.exec(q, ...params);
      },
      transaction: (fn) => sql.transaction(fn),
    };
    new SqliteKvTable(recording).leaseKeys(5, 10);
    const plan = sql.db.prepare(`EXPLAIN QUERY PLAN ${queries[queries.length - 1]}`).all(5, 10) as { detail: string }[];
    expect(plan.map((r) => r.detail).join('; ')).toMatch(/^SEARCH kv USING COVERING INDEX kv_lease_keys/);
    // The first apply after the upgrade attaches an old key to a new lease.
    const a = kv.get('a');
    if (!a) throw new Error('key a missing');
    kv.transaction(() => {
      kv.putLease({ id: 2 ** 50, ttl: 10, remaining: 0 });
      kv.put({ ...a, value: enc.encode('va2'), modRevision: 4, version: a.version + 1, lease: 2 ** 50 });
    });
    const again = new SqliteKvTable(sql);
    expect(again.leaseKeys(2 ** 50)).toEqual(['a']);
    expect(again.get('\u{1f600}')?.lease).toBeUndefined();
  });

  it('migrating twice is a no-op (and a lower target never downgrades)', () => {
    const sql = nodeSql();
    migrate(sql);
    seed(sql);
    const before = {
      shape: shape(sql),
      log: sql.exec('SELECT * FROM raft_log ORDER BY idx'),
      kv: sql.exec('SELECT * FROM kv ORDER BY key'),
    };
    expect(migrate(sql)).toBe(SCHEMA_VERSION);
    expect(migrate(sql)).toBe(SCHEMA_VERSION);
    expect(migrate(sql, 1)).toBe(SCHEMA_VERSION);
    new SqliteLogStore(sql);
    new SqliteKvTable(sql);
    expect(schemaVersion(sql)).toBe(SCHEMA_VERSION);
    expect(shape(sql)).toEqual(before.shape);
    expect(sql.exec('SELECT * FROM raft_log ORDER BY idx')).toEqual(before.log);
    expect(sql.exec('SELECT * FROM kv ORDER BY key')).toEqual(before.kv);
  });

  it('a database newer than the code is refused with a clear error, and left untouched', () => {
    const sql = nodeSql();
    migrate(sql);
    seed(sql);
    sql.exec('UPDATE schema_version SET version = ? WHERE id = 0', SCHEMA_VERSION + 1);
    const before = shape(sql);
    const newer = new RegExp(`v${SCHEMA_VERSION + 1}.*newer than this code.*v${SCHEMA_VERSION}`);
    expect(() => migrate(sql)).toThrow(newer);
    expect(() => new SqliteLogStore(sql)).toThrow(newer);
    expect(() => new SqliteKvTable(sql)).toThrow(newer);
    expect(schemaVersion(sql)).toBe(SCHEMA_VERSION + 1);
    expect(shape(sql)).toEqual(before);
  });

  it('a migration that fails leaves the database at the previous version', () => {
    // Every step runs in its own transaction: a half-applied step must not be recorded.
    const sql = nodeSql();
    migrate(sql, SCHEMA_VERSION - 1);
    const before = shape(sql);
    // Make the last step fail midway: one of the tables it creates already exists as a view.
    const probe = nodeSql();
    migrate(probe, SCHEMA_VERSION - 1);
    const had = userTables(probe);
    migrate(probe);
    const added = [...userTables(probe)].filter((t) => !had.has(t)).sort();
    const blocker = added[added.length - 1];
    if (blocker !== undefined) {
      sql.exec(`CREATE VIEW "${blocker}" AS SELECT 1 AS x`);
      expect(() => migrate(sql)).toThrow();
      expect(schemaVersion(sql)).toBe(SCHEMA_VERSION - 1);
      sql.exec(`DROP VIEW "${blocker}"`);
    } else {
      // The last step only adds columns (v4: raft_log.n): block it with a column of that name already there.
      const column = newColumns(probe, had).pop();
      if (!column) throw new Error('the last migration neither adds a table nor a column');
      sql.exec(`ALTER TABLE "${column.table}" ADD COLUMN "${column.name}" TEXT`);
      expect(() => migrate(sql)).toThrow(/duplicate column/);
      expect(schemaVersion(sql)).toBe(SCHEMA_VERSION - 1);
      sql.exec(`ALTER TABLE "${column.table}" DROP COLUMN "${column.name}"`);
    }
    expect(shape(sql)).toEqual(before);
    expect(migrate(sql)).toBe(SCHEMA_VERSION);
  });
});
