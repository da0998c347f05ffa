import { describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/kv/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { KvRowCache } from '../../src/storage/kv-row-cache.ts';
import { nodeSql } from '../support/node-sql.ts';

const enc = new TextEncoder();
const kv = (key: string, value: string | Uint8Array, rev = 1): KeyValue => ({
  key,
  value: typeof value === 'string' ? enc.encode(value) : value,
  createRevision: 1,
  modRevision: rev,
  version: rev,
});

/** Counts the statements that read the kv table's rows. */
function countingReads(sql: ReturnType<typeof nodeSql>) {
  let reads = 0;
  const exec = sql.exec.bind(sql);
  sql.exec = (q, ...p) => {
    if (/^SELECT \* FROM kv WHERE key = \?/.test(q)) reads++;
    return exec(q, ...p);
  };
  return () => reads;
}

describe('KvRowCache', () => {
  it('keeps the most recently used rows within its row bound', () => {
    const c = new KvRowCache(1 << 20, 2);
    c.set(kv('a', '1'));
    c.set(kv('b', '2'));
    expect(c.get('a')?.key).toBe('a'); // a is now the most recent
    c.set(kv('c', '3'));
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.get('c')).toBeDefined();
  });

  it('keeps within its byte bound, and never holds a row larger than a sixteenth of it', () => {
    const c = new KvRowCache(16 * 1024, 1000);
    c.set(kv('big', new Uint8Array(2000)));
    expect(c.get('big')).toBeUndefined();
    for (let i = 0; i < 100; i++) c.set(kv(`k${i}`, new Uint8Array(500)));
    const held = Array.from({ length: 100 }, (_, i) => c.get(`k${i}`)).filter(Boolean).length;
    expect(held).toBeGreaterThan(0);
    expect(held * 500).toBeLessThanOrEqual(16 * 1024);
    expect(c.get('k99')).toBeDefined();
  });

  it('holds a copy of the value, not a view into the caller buffer', () => {
    const buffer = new Uint8Array(64).fill(7);
    const c = new KvRowCache(1 << 20, 10);
    c.set(kv('a', buffer.subarray(0, 4)));
    buffer.fill(0);
    const got = c.get('a');
    expect([...(got?.value ?? [])]).toEqual([7, 7, 7, 7]);
    expect(got?.value.buffer.byteLength).toBe(4);
  });
});

describe('SqliteKvTable with its row cache', () => {
  it('a hot key is read from SQLite once, and its writes are seen at once', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    const reads = countingReads(sql);
    t.put(kv('k', 'v1', 1));
    expect(new TextDecoder().decode(t.get('k')?.value)).toBe('v1');
    t.put(kv('k', 'v2', 2));
    expect(t.get('k')?.modRevision).toBe(2);
    expect(reads()).toBe(0);
    expect(t.delete('k')).toBe(true);
    expect(t.get('k')).toBeUndefined();
  });

  it('a rolled-back transaction leaves no cached row behind', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    t.put(kv('k', 'old', 1));
    expect(() =>
      t.transaction(() => {
        t.put(kv('k', 'new', 2));
        t.delete('gone');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(t.get('k')?.modRevision).toBe(1);
    expect(new TextDecoder().decode(t.get('k')?.value)).toBe('old');
  });

  it('reload() forgets rows rewritten behind the table (a snapshot install)', () => {
    const sql = nodeSql();
    const t = new SqliteKvTable(sql);
    t.put(kv('k', 'v1', 1));
    expect(t.get('k')?.modRevision).toBe(1);
    sql.exec('UPDATE kv SET mod_revision = 9 WHERE key = ?', enc.encode('k'));
    t.reload();
    expect(t.get('k')?.modRevision).toBe(9);
  });
});
