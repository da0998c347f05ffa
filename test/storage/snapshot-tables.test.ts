import { describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/kv/index.ts';
import {
  type ChunkCursor,
  encodeSnapshotRef,
  SnapshotTables,
  SqliteKvStateMachine,
  START,
} from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';

const enc = new TextEncoder();
const CONF = { voters: ['a', 'b', 'c'], learners: [] };

/** A state machine with `n` keys (k000..), each with a `size`-byte value, and some request records. */
function filled(n: number, size: number) {
  const sm = new SqliteKvStateMachine(nodeSql());
  const items = [];
  for (let i = 0; i < n; i++) {
    const cmd = {
      type: 'put' as const,
      key: `k${String(i).padStart(3, '0')}`,
      value: new Uint8Array(size).fill(i % 256),
    };
    items.push({ index: i + 1, kind: 'command' as const, data: encodeCommand({ requestId: `r${i}`, cmd }) });
  }
  sm.apply(items);
  return sm;
}

/** Streams `from`'s export into `to` chunk by chunk, as the leader and follower do; returns the chunk count. */
function stream(from: SnapshotTables, to: SnapshotTables, session: string, maxBytes: number): number {
  const exp = from.exportInfo();
  if (!exp) throw new Error('no export');
  let cursor: ChunkCursor = START;
  let seq = 0;
  for (;;) {
    const { chunk, next } = from.readChunk(cursor, maxBytes);
    const last = next.phase === 'done';
    expect(to.stage(session, seq, chunk, last ? { index: exp.index, term: exp.term, meta: exp.meta } : undefined)).toBe(
      'ok',
    );
    seq++;
    if (last) return seq;
    cursor = next;
  }
}

describe('snapshot tables: export, chunked stream, staged import, atomic install', () => {
  it('a table streams in chunks within the byte bound and installs identical on the other side', () => {
    const leader = filled(200, 1000);
    const follower = new SqliteKvStateMachine(nodeSql());
    follower.apply([
      { index: 1, kind: 'command', data: encodeCommand({ cmd: { type: 'put', key: 'old', value: enc.encode('x') } }) },
    ]);
    leader.snapshots.exportNow(200, 3, CONF);
    // The leader moves on after the export: the stream still carries the state as of 200.
    leader.apply([
      {
        index: 201,
        kind: 'command',
        data: encodeCommand({ cmd: { type: 'put', key: 'later', value: enc.encode('y') } }),
      },
    ]);
    const chunks = stream(leader.snapshots, follower.snapshots, 's1', 16 * 1024);
    expect(chunks).toBeGreaterThanOrEqual(13); // 200 KB of values in 16 KiB chunks
    follower.restore({ meta: { index: 200, term: 3, conf: CONF }, data: encodeSnapshotRef('s1') });
    expect(follower.applied()).toBe(200);
    expect(follower.conf()).toEqual(CONF);
    expect(follower.get('old')).toBeUndefined();
    expect(follower.get('later')).toBeUndefined();
    expect(follower.get('k199')?.value[0]).toBe(199);
    expect(follower.range({ prefix: 'k', countOnly: true }).count).toBe(200);
    expect(follower.revision()).toBe(200);
  });

  it('readChunk never exceeds the bound except for a single row larger than it', () => {
    const sm = filled(10, 5000);
    sm.snapshots.exportNow(10, 1, CONF);
    let cursor: ChunkCursor = START;
    const sizes: number[] = [];
    while (cursor.phase !== 'done') {
      const { chunk, next } = sm.snapshots.readChunk(cursor, 3000);
      sizes.push(chunk.kv.length + chunk.req.length);
      cursor = next;
    }
    // One 5000-byte row per chunk (each alone is over the bound), then the request records.
    expect(sizes.slice(0, 10)).toEqual(Array(10).fill(1));
  });

  it('staging refuses gaps and other sessions, acknowledges repeats, and chunk 0 starts over', () => {
    const t = new SnapshotTables(nodeSql());
    const chunk = { kv: [], req: [] };
    expect(t.stage('a', 1, chunk)).toBe('restart'); // no session yet
    expect(t.stage('a', 0, chunk)).toBe('ok');
    expect(t.stage('a', 0, chunk)).toBe('ok'); // chunk 0 again: starts over, fine
    expect(t.stage('a', 2, chunk)).toBe('restart'); // gap
    expect(t.stage('a', 1, chunk)).toBe('ok');
    expect(t.stage('a', 1, chunk)).toBe('ok'); // a duplicate
    expect(t.stage('b', 2, chunk)).toBe('restart'); // another session mid-way
    expect(t.completeImport('a')).toBeUndefined();
    expect(t.stage('a', 2, chunk, { index: 5, term: 1, meta: new Uint8Array([1]) })).toBe('ok');
    expect(t.completeImport('a')).toMatchObject({ index: 5, term: 1 });
    expect(t.completeImport('b')).toBeUndefined();
  });

  it('restore refuses a snapshot whose import is missing, incomplete or of another index, changing nothing', () => {
    const sm = filled(3, 10);
    const before = sm.applied();
    expect(() => sm.restore({ meta: { index: 9, term: 1, conf: CONF }, data: encodeSnapshotRef('nope') })).toThrow();
    sm.snapshots.stage('s', 0, { kv: [], req: [] }, { index: 8, term: 1, meta: new Uint8Array() });
    expect(() => sm.restore({ meta: { index: 9, term: 1, conf: CONF }, data: encodeSnapshotRef('s') })).toThrow();
    expect(() => sm.restore({ meta: { index: 9, term: 1, conf: CONF }, data: new Uint8Array([1, 2]) })).toThrow();
    expect(sm.applied()).toBe(before);
    expect(sm.get('k000')).toBeDefined();
  });

  it('compaction snapshots copy nothing: the tables are the snapshot', () => {
    expect(filled(5, 10).snapshot().byteLength).toBe(0);
  });
});
