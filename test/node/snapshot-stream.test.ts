import { describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/kv/index.ts';
import { SnapshotStream, stageChunk } from '../../src/node/snapshot-stream.ts';
import type { Message } from '../../src/raft/index.ts';
import { SnapshotTables, SqliteKvTable } from '../../src/storage/index.ts';
import { type ChunkMsg, decodeStreamMsg } from '../../src/transport/index.ts';
import { nodeSql } from '../support/node-sql.ts';

const CONF = { voters: ['a', 'b'], learners: [] };
type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

/** A leader-side stream over a real (node:sqlite) table, with a clock and an outbox. */
function setup() {
  const sql = nodeSql();
  const tables = new SnapshotTables(sql);
  sql.exec("INSERT INTO kv (key, value, create_revision, mod_revision, version) VALUES (X'6b', X'01', 1, 1, 1)");
  let now = 0;
  let applied = 10;
  const posts: { to: string; seq: number; session: string; chunk: ChunkMsg | undefined }[] = [];
  const raft: Message[] = [];
  const stream = new SnapshotStream({
    self: 'a',
    tables,
    now: () => now,
    rng: { int: () => 7 },
    appliedPoint: () => ({ index: applied, term: 2, conf: CONF }),
    term: () => ({ term: 2, leader: true }),
    post: (to, _path, body) => {
      const m = decodeStreamMsg(body);
      posts.push({ to, seq: m.seq, session: m.session, chunk: m.kind === 'chunk' ? m : undefined });
    },
    sendRaft: (m) => raft.push(m),
    staleMs: 100,
  });
  const ask = (index: number): SnapshotMessage => ({
    type: 'snapshot',
    from: 'a',
    to: 'b',
    term: 2,
    snapshot: { meta: { index, term: 2, conf: CONF }, data: new Uint8Array() },
  });
  return {
    sql,
    stream,
    tables,
    posts,
    raft,
    ask,
    tick: (ms: number) => {
      now += ms;
    },
    apply: (i: number) => {
      applied = i;
    },
  };
}

describe('snapshot stream (leader side)', () => {
  it('streams, then sends the install once the last chunk is acknowledged; a retry while under way sends nothing', () => {
    const t = setup();
    t.stream.request(t.ask(8));
    expect(t.posts).toHaveLength(1);
    t.stream.request(t.ask(8)); // the core retries: the stream is under way
    expect(t.posts).toHaveLength(1);
    const { session } = t.posts[0] as { session: string };
    t.stream.onAck({ kind: 'ack', from: 'b', to: 'a', session, seq: 0, ok: true });
    expect(t.raft).toMatchObject([{ type: 'snapshot', to: 'b', snapshot: { meta: { index: 10, term: 2 } } }]);
  });

  it('a stale stream resends its current chunk; an install that did not take restarts the stream', () => {
    const t = setup();
    t.stream.request(t.ask(8));
    t.tick(200);
    t.stream.request(t.ask(8));
    expect(t.posts.map((p) => p.seq)).toEqual([0, 0]);
    const { session } = t.posts[0] as { session: string };
    t.stream.onAck({ kind: 'ack', from: 'b', to: 'a', session, seq: 0, ok: true });
    expect(t.raft).toHaveLength(1);
    t.stream.request(t.ask(8)); // soon after the install: its answer may be on the way
    expect(t.posts).toHaveLength(2);
    t.tick(200);
    t.stream.request(t.ask(8)); // still asked long after: start over
    expect(t.posts).toHaveLength(3);
  });

  it('a follower needing a newer snapshot than the export gets a fresh export, not the old stream', () => {
    const t = setup();
    t.stream.request(t.ask(8));
    expect(t.tables.exportInfo()?.index).toBe(10);
    t.apply(30);
    t.stream.request(t.ask(20)); // the leader compacted past the export meanwhile
    expect(t.tables.exportInfo()?.index).toBe(30);
    expect(t.stream.stats.exports).toBe(2);
    expect(t.posts).toHaveLength(2);
  });

  it('the history rows follow the kv rows; the last chunk carries the point, then the install goes out', () => {
    const t = setup();
    // 1.2 MiB of history in three batches (a row each): past one 960 KiB chunk, so the stream goes on
    // chunk by chunk, one per ack, until every history row is out.
    const history = new SqliteKvTable(t.sql);
    for (let rev = 1; rev <= 3; rev++)
      history.appendEvents(
        Array.from({ length: 4 }, (_, seq) => ({
          type: 'put' as const,
          revision: rev,
          seq,
          kv: {
            key: `h${seq}`,
            value: new Uint8Array(100 * 1024),
            createRevision: rev,
            modRevision: rev,
            version: rev,
          },
        })),
      );
    t.stream.request(t.ask(8));
    for (let i = 0; t.raft.length === 0 && i < 10; i++) {
      const last = t.posts[t.posts.length - 1];
      if (!last) throw new Error('nothing sent');
      t.stream.onAck({ kind: 'ack', from: 'b', to: 'a', session: last.session, seq: last.seq, ok: true });
    }
    const chunks = t.posts.map((p) => p.chunk as ChunkMsg);
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.flatMap((c) => c.kv)).toHaveLength(1);
    expect(chunks.flatMap((c) => c.hist).map((r) => `${r[0]}.${r[1]}/${r[2]}`)).toEqual(['1.0/0', '2.0/0', '3.0/0']);
    expect(chunks.map((c) => c.point !== undefined)).toEqual([...chunks.slice(1).map(() => false), true]);
    expect(t.raft).toMatchObject([{ type: 'snapshot', to: 'b' }]);
  });

  it('leases follow the history rows, and a kv row carries its lease: the follower stages both', () => {
    const t = setup();
    const table = new SqliteKvTable(t.sql);
    const big = 2 ** 52 + 1;
    table.putLease({ id: big, ttl: 30, remaining: 12 });
    table.putLease({ id: 3, ttl: 60, remaining: 0 });
    const on: KeyValue = {
      key: 'on',
      value: new Uint8Array([2]),
      createRevision: 2,
      modRevision: 2,
      version: 1,
      lease: big,
    };
    table.put(on);
    table.appendEvents([{ type: 'put', revision: 2, seq: 0, kv: on }]);
    t.stream.request(t.ask(8));
    const [first] = t.posts.map((p) => p.chunk as ChunkMsg);
    if (!first) throw new Error('nothing sent');
    // One chunk: the key without a lease (five fields), the one with (six), the history row, then the leases.
    expect(first.kv.map((r) => r.length)).toEqual([5, 6]);
    expect(first.kv[1]?.[5]).toBe(big);
    expect(first.hist).toHaveLength(1);
    expect(first.lease).toEqual([
      [3, 60, 0],
      [big, 30, 12],
    ]);
    expect(first.point).toBeDefined();
    // The follower's side stages what the wire carried.
    const fsql = nodeSql();
    const follower = new SnapshotTables(fsql);
    const acks: Uint8Array[] = [];
    stageChunk(follower, first, 2, (_to, body) => acks.push(body));
    expect(decodeStreamMsg(acks[0] as Uint8Array)).toMatchObject({ kind: 'ack', ok: true });
    expect(follower.completeImport(first.session)).toBeDefined();
    expect(fsql.exec('SELECT key, lease FROM kv_import ORDER BY key')).toEqual([
      { key: new Uint8Array([0x6b]), lease: 0 },
      { key: new TextEncoder().encode('on'), lease: big },
    ]);
    expect(fsql.exec('SELECT id, ttl, remaining FROM kv_import_lease ORDER BY id')).toEqual([
      { id: 3, ttl: 60, remaining: 0 },
      { id: big, ttl: 30, remaining: 12 },
    ]);
  });
});
