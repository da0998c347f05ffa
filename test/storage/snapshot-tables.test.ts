import { describe, expect, it } from 'vitest';
import {
  beforeRevision,
  encodeCommand,
  type KeyValue,
  type KvEvent,
  type KvTable,
  type Lease,
  MAX_VALUE_BYTES,
} from '../../src/kv/index.ts';
import { CHUNK_BYTES } from '../../src/node/snapshot-stream.ts';
import {
  type ChunkCursor,
  encodeSnapshotRef,
  SnapshotTables,
  type Sql,
  SqliteKvStateMachine,
  SqliteKvTable,
  START,
} from '../../src/storage/index.ts';
import { decodeStreamMsg, encodeStreamMsg, MAX_STREAM_BYTES } from '../../src/transport/index.ts';
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

/**
 * Streams `from`'s export into `to` as the nodes do: each chunk read within CHUNK_BYTES, encoded as a stream
 * message, decoded (strictly) on the other side and staged. Returns each chunk's body size and row count.
 */
function streamOverTheWire(
  from: SnapshotTables,
  to: SnapshotTables,
  session: string,
): { bytes: number; rows: number }[] {
  const exp = from.exportInfo();
  if (!exp) throw new Error('no export');
  const sent: { bytes: number; rows: number }[] = [];
  let cursor: ChunkCursor = START;
  for (let seq = 0; ; seq++) {
    const { chunk, next } = from.readChunk(cursor, CHUNK_BYTES);
    const point = next.phase === 'done' ? { index: exp.index, term: exp.term, meta: exp.meta } : undefined;
    const body = encodeStreamMsg({ kind: 'chunk', from: 'a', to: 'b', term: exp.term, session, seq, ...chunk, point });
    const m = decodeStreamMsg(body);
    if (m.kind !== 'chunk') throw new Error('not a chunk');
    sent.push({ bytes: body.byteLength, rows: m.kv.length + m.req.length + m.hist.length + m.lease.length });
    expect(to.stage(m.session, m.seq, { kv: m.kv, req: m.req, hist: m.hist, lease: m.lease }, m.point)).toBe('ok');
    if (point) return sent;
    cursor = next;
  }
}

/** Every event of a table, page by page. */
function history(t: KvTable): KvEvent[] {
  const out: KvEvent[] = [];
  for (let page = t.events(beforeRevision(0), 100); page.length > 0; ) {
    out.push(...page);
    page = t.events(page[page.length - 1] as KvEvent, 100);
  }
  return out;
}

const historyRows = (sql: Sql) => sql.exec('SELECT * FROM kv_history ORDER BY first_revision, first_seq, part');

const record = (key: string, rev: number, size: number): KeyValue => ({
  key,
  value: new Uint8Array(size).fill(rev % 251),
  createRevision: rev,
  modRevision: rev,
  version: 1,
});

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

  it('the history and the compaction point travel whole, as of the export, a 1 MiB value with a 1 MiB prev included', () => {
    const lsql = nodeSql();
    const leader = new SnapshotTables(lsql);
    const lt = new SqliteKvTable(lsql);
    // Revisions 1..60 in batches of 3 puts; one put of a max-size value over a max-size prev (61);
    // a prefix delete of 400 keys with 4 KiB values (62: 1.6 MiB, more than one segment).
    for (let b = 0; b < 20; b++)
      lt.appendEvents(
        Array.from(
          { length: 3 },
          (_, i): KvEvent => ({
            type: 'put',
            revision: 3 * b + i + 1,
            seq: 0,
            kv: record(`k${b}`, 3 * b + i + 1, 100),
          }),
        ),
      );
    const big: KvEvent = {
      type: 'put',
      revision: 61,
      seq: 0,
      kv: { ...record('big', 61, MAX_VALUE_BYTES), createRevision: 7, version: 2 },
      prev: record('big', 7, MAX_VALUE_BYTES),
    };
    lt.appendEvents([big]);
    lt.appendEvents(
      Array.from({ length: 400 }, (_, i): KvEvent => {
        const prev = record(`p/${i}`, 30, 4096);
        return {
          type: 'delete',
          revision: 62,
          seq: i,
          kv: { ...prev, value: new Uint8Array(0), createRevision: 0, modRevision: 62, version: 0 },
          prev,
        };
      }),
    );
    lt.compactEvents(10);
    lt.put(record('big', 61, 10));
    lt.setMeta({ revision: 62, applied: 80, conf: CONF, compacted: 10 });
    leader.exportNow(80, 4, CONF);
    const expected = history(lt);
    const expectedRows = historyRows(lsql);
    expect(expected[0]?.revision).toBe(10);
    expect(expected.length).toBe(51 + 1 + 400);
    // The leader moves on after the export: more history, a later compaction. The stream carries the export.
    lt.appendEvents([{ type: 'put', revision: 63, seq: 0, kv: record('later', 63, 5) }]);
    lt.compactEvents(40);
    lt.setMeta({ revision: 63, applied: 81, conf: CONF, compacted: 40 });

    // The follower has history of its own, which the install replaces.
    const fsql = nodeSql();
    const follower = new SqliteKvStateMachine(fsql);
    const ft = new SqliteKvTable(fsql);
    ft.appendEvents([{ type: 'put', revision: 500, seq: 0, kv: record('mine', 500, 3) }]);
    ft.setMeta({ revision: 500, applied: 3, conf: CONF, compacted: 100 });

    const sent = streamOverTheWire(leader, follower.snapshots, 'h1');
    for (const c of sent) {
      expect(c.bytes).toBeLessThan(MAX_STREAM_BYTES);
      // Chunks stay near the bound; only a single row larger than it travels alone above it.
      if (c.bytes > CHUNK_BYTES + 4096) expect(c.rows).toBe(1);
    }
    // Nothing changes before the install.
    expect(history(new SqliteKvTable(fsql)).map((e) => e.revision)).toEqual([500]);
    follower.restore({ meta: { index: 80, term: 4, conf: CONF }, data: encodeSnapshotRef('h1') });

    const after = new SqliteKvTable(fsql);
    expect(after.meta()).toEqual({ revision: 62, applied: 80, conf: CONF, compacted: 10 });
    expect(historyRows(fsql)).toEqual(expectedRows);
    const got = history(after);
    expect(got).toEqual(expected);
    expect(got.find((e) => e.revision === 61)).toEqual(big);
    // The import tables are emptied once installed.
    expect(fsql.exec('SELECT count(*) AS n FROM kv_import_history')[0]?.n).toBe(0);
    // And the installed history goes on: the next apply appends after it.
    after.appendEvents([{ type: 'put', revision: 63, seq: 0, kv: record('next', 63, 1) }]);
    expect(after.events({ revision: 62, seq: 399 }, 10).map((e) => e.kv.key)).toEqual(['next']);
  });

  it("leases and the records' leases travel, as of the export, and install exactly (the old ones gone)", () => {
    const lsql = nodeSql();
    const leader = new SnapshotTables(lsql);
    const lt = new SqliteKvTable(lsql);
    // 300 leases (more than one page of a read) with ids past 2^48, and 200 keys: a third on a lease, a
    // third on another, a third on none.
    const leases = Array.from({ length: 300 }, (_, i) => ({ id: 2 ** 50 + i * 7, ttl: 10 + i, remaining: i % 5 }));
    const [l0, l1] = leases as [Lease, Lease];
    for (const l of leases) lt.putLease(l);
    for (let i = 0; i < 200; i++) {
      const r = record(`k${String(i).padStart(3, '0')}`, i + 1, 10);
      lt.put(i % 3 === 0 ? { ...r, lease: l0.id } : i % 3 === 1 ? { ...r, lease: l1.id } : r);
    }
    lt.setMeta({ revision: 200, applied: 210, conf: CONF, compacted: 0 });
    leader.exportNow(210, 5, CONF);
    const expected = {
      kvs: lt.range('', undefined),
      leases: lt.leases(),
      onL0: lt.leaseKeys(l0.id),
      onL1: lt.leaseKeys(l1.id),
    };
    expect([expected.onL0.length, expected.onL1.length]).toEqual([67, 67]);
    // After the export: a lease revoked with its keys, one granted, a key moved. The stream carries the export.
    lt.deleteLease(l1.id);
    for (const k of lt.leaseKeys(l1.id)) lt.delete(k);
    lt.putLease({ id: 1, ttl: 5, remaining: 0 });
    lt.put({ ...record('k000', 201, 1), lease: 1 });

    for (const [session, wire] of [
      ['small', false],
      ['wire', true],
    ] as const) {
      // The follower has leases and leased keys of its own, which the install replaces.
      const fsql = nodeSql();
      const follower = new SqliteKvStateMachine(fsql);
      const ft = new SqliteKvTable(fsql);
      ft.putLease({ id: 9, ttl: 9, remaining: 0 });
      ft.putLease({ id: l0.id, ttl: 1, remaining: 1 });
      ft.put({ ...record('mine', 1, 1), lease: 9 });
      ft.put({ ...record('zzz', 1, 1), lease: l0.id });
      if (wire) streamOverTheWire(leader, follower.snapshots, session);
      else expect(stream(leader, follower.snapshots, session, 512)).toBeGreaterThan(10);
      follower.restore({ meta: { index: 210, term: 5, conf: CONF }, data: encodeSnapshotRef(session) });
      const after = new SqliteKvTable(fsql);
      expect(after.range('', undefined)).toEqual(expected.kvs);
      expect(after.leases()).toEqual(expected.leases);
      expect(after.leaseKeys(l0.id)).toEqual(expected.onL0);
      expect(after.leaseKeys(l1.id)).toEqual(expected.onL1);
      expect(after.leaseKeys(9)).toEqual([]);
      expect(after.getLease(9)).toBeUndefined();
      expect(fsql.exec('SELECT count(*) AS n FROM kv_import_lease')[0]?.n).toBe(0);
    }
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
    const chunk = { kv: [], req: [], hist: [], lease: [] };
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
    sm.snapshots.stage('s', 0, { kv: [], req: [], hist: [], lease: [] }, { index: 8, term: 1, meta: new Uint8Array() });
    expect(() => sm.restore({ meta: { index: 9, term: 1, conf: CONF }, data: encodeSnapshotRef('s') })).toThrow();
    expect(() => sm.restore({ meta: { index: 9, term: 1, conf: CONF }, data: new Uint8Array([1, 2]) })).toThrow();
    expect(sm.applied()).toBe(before);
    expect(sm.get('k000')).toBeDefined();
  });

  it('compaction snapshots copy nothing: the tables are the snapshot', () => {
    expect(filled(5, 10).snapshot().byteLength).toBe(0);
  });
});
