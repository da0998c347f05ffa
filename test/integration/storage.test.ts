import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { encode } from '@msgpack/msgpack';
import { aroundEach, describe, expect, it } from 'vitest';
import { beforeRevision, type KeyValue, type KvEvent, type KvMeta } from '../../src/kv/index.ts';
import { durableObjectSql } from '../../src/node/do-sql.ts';
import type { RaftNode } from '../../src/node/raft-node.ts';
import type { Entry } from '../../src/raft/index.ts';
import { type Sql, SqliteKvTable, SqliteLogStore, type SqlRow, type SqlValue } from '../../src/storage/index.ts';
import { decodeSegment } from '../../src/storage/log-segment.ts';
import { migrate, SCHEMA_VERSION } from '../../src/storage/schema.ts';
import { kvTableSuite } from '../kv/table-suite.ts';
import { entry, range, segmentRows, show } from '../support/log-entries.ts';
import { logStoreSuite } from '../support/log-store-suite.ts';
import { schemaVersion, userTables } from '../support/schema-helpers.ts';
import { command, localValue, stub as nodeStub, waitFor } from './cluster-helpers.ts';

/**
 * The storage layer on a real Durable Object's SQLite (workerd), not only on
 * node:sqlite: the shared LogStore and KvTable conformance suites, atomicity
 * of one Ready's write, and schema upgrades of databases written by older code.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A fresh RaftNode object (never started: its database is empty until someone migrates it). */
function freshStub(prefix = 'storage'): DurableObjectStub {
  return env.RAFT_NODE.getByName(`${prefix}-${crypto.randomUUID()}`);
}

/** Runs `fn` inside a fresh Durable Object with the Sql interface over its storage. */
function inFreshObject<T>(fn: (sql: Sql, storage: DurableObjectStorage) => T, prefix?: string): Promise<T> {
  return runInDurableObject(freshStub(prefix), (_instance, state) =>
    fn(durableObjectSql(state.storage), state.storage),
  );
}

// ---------------------------------------------------------------------------
// The conformance suites. Their tests are synchronous and call `make()` inside
// the test body, so the adapter runs each test's body inside runInDurableObject
// on a fresh object (aroundEach), and `make()` builds over that object's storage.

let current: { sql: Sql; made: number } | undefined;

function currentSql(): Sql {
  if (!current) throw new Error('storage adapter: make() called outside a test running inside a Durable Object');
  // Each make() must see an empty database: the adapter gives one object per test.
  if (++current.made > 1) throw new Error('storage adapter: make() called twice in one test');
  return current.sql;
}

describe('on a Durable Object: the shared storage suites', () => {
  aroundEach(async (runTest) => {
    await runInDurableObject(freshStub(), async (_instance, state) => {
      current = { sql: durableObjectSql(state.storage), made: 0 };
      try {
        await runTest();
      } finally {
        current = undefined;
      }
    });
  });

  logStoreSuite('sqlite (Durable Object)', () => {
    const sql = currentSql();
    return { store: new SqliteLogStore(sql), reopen: () => new SqliteLogStore(sql) };
  });

  kvTableSuite('sqlite (Durable Object)', () => new SqliteKvTable(currentSql()));
});

// ---------------------------------------------------------------------------

/** The entries raft_log holds, read from its rows directly (each row a segment of n entries), as `index/term/data`. */
function logRows(sql: Sql): string[] {
  return show(
    sql.exec('SELECT idx, n, term, type, data FROM raft_log ORDER BY idx').flatMap((r) => decodeSegment(r).entries),
  );
}

describe('on a Durable Object: one Ready is one atomic write', () => {
  it('append + truncate of a conflicting suffix + hard state commit together', async () => {
    await inFreshObject((sql) => {
      const store = new SqliteLogStore(sql);
      store.persist({ entries: range(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 2 } });
      store.persist({ entries: [entry(4, 2, 'x4'), entry(5, 2, 'x5')], hardState: { term: 2, vote: 'b', commit: 4 } });
      const again = new SqliteLogStore(sql);
      expect(logRows(sql)).toEqual(['1/1/e1', '2/1/e2', '3/1/e3', '4/2/x4', '5/2/x5']);
      // One row per batch: the first cut to its prefix, the second the new entries.
      expect(segmentRows(sql)).toEqual(['1+3', '4+2']);
      expect(again.lastIndex()).toBe(5);
      expect(again.initialState().hardState).toEqual({ term: 2, vote: 'b', commit: 4 });
    });
  });

  it('a throw inside the transactionSync rolls back the append, the truncation and the hard state', async () => {
    await inFreshObject((sql) => {
      const store = new SqliteLogStore(sql);
      store.persist({ entries: range(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 2 } });
      const before = logRows(sql);
      // The node's Ready loop: persist (and apply) inside one outer transaction; something after it throws.
      expect(() =>
        sql.transaction(() => {
          store.persist({
            entries: [entry(4, 2, 'x4'), entry(5, 2, 'x5')],
            hardState: { term: 2, vote: 'b', commit: 4 },
          });
          // Inside the transaction the write is visible...
          expect(logRows(sql)).toEqual(['1/1/e1', '2/1/e2', '3/1/e3', '4/2/x4', '5/2/x5']);
          throw new Error('crash after persist');
        }),
      ).toThrow('crash after persist');
      // ...and after the throw none of it is: the truncated suffix is back, the new entries and term are gone.
      expect(logRows(sql)).toEqual(before);
      const again = new SqliteLogStore(sql);
      expect(again.lastIndex()).toBe(6);
      expect(again.term(4)).toBe(1);
      expect(again.initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 2 });
    });
  });

  it('a statement failing midway through persist (after the truncation and some inserts) leaves nothing', async () => {
    await inFreshObject((sql) => {
      const store = new SqliteLogStore(sql);
      store.persist({ entries: range(1, 6, 1), hardState: { term: 1, vote: 'a', commit: 2 } });
      const before = logRows(sql);
      // The hard state is the last statement persist runs: fail it, after the DELETE and the INSERTs ran.
      sql.exec(`CREATE TRIGGER refuse_term_13 BEFORE UPDATE ON raft_state WHEN NEW.term = 13
        BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`);
      expect(() =>
        store.persist({
          entries: [entry(3, 13, 'y3'), entry(4, 13, 'y4')],
          hardState: { term: 13, vote: 'c', commit: 2 },
        }),
      ).toThrow(/refused by test trigger/);
      expect(logRows(sql)).toEqual(before);
      // A failed row INSERT midway rolls back too: after the cut inside the 1..6 row (rewritten to 1..1) and
      // two inserts, the batch's third row fails. An entry past the 256 KiB segment cap gets a row of its own,
      // so this batch is three rows: [z2], [big3], [poison].
      sql.exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON raft_log WHEN NEW.data = CAST('poison' AS BLOB)
        BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END`);
      const big3: Entry = { index: 3, term: 14, type: 'normal', data: new Uint8Array(300 * 1024) };
      expect(() =>
        store.persist({
          entries: [entry(2, 14, 'z2'), big3, entry(4, 14, 'poison')],
          hardState: { term: 14, vote: '', commit: 1 },
        }),
      ).toThrow(/poisoned entry/);
      expect(logRows(sql)).toEqual(before);
      expect(segmentRows(sql)).toEqual(['1+6']);
      const again = new SqliteLogStore(sql);
      expect(again.lastIndex()).toBe(6);
      expect(again.initialState().hardState).toEqual({ term: 1, vote: 'a', commit: 2 });
    });
  });

  it('a kv apply and the log write in one transaction roll back together', async () => {
    await inFreshObject((sql) => {
      const log = new SqliteLogStore(sql);
      const kv = new SqliteKvTable(sql);
      log.persist({ entries: range(1, 2, 1), hardState: { term: 1, vote: '', commit: 0 } });
      expect(() =>
        sql.transaction(() => {
          log.persist({ entries: [entry(3, 1)], hardState: { term: 1, vote: '', commit: 3 } });
          kv.transaction(() => {
            kv.put({ key: 'k', value: enc.encode('v'), createRevision: 1, modRevision: 1, version: 1 });
            kv.setMeta({ revision: 1, applied: 3, conf: undefined, compacted: 0 });
          });
          throw new Error('boom');
        }),
      ).toThrow('boom');
      const kv2 = new SqliteKvTable(sql);
      expect(kv2.get('k')).toBeUndefined();
      expect(kv2.meta().applied).toBe(0);
      expect(new SqliteLogStore(sql).lastIndex()).toBe(2);
    });
  });
});

// ---------------------------------------------------------------------------
// What the history costs on a Durable Object, as the platform counts rows written (index rows included).

/** The Sql interface over a Durable Object's storage, summing each statement's rows written as its cursor reports them. */
function countingSql(storage: DurableObjectStorage): Sql & { written: number } {
  let depth = 0;
  const out = {
    written: 0,
    exec(query: string, ...params: SqlValue[]): SqlRow[] {
      const cursor = storage.sql.exec(query, ...params);
      const rows = cursor.toArray() as SqlRow[];
      out.written += cursor.rowsWritten;
      return rows;
    },
    transaction<T>(fn: () => T): T {
      if (depth > 0) return fn();
      depth++;
      try {
        return storage.transactionSync(fn);
      } finally {
        depth--;
      }
    },
  };
  return out;
}

describe('on a Durable Object: rows written by the history', () => {
  it('a batch of 50 small events writes one row; compacting it deletes one', async () => {
    await inFreshObject((_sql, storage) => {
      const sql = countingSql(storage);
      const t = new SqliteKvTable(sql);
      const events = Array.from(
        { length: 50 },
        (_, i): KvEvent => ({
          type: 'put',
          revision: 1 + Math.floor(i / 5),
          seq: i % 5,
          kv: { key: `key-${i}`, value: enc.encode(`value-${i}`), createRevision: 1, modRevision: 1, version: 1 },
        }),
      );
      sql.written = 0;
      t.appendEvents(events);
      expect(sql.written).toBe(1);
      expect(sql.exec('SELECT count(*) AS n FROM kv_history')[0]?.n).toBe(1);
      t.appendEvents([]);
      expect(sql.written).toBe(1);
      expect(t.events(beforeRevision(1), 100)).toEqual(events);
      sql.written = 0;
      t.compactEvents(11);
      expect(sql.written).toBe(1);
      expect(t.events(beforeRevision(1), 100)).toEqual([]);
    });
  });

  it('an event with a 1 MiB value and a 1 MiB prev fits in rows under the 2 MB limit', async () => {
    await inFreshObject((_sql, storage) => {
      const sql = countingSql(storage);
      const t = new SqliteKvTable(sql);
      const key = 'k'.repeat(4096);
      const prev: KeyValue = {
        key,
        value: new Uint8Array(1 << 20).fill(1),
        createRevision: 1,
        modRevision: 1,
        version: 1,
      };
      const event: KvEvent = {
        type: 'put',
        revision: 2,
        seq: 0,
        kv: { key, value: new Uint8Array(1 << 20).fill(2), createRevision: 1, modRevision: 2, version: 2 },
        prev,
      };
      sql.written = 0;
      t.appendEvents([event]);
      expect(sql.written).toBe(2);
      expect(t.events(beforeRevision(2), 1)).toEqual([event]);
    });
  });
});

describe('on a Durable Object: rows written by leases', () => {
  const record = (key: string, lease?: number): KeyValue => ({
    key,
    value: enc.encode('v'),
    createRevision: 1,
    modRevision: 1,
    version: 1,
    ...(lease === undefined ? {} : { lease }),
  });

  it('a put without a lease writes as many rows as before leases (v5): the partial index gets none', async () => {
    // What v5 code ran for a put and a delete, on a database at v5.
    const before = await inFreshObject((_sql, storage) => {
      const sql = countingSql(storage);
      migrate(sql, 5);
      const put = () =>
        sql.exec(
          'INSERT OR REPLACE INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, ?, 1, 1, 1)',
          enc.encode('a'),
          enc.encode('v'),
        );
      return rowsOf(sql, [put, put, () => sql.exec('DELETE FROM kv WHERE key = ? RETURNING key', enc.encode('a'))]);
    });
    const now = await inFreshObject((_sql, storage) => {
      const sql = countingSql(storage);
      const t = new SqliteKvTable(sql);
      // A key on a lease beside it: its index row is no plain put's business.
      t.put(record('b', 5));
      return rowsOf(sql, [() => t.put(record('a')), () => t.put(record('a')), () => t.delete('a')]);
    });
    expect(before).toEqual([1, 1, 1]);
    expect(now).toEqual(before);
  });

  it('a put with a lease writes its index row too; a lease is one row', async () => {
    await inFreshObject((_sql, storage) => {
      const sql = countingSql(storage);
      const t = new SqliteKvTable(sql);
      const rows = rowsOf(sql, [
        () => t.putLease({ id: 5, ttl: 10, remaining: 0 }),
        () => t.putLease({ id: 5, ttl: 10, remaining: 3 }),
        () => t.put(record('a', 5)),
        () => t.put(record('a')),
        () => t.deleteLease(5),
      ]);
      expect(rows).toEqual([1, 1, 2, 1, 1]);
      expect(t.leaseKeys(5)).toEqual([]);
    });
  });
});

/** The rows each of `steps` writes, in order. */
function rowsOf(sql: { written: number }, steps: (() => unknown)[]): number[] {
  return steps.map((step) => {
    sql.written = 0;
    step();
    return sql.written;
  });
}

// ---------------------------------------------------------------------------
// Schema upgrades on a Durable Object (the node:sqlite twin is test/storage/schema.test.ts).

const OLD_HARD = { term: 7, vote: 'node-1', commit: 4 };
const OLD_SNAP = { index: 2, term: 3, conf: { voters: ['node-0', 'node-1', 'node-2'], learners: [] } };
/** The meta row as code before schema v5 wrote it: no compaction point. */
const OLD_META: Omit<KvMeta, 'compacted'> = { revision: 2, applied: 4, conf: OLD_SNAP.conf };

/** Writes into the tables that exist at this database's version, with the SQL that version's code used. */
function seedOld(sql: Sql): Set<string> {
  const have = userTables(sql);
  sql.transaction(() => {
    if (have.has('raft_state'))
      sql.exec('UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 0', 7, 'node-1', 4);
    if (have.has('raft_snapshot'))
      sql.exec('UPDATE raft_snapshot SET idx = 2, term = 3, conf = ? WHERE id = 0', JSON.stringify(OLD_SNAP.conf));
    if (have.has('raft_log'))
      for (const [i, t, d] of [
        [3, 3, 'e3'],
        [4, 7, 'e4'],
        [5, 7, 'e5'],
      ] as const)
        sql.exec('INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, 0, ?)', i, t, enc.encode(d));
    if (have.has('kv'))
      sql.exec(
        'INSERT INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, ?, 1, 2, 2)',
        enc.encode('k'),
        enc.encode('v'),
      );
    if (have.has('kv_meta'))
      sql.exec(
        `INSERT INTO kv_meta (name, value) VALUES ('state', ?)`,
        encode({ m: OLD_META }, { ignoreUndefined: true }),
      );
  });
  return have;
}

describe('on a Durable Object: schema upgrades', () => {
  for (let v = 1; v < SCHEMA_VERSION; v++) {
    it(`a database created at v${v} opens with the current code (v${SCHEMA_VERSION}) and keeps its data`, async () => {
      await inFreshObject((sql) => {
        expect(migrate(sql, v)).toBe(v);
        expect(schemaVersion(sql)).toBe(v);
        const had = seedOld(sql);
        expect(had.has('raft_log')).toBe(true);
        const log = new SqliteLogStore(sql);
        const kv = new SqliteKvTable(sql);
        expect(schemaVersion(sql)).toBe(SCHEMA_VERSION);
        expect(log.initialState().hardState).toEqual(OLD_HARD);
        expect(log.snapshot().meta).toEqual(OLD_SNAP);
        expect([log.firstIndex(), log.lastIndex()]).toEqual([3, 5]);
        expect(show(log.entries(3, 6, 1 << 20))).toEqual(['3/3/e3', '4/7/e4', '5/7/e5']);
        if (had.has('kv')) expect(dec.decode(kv.get('k')?.value)).toBe('v');
        // Rows written before leases are attached to none.
        if (had.has('kv')) expect(kv.get('k')).not.toHaveProperty('lease');
        // A meta row without a compaction point reads as nothing compacted.
        if (had.has('kv_meta')) expect(kv.meta()).toEqual({ ...OLD_META, compacted: OLD_META.revision + 1 });
        // The upgraded database takes history.
        const put5: KvEvent = {
          type: 'put',
          revision: 5,
          seq: 0,
          kv: { key: 'k', value: enc.encode('v5'), createRevision: 1, modRevision: 5, version: 3 },
          prev: { key: 'k', value: enc.encode('v'), createRevision: 1, modRevision: 2, version: 2 },
        };
        kv.appendEvents([put5]);
        expect(kv.events(beforeRevision(1), 10)).toEqual([put5]);
        // And leases.
        kv.putLease({ id: 8, ttl: 30, remaining: 0 });
        kv.put({ ...put5.kv, lease: 8 });
        expect(kv.leaseKeys(8)).toEqual(['k']);
        expect(kv.leases()).toEqual([{ id: 8, ttl: 30, remaining: 0 }]);
        // Migrating again is a no-op.
        const shape = sql.exec(`SELECT type, name, sql FROM sqlite_master ORDER BY name`);
        expect(migrate(sql)).toBe(SCHEMA_VERSION);
        expect(sql.exec(`SELECT type, name, sql FROM sqlite_master ORDER BY name`)).toEqual(shape);
        expect(new SqliteLogStore(sql).lastIndex()).toBe(5);
      });
    });

    it(`a RaftNode whose database was written at v${v} restarts with the current code, replays and serves`, async () => {
      const name = `upgrade-v${v}-${crypto.randomUUID().slice(0, 8)}:node-0`;
      await runInDurableObject(nodeStub(name), (_instance, state) => {
        const sql = durableObjectSql(state.storage);
        migrate(sql, v);
        const have = userTables(sql);
        sql.transaction(() => {
          // What a solo node of that version had written: its identity, a term-2 log, commit 2.
          sql.exec(`INSERT INTO node_identity (id, name, initial_members) VALUES (0, ?, '["node-0"]')`, name);
          sql.exec(`UPDATE raft_state SET term = 2, vote = 'node-0', commit_index = 2 WHERE id = 0`);
          const log: [number, number, Uint8Array][] = [
            [1, 1, new Uint8Array(0)],
            [2, 2, command({ type: 'put', key: 'a', value: enc.encode('1') })],
            [3, 2, command({ type: 'put', key: 'b', value: enc.encode('2') })], // not yet committed
          ];
          for (const [i, t, d] of log)
            sql.exec('INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, 0, ?)', i, t, d);
          if (have.has('kv')) {
            // Entry 2 was already applied by the old code.
            sql.exec(
              'INSERT INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, ?, 1, 1, 1)',
              enc.encode('a'),
              enc.encode('1'),
            );
            sql.exec(
              `INSERT INTO kv_meta (name, value) VALUES ('state', ?)`,
              encode({ m: { revision: 1, applied: 2 } }, { ignoreUndefined: true }),
            );
          }
        });
      });
      const s = await waitFor('the upgraded node to lead and apply its log', async () => {
        const st = await nodeStub(name).status();
        return st.role === 'leader' && st.applied >= 4 ? st : undefined;
      });
      expect(s.term).toBeGreaterThan(2);
      expect(await localValue(name, 'a')).toBe('1');
      expect(await localValue(name, 'b')).toBe('2');
      const out = await nodeStub(name).propose(command({ type: 'put', key: 'c', value: enc.encode('3') }), 5000);
      expect(out.status).toBe('applied');
      expect(await localValue(name, 'c')).toBe('3');
      expect(
        await runInDurableObject(nodeStub(name), (_i, state) => schemaVersion(durableObjectSql(state.storage))),
      ).toBe(SCHEMA_VERSION);
    });
  }

  it('a database newer than the code is refused with a clear error (store, table and node)', async () => {
    await inFreshObject((sql) => {
      migrate(sql);
      sql.exec('UPDATE schema_version SET version = ? WHERE id = 0', SCHEMA_VERSION + 1);
      expect(() => migrate(sql)).toThrow(/newer than this code/);
      expect(() => new SqliteLogStore(sql)).toThrow(/newer than this code/);
      expect(() => new SqliteKvTable(sql)).toThrow(/newer than this code/);
      expect(schemaVersion(sql)).toBe(SCHEMA_VERSION + 1);
    });
    // A node whose database a newer deployment wrote refuses to start rather than misread it.
    const name = `newer-${crypto.randomUUID().slice(0, 8)}:node-0`;
    expect(await nodeStub(name).bootstrap(name, ['node-0'])).toEqual({ ok: true });
    await runInDurableObject(nodeStub(name), (_i, state) => {
      durableObjectSql(state.storage).exec('UPDATE schema_version SET version = ? WHERE id = 0', SCHEMA_VERSION + 1);
    });
    await runInDurableObject(nodeStub(name), (instance) => {
      expect(() => (instance as unknown as RaftNode).status()).toThrow(/newer than this code/);
    });
  });
});

describe('on a Durable Object: the initial voters', () => {
  it('are fixed at the first start (a later CLUSTER_NODES is not taken without a configuration change)', async () => {
    // A node that was never bootstrapped takes CLUSTER_NODES; it must keep what it took.
    const name = `initial-${crypto.randomUUID().slice(0, 8)}:node-0`;
    const stub = nodeStub(name);
    await stub.fetch('https://node/internal/status', { headers: { 'x-raft-node': name } });
    const stored = await runInDurableObject(stub, (_i, state) =>
      durableObjectSql(state.storage).exec('SELECT initial_members FROM node_identity WHERE id = 0'),
    );
    expect(JSON.parse(String(stored[0]?.initial_members))).toEqual(['node-0', 'node-1', 'node-2']);

    // One started before this rule (no initial members kept) keeps the ones it starts with now.
    const old = `initial-old-${crypto.randomUUID().slice(0, 8)}:node-0`;
    await runInDurableObject(nodeStub(old), (_i, state) => {
      const sql = durableObjectSql(state.storage);
      migrate(sql);
      sql.exec('INSERT INTO node_identity (id, name) VALUES (0, ?)', old);
    });
    await nodeStub(old).fetch('https://node/internal/status', { headers: { 'x-raft-node': old } });
    const kept = await runInDurableObject(nodeStub(old), (_i, state) =>
      durableObjectSql(state.storage).exec('SELECT initial_members FROM node_identity WHERE id = 0'),
    );
    expect(JSON.parse(String(kept[0]?.initial_members))).toEqual(['node-0', 'node-1', 'node-2']);
  });
});
