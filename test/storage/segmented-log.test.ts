import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/index.ts';
import type { Sql, SqlValue } from '../../src/storage/index.ts';
import { SqliteLogStore } from '../../src/storage/index.ts';
import { SEGMENT_BYTES_MAX } from '../../src/storage/log-segment.ts';
import { migrate } from '../../src/storage/schema.ts';
import { entry, range, segmentRows as segments, show } from '../support/log-entries.ts';
import { nodeSql } from '../support/node-sql.ts';

/**
 * The row layout of SqliteLogStore (src/storage/log-segment.ts): one raft_log
 * row per persisted batch, so rows written per entry fall with the batch size.
 * Its semantics are the shared suite's (test/support/log-store-suite.ts);
 * here are the rows themselves, the upgrade from one row per entry, and the
 * cache that keeps recent reads off SQLite.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Rows inserted, updated or deleted so far on this connection (SQLite's own count). */
function rowsWritten(sql: Sql): number {
  return Number(sql.exec('SELECT total_changes() AS c')[0]?.c);
}

/** Counts the statements a store runs, to see which reads reach SQLite. */
function counting(sql: Sql): Sql & { statements: number } {
  const out = {
    statements: 0,
    exec(query: string, ...params: SqlValue[]) {
      out.statements++;
      return sql.exec(query, ...params);
    },
    transaction<T>(fn: () => T): T {
      return sql.transaction(fn);
    },
  };
  return out;
}

describe('SqliteLogStore rows: one per persisted batch', () => {
  it('a batch of many entries is one row; a batch of one is a plain row, as schema v1-v3 wrote it', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    store.persist({ entries: range(1, 100, 1) });
    expect(segments(sql)).toEqual(['1+100']);
    store.persist({ entries: [{ index: 101, term: 2, type: 'conf', data: enc.encode('c') }] });
    expect(segments(sql)).toEqual(['1+100', '101+1']);
    const plain = sql.exec('SELECT term, type, data FROM raft_log WHERE idx = 101')[0];
    expect([plain?.term, plain?.type, dec.decode(plain?.data as Uint8Array)]).toEqual([2, 1, 'c']);
    // A packed row's term column is its last entry's.
    expect(sql.exec('SELECT term FROM raft_log WHERE idx = 1')[0]?.term).toBe(1);
    expect(new SqliteLogStore(sql).lastIndex()).toBe(101);
  });

  it('rows written: N entries in B batches cost B inserts, and compacting them B deletes', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    const before = rowsWritten(sql);
    for (let b = 0; b < 10; b++)
      store.persist({
        entries: range(b * 100 + 1, b * 100 + 100, 1),
        hardState: { term: 1, vote: '', commit: b * 100 },
      });
    // 10 segment inserts and one hard state update: the term changed in the first, the commit index alone after.
    expect(rowsWritten(sql) - before).toBe(11);
    const mid = rowsWritten(sql);
    store.compact({ index: 1000, term: 1, conf: { voters: ['a'], learners: [] } }, new Uint8Array(0));
    // 10 segment deletes and the snapshot row.
    expect(rowsWritten(sql) - mid).toBe(11);
    expect(segments(sql)).toEqual([]);
  });

  it('truncation inside a segment rewrites that row to its prefix and deletes the rows after it', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    store.persist({ entries: range(1, 4, 1) });
    store.persist({ entries: range(5, 8, 1) });
    store.persist({ entries: range(9, 12, 1) });
    const before = rowsWritten(sql);
    store.persist({ entries: [entry(7, 2, 'x7'), entry(8, 2, 'x8'), entry(9, 2, 'x9')] });
    // One update (5..8 becomes 5..6), one delete (9..12), one insert (7..9).
    expect(rowsWritten(sql) - before).toBe(3);
    expect(segments(sql)).toEqual(['1+4', '5+2', '7+3']);
    // A cut leaving one entry of a segment leaves a plain row.
    store.persist({ entries: [entry(2, 3, 'y2')] });
    expect(segments(sql)).toEqual(['1+1', '2+1']);
    expect(dec.decode(sql.exec('SELECT data FROM raft_log WHERE idx = 1')[0]?.data as Uint8Array)).toBe('e1');
    expect(show(new SqliteLogStore(sql).entries(1, 20, 1 << 20))).toEqual(['1/1/e1', '2/3/y2']);
  });

  it('compaction deletes only whole segments; one straddling the snapshot index stays until a later compaction', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    const conf = { voters: ['a'], learners: [] };
    store.persist({ entries: range(1, 4, 1) });
    store.persist({ entries: range(5, 8, 1) });
    store.compact({ index: 6, term: 1, conf }, new Uint8Array(0));
    expect(segments(sql)).toEqual(['5+4']);
    const again = new SqliteLogStore(sql);
    expect([again.firstIndex(), again.lastIndex(), again.term(6), again.term(7)]).toEqual([7, 8, 1, 1]);
    expect(show(again.entries(7, 9, 1 << 20))).toEqual(['7/1/e7', '8/1/e8']);
    again.compact({ index: 8, term: 1, conf }, new Uint8Array(0));
    expect(segments(sql)).toEqual([]);
    expect(new SqliteLogStore(sql).lastIndex()).toBe(8);
  });

  it('a batch past 256 KiB splits into rows under the cap; an entry larger than the cap is a row of its own', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    const sized = (index: number, size: number): Entry => ({
      index,
      term: 1,
      type: 'normal',
      data: new Uint8Array(size).fill(index),
    });
    // 20 entries of 40 KiB (6 fit under the cap), then one of 300 KiB, then 3 small ones.
    const batch = [
      ...Array.from({ length: 20 }, (_, i) => sized(i + 1, 40 * 1024)),
      sized(21, 300 * 1024),
      ...Array.from({ length: 3 }, (_, i) => sized(22 + i, 10)),
    ];
    store.persist({ entries: batch });
    expect(segments(sql)).toEqual(['1+6', '7+6', '13+6', '19+2', '21+1', '22+3']);
    const widest = sql.exec('SELECT max(length(data)) AS b FROM raft_log WHERE n > 1')[0]?.b;
    expect(Number(widest)).toBeLessThanOrEqual(SEGMENT_BYTES_MAX);
    const got = new SqliteLogStore(sql).entries(1, 25, 1 << 30);
    expect(got.map((e) => [e.index, e.data.byteLength, e.data[0]])).toEqual(
      batch.map((e) => [e.index, e.data.byteLength, e.data[0]]),
    );
  });

  it('a v3 database (one row per entry, no n column) upgrades to segments and reads the same log', () => {
    const sql = nodeSql();
    migrate(sql, 3);
    expect(sql.exec(`SELECT name FROM pragma_table_info('raft_log') WHERE name = 'n'`)).toEqual([]);
    for (const e of range(1, 6, 2))
      sql.exec('INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, 0, ?)', e.index, e.term, e.data);
    sql.exec('UPDATE raft_snapshot SET idx = 1, term = 2 WHERE id = 0');
    const store = new SqliteLogStore(sql);
    expect(segments(sql)).toEqual(['1+1', '2+1', '3+1', '4+1', '5+1', '6+1']);
    expect([store.firstIndex(), store.lastIndex(), store.term(5)]).toEqual([2, 6, 2]);
    expect(show(store.entries(2, 7, 1 << 20))).toEqual(show(range(2, 6, 2)));
    // New batches are segments beside the legacy rows; a cut among the legacy rows works as before.
    store.persist({ entries: range(5, 9, 3) });
    expect(segments(sql)).toEqual(['1+1', '2+1', '3+1', '4+1', '5+5']);
    store.persist({ entries: range(8, 10, 4) });
    const again = new SqliteLogStore(sql);
    expect(segments(sql)).toEqual(['1+1', '2+1', '3+1', '4+1', '5+3', '8+3']);
    expect(show(again.entries(2, 11, 1 << 20))).toEqual([
      ...show(range(2, 4, 2)),
      ...show(range(5, 7, 3)),
      ...show(range(8, 10, 4)),
    ]);
  });
});

describe('SqliteLogStore cache: recent segments without SQLite, never stale', () => {
  it("the leader's reads of what it just wrote (term(prevIndex), entries(next, last + 1)) run no statement", () => {
    const sql = counting(nodeSql());
    const store = new SqliteLogStore(sql);
    store.persist({ entries: range(1, 50, 1) });
    store.persist({ entries: range(51, 100, 1) });
    const before = sql.statements;
    expect(store.term(60)).toBe(1);
    expect(store.entries(40, 101, 1 << 20).length).toBe(61);
    expect(sql.statements).toBe(before);
  });

  it('after a reopen a segment is decoded once, then served from memory', () => {
    const sql = counting(nodeSql());
    new SqliteLogStore(sql).persist({ entries: range(1, 50, 1) });
    const store = new SqliteLogStore(sql);
    const before = sql.statements;
    expect(store.term(10)).toBe(1);
    expect(sql.statements - before).toBe(2); // the row's head, then the row
    expect(store.entries(10, 51, 1 << 20).length).toBe(41);
    expect(store.term(20)).toBe(1);
    expect(sql.statements - before).toBe(2);
  });

  it('a cut, a snapshot install or a compaction drops what they replaced from memory', () => {
    const sql = nodeSql();
    const store = new SqliteLogStore(sql);
    store.persist({ entries: range(1, 10, 1) });
    expect(store.term(9)).toBe(1);
    store.persist({ entries: range(5, 6, 2) });
    expect([store.term(5), store.term(6), store.term(7)]).toEqual([2, 2, undefined]);
    store.persist({ entries: range(7, 12, 3) });
    expect(show(store.entries(4, 13, 1 << 20))).toEqual([
      ...show(range(4, 4, 1)),
      ...show(range(5, 6, 2)),
      ...show(range(7, 12, 3)),
    ]);
    const meta = { index: 20, term: 5, conf: { voters: ['a'], learners: [] } };
    store.persist({ snapshot: { meta, data: new Uint8Array(0) }, entries: range(21, 25, 5) });
    expect([store.term(12), store.term(21)]).toEqual([undefined, 5]);
    store.persist({ entries: range(21, 22, 6) });
    store.compact({ ...meta, index: 21, term: 6 }, new Uint8Array(0));
    expect(show(store.entries(22, 30, 1 << 20))).toEqual(['22/6/e22']);
    expect(show(new SqliteLogStore(sql).entries(22, 30, 1 << 20))).toEqual(['22/6/e22']);
  });
});
