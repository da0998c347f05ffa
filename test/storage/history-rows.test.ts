import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { beforeRevision, type KeyValue, type KvEvent, MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../../src/kv/index.ts';
import { decodeEvents, encodeBatch, PART_BYTES, SEGMENT_BYTES } from '../../src/storage/history-segment.ts';
import type { Sql, SqlValue } from '../../src/storage/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { concat } from '../support/bytes.ts';
import { allEvents, deleteEvent, positions, putEvent } from '../support/events.ts';
import { nodeSql } from '../support/node-sql.ts';

/**
 * The row layout of the history (src/storage/history-segment.ts): one
 * kv_history row per appended batch, so the rows a put costs fall with the
 * batch size. The semantics are the shared suite's (test/kv/table-suite.ts);
 * here are the rows themselves: how many a batch and a compaction write, how
 * large events are cut, and how much a read touches.
 */

/** Rows inserted, updated or deleted so far on this connection (SQLite's own count). */
function rowsWritten(sql: Sql): number {
  return Number(sql.exec('SELECT total_changes() AS c')[0]?.c);
}

/** The rows of kv_history as `firstRevision.firstSeq/part`. */
function historyRows(sql: Sql): string[] {
  return sql
    .exec('SELECT first_revision, first_seq, part FROM kv_history ORDER BY first_revision, first_seq, part')
    .map((r) => `${String(r.first_revision)}.${String(r.first_seq)}/${String(r.part)}`);
}

/** Counts the statements run and the history bytes they return, to see how much a read touches. */
function counting(sql: Sql): Sql & { statements: number; blobBytes: number } {
  const out = {
    statements: 0,
    blobBytes: 0,
    exec(query: string, ...params: SqlValue[]) {
      out.statements++;
      const rows = sql.exec(query, ...params);
      for (const r of rows) if (r.data instanceof Uint8Array) out.blobBytes += r.data.byteLength;
      return rows;
    },
    transaction<T>(fn: () => T): T {
      return sql.transaction(fn);
    },
  };
  return out;
}

const kv = (key: string, rev: number, size = 8): KeyValue => ({
  key,
  value: new Uint8Array(size).fill(rev % 251),
  createRevision: rev,
  modRevision: rev,
  version: 1,
});
/** A put with a value of `size` bytes (8 by default), replacing `prev`. */
const put = (key: string, rev: number, seq = 0, size = 8, prev?: KeyValue): KvEvent =>
  putEvent(key, rev, seq, prev, size);
const del = deleteEvent;
/** Every event, read page by page with a small limit. */
const all = (t: SqliteKvTable, limit = 7): KvEvent[] => allEvents(t, 1, limit);

describe('kv_history rows: one per appended batch', () => {
  it('a batch of 50 small events writes one history row; an empty batch writes none', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const batch = Array.from({ length: 50 }, (_, i) => put(`key-${i}`, 1 + Math.floor(i / 10), i % 10));
    const before = rowsWritten(sql);
    t.appendEvents(batch);
    expect(rowsWritten(sql) - before).toBe(1);
    expect(historyRows(sql)).toEqual(['1.0/0']);
    expect(sql.exec('SELECT last_revision FROM kv_history')[0]?.last_revision).toBe(5);
    const mid = rowsWritten(sql);
    t.appendEvents([]);
    expect(rowsWritten(sql) - mid).toBe(0);
    expect(all(t)).toEqual(batch);
  });

  it('a malformed event is refused before anything of its batch is written', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    t.appendEvents([put('a', 1)]);
    const bad = { ...put('b', 2), kv: { ...kv('b', 2), key: undefined } } as unknown as KvEvent;
    expect(() => t.appendEvents([put('c', 2), bad])).toThrow(/malformed event at 2\.0/);
    expect(historyRows(sql)).toEqual(['1.0/0']);
    expect(() => t.appendEvents([{ ...put('c', 2), type: 'bogus' } as unknown as KvEvent])).toThrow(/malformed/);
    expect(positions(all(t))).toEqual(['1.0']);
  });

  it('N events in B batches cost B inserts, and compacting them all B deletes', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const before = rowsWritten(sql);
    for (let b = 0; b < 10; b++)
      t.appendEvents(Array.from({ length: 20 }, (_, i) => put(`k${i}`, b * 2 + 1 + Math.floor(i / 10), i % 10)));
    expect(rowsWritten(sql) - before).toBe(10);
    const mid = rowsWritten(sql);
    t.compactEvents(21);
    expect(rowsWritten(sql) - mid).toBe(10);
    expect(historyRows(sql)).toEqual([]);
  });

  it('a batch past the segment size is cut into segments; one revision may span several', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    // One prefix delete of 40 keys with 100 KiB values (4 MiB of prev records), all of revision 7.
    const batch = Array.from({ length: 40 }, (_, i) => del(kv(`p/${String(i).padStart(2, '0')}`, 3, 100 * 1024), 7, i));
    t.appendEvents(batch);
    const rows = sql.exec('SELECT first_revision, first_seq, part, last_revision, length(data) AS n FROM kv_history');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const r of rows) {
      expect([r.first_revision, r.part, r.last_revision]).toEqual([7, 0, 7]);
      expect(Number(r.n)).toBeLessThanOrEqual(SEGMENT_BYTES);
    }
    expect(all(t)).toEqual(batch);
    // A read from inside the revision, at a segment's first event or in its middle.
    for (const seq of [0, 9, 10, 11, 38])
      expect(t.events({ revision: 7, seq }, 2)).toEqual(batch.slice(seq + 1, seq + 3));
    expect(t.events({ revision: 7, seq: 39 }, 2)).toEqual([]);
  });

  it('an event with a max-size value and a max-size prev takes two rows (parts), read back whole', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const key = 'k'.repeat(MAX_KEY_BYTES);
    const first = put(key, 1, 0, MAX_VALUE_BYTES);
    const second = put(key, 2, 0, MAX_VALUE_BYTES, first.kv);
    t.appendEvents([first]);
    t.appendEvents([second, put('small', 2, 1)]);
    // The second batch: the large event alone (its data past the segment size), then the small one.
    expect(historyRows(sql)).toEqual(['1.0/0', '2.0/0', '2.0/1', '2.1/0']);
    const widest = Number(sql.exec('SELECT max(length(data)) AS n FROM kv_history')[0]?.n);
    expect(widest).toBeLessThanOrEqual(PART_BYTES);
    expect(all(t, 1)).toEqual([first, second, put('small', 2, 1)]);
    expect(t.events({ revision: 1, seq: 0 }, 5)[0]?.prev?.value.byteLength).toBe(MAX_VALUE_BYTES);
  });

  it('a page ends early once it holds about 1 MiB of keys and values, never empty', () => {
    const t = new SqliteKvTable(nodeSql());
    const batch = Array.from({ length: 30 }, (_, i) => put(`k${i}`, i + 1, 0, 200 * 1024));
    for (const e of batch) t.appendEvents([e]);
    const page = t.events(beforeRevision(1), 100);
    expect(page.length).toBeGreaterThanOrEqual(4);
    expect(page.length).toBeLessThanOrEqual(6);
    expect(all(t, 100)).toEqual(batch);
    // A single event larger than the page bound still comes back alone.
    t.appendEvents([put('huge', 31, 0, MAX_VALUE_BYTES, batch[0]?.kv)]);
    expect(positions(t.events({ revision: 30, seq: 0 }, 100))).toEqual(['31.0']);
  });

  it('a read seeks to the segment holding its position: few statements, and no other segment read', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    for (let b = 0; b < 500; b++) t.appendEvents([put('a', 2 * b + 1, 0, 1000), put('b', 2 * b + 2, 0, 1000)]);
    const c = counting(sql);
    const reader = new SqliteKvTable(c);
    c.statements = 0;
    c.blobBytes = 0;
    // Mid-history: the segment holding 600.0 (599..600) is read, then the next for the rest of the page.
    expect(positions(reader.events({ revision: 600, seq: 0 }, 3))).toEqual(['601.0', '602.0', '603.0']);
    expect(c.statements).toBeLessThanOrEqual(4);
    expect(c.blobBytes).toBeLessThan(50 * 1024);
    // A segment that ends before the position's revision is skipped without reading its data.
    c.blobBytes = 0;
    expect(positions(reader.events(beforeRevision(601), 1))).toEqual(['601.0']);
    expect(c.blobBytes).toBeLessThan(50 * 1024);
  });

  it('compaction deletes whole segments below the point and rewrites one straddling it from its first kept event', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const a1 = kv('a', 1);
    t.appendEvents([put('a', 1), put('b', 1, 1)]);
    t.appendEvents([put('a', 2, 0, 8, a1), put('c', 3), put('d', 3, 1), put('e', 4)]);
    t.appendEvents([put('f', 5)]);
    const before = rowsWritten(sql);
    t.compactEvents(3);
    // One delete (1.0), and the straddler 2.0..4.0 deleted and written again from 3.0.
    expect(rowsWritten(sql) - before).toBe(3);
    expect(historyRows(sql)).toEqual(['3.0/0', '5.0/0']);
    expect(positions(all(t))).toEqual(['3.0', '3.1', '4.0', '5.0']);
    // A point at a segment's start touches nothing; past everything, everything goes.
    const mid = rowsWritten(sql);
    t.compactEvents(3);
    expect(rowsWritten(sql) - mid).toBe(0);
    t.compactEvents(6);
    expect(historyRows(sql)).toEqual([]);
  });

  it('compaction inside a large split event keeps it whole', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const first = put('big', 1, 0, MAX_VALUE_BYTES);
    const second = put('big', 2, 0, MAX_VALUE_BYTES, first.kv);
    t.appendEvents([put('x', 1, 1), second]);
    expect(historyRows(sql)).toEqual(['1.1/0', '2.0/0', '2.0/1']);
    t.compactEvents(2);
    expect(historyRows(sql)).toEqual(['2.0/0', '2.0/1']);
    expect(all(t)).toEqual([second]);
  });
});

describe('kv_history rows: leases', () => {
  const v = (s: string) => new TextEncoder().encode(s);
  const a1: KeyValue = { key: 'a', value: v('1'), createRevision: 1, modRevision: 1, version: 1 };
  const a2: KeyValue = { key: 'a', value: v('2'), createRevision: 1, modRevision: 2, version: 2 };
  /** Decodes a segment's data written by hand. */
  const decode = (...events: unknown[][]) => [
    ...decodeEvents({
      firstRevision: 1,
      firstSeq: 0,
      lastRevision: 9,
      data: concat(events.map((e) => encode(e))),
    }),
  ];

  it('an event without a lease is written as before leases, and segments written then read back the same', () => {
    const events: KvEvent[] = [
      { type: 'put', revision: 1, seq: 0, kv: a1 },
      { type: 'put', revision: 2, seq: 0, kv: a2, prev: a1 },
      { type: 'delete', revision: 3, seq: 0, kv: { ...a2, key: 'b' }, prev: a2 },
    ];
    // The layout of schema v5: [type, revision, seq, key, value, create, mod, version, (prev: value, create, mod, version, key if other)].
    const v5 = [
      [0, 1, 0, 'a', v('1'), 1, 1, 1],
      [0, 2, 0, 'a', v('2'), 1, 2, 2, v('1'), 1, 1, 1],
      [1, 3, 0, 'b', v('2'), 1, 2, 2, v('2'), 1, 2, 2, 'a'],
    ];
    const [row] = [...encodeBatch(events)];
    expect(row?.data).toEqual(concat(v5.map((e) => encode(e))));
    const read = decode(...v5);
    expect(read).toEqual(events);
    for (const e of read) expect([e.kv, e.prev].some((r) => r !== undefined && 'lease' in r)).toBe(false);
  });

  it('an event whose record or prev record has a lease round-trips, with another prev key too', () => {
    const t = new SqliteKvTable(nodeSql());
    const events: KvEvent[] = [
      { type: 'put', revision: 1, seq: 0, kv: { ...a1, lease: 7 } },
      { type: 'put', revision: 2, seq: 0, kv: { ...a2, lease: 2 ** 53 - 1 }, prev: { ...a1, lease: 7 } },
      { type: 'put', revision: 3, seq: 0, kv: { ...a2, modRevision: 3 }, prev: { ...a2, lease: 2 ** 53 - 1 } },
      { type: 'delete', revision: 4, seq: 0, kv: { ...a2, key: 'b' }, prev: { ...a2, lease: 9 } },
      { type: 'put', revision: 4, seq: 1, kv: { ...a2, key: 'c', lease: 9 }, prev: a1 },
    ];
    t.appendEvents(events);
    expect(all(t)).toEqual(events);
    // The lease fields come last: the type code says they are there.
    expect(decode([2, 1, 0, 'a', v('1'), 1, 1, 1, 7, 0])).toEqual([events[0]]);
    expect(decode([3, 4, 0, 'b', v('2'), 1, 2, 2, v('2'), 1, 2, 2, 'a', 0, 9])).toEqual([events[3]]);
  });

  it('an event with a malformed lease is refused before anything of its batch is written', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    t.appendEvents([put('a', 1)]);
    for (const lease of [0, -1, 1.5, 2 ** 53, '5']) {
      const bad = { ...put('b', 2), kv: { ...kv('b', 2), lease } } as unknown as KvEvent;
      expect(() => t.appendEvents([put('c', 2), bad])).toThrow(/malformed event at 2\.0/);
      const badPrev = { ...put('b', 2, 0, 8, kv('b', 1)), prev: { ...kv('b', 1), lease } } as unknown as KvEvent;
      expect(() => t.appendEvents([badPrev])).toThrow(/malformed event/);
    }
    expect(historyRows(sql)).toEqual(['1.0/0']);
  });

  it('segment data with misplaced lease fields does not decode', () => {
    for (const raw of [
      [2, 1, 0, 'a', v('1'), 1, 1, 1], // lease fields missing
      [2, 1, 0, 'a', v('1'), 1, 1, 1, 7], // one of two
      [2, 1, 0, 'a', v('1'), 1, 1, 1, 0, 7], // a prev's lease without a prev
      [2, 1, 0, 'a', v('1'), 1, 1, 1, -7, 0],
      [2, 1, 0, 'a', v('1'), 1, 1, 1, '7', 0],
      [0, 1, 0, 'a', v('1'), 1, 1, 1, 7, 0], // lease fields without the type code saying so
      [4, 1, 0, 'a', v('1'), 1, 1, 1],
      [0.5, 1, 0, 'a', v('1'), 1, 1, 1],
    ])
      expect(() => decode(raw), JSON.stringify(raw)).toThrow(/malformed event/);
  });
});
