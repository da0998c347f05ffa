import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { ApplyItem } from '../../src/driver/interfaces.ts';
import {
  decodeSnapshot,
  encodeCommand,
  encodeSnapshot,
  type KvCommand,
  KvDecodeError,
  type KvResult,
  MemoryKvTable,
} from '../../src/kv/index.ts';
import type { Snapshot } from '../../src/raft/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';
import { b, Harness } from './harness.ts';

const CONF = { voters: ['n1', 'n2', 'n3'], learners: ['n4'] };

/** A state with every kind of content: non-ASCII and binary keys and values, deletions, requests, a conf. */
function populated(): Harness {
  const t = new Harness();
  t.sm.apply([{ index: ++t.index, kind: 'conf', conf: CONF }]);
  t.put('a', '1', 'r1');
  t.put('\u{1f600}', 'smile');
  t.put('\uffff', 'max-bmp');
  t.run({ type: 'put', key: 'bin', value: Uint8Array.from([0, 1, 254, 255]) }, 'r2');
  t.put('a', '2');
  t.put('gone', 'x');
  t.run({ type: 'delete', key: 'gone' }, 'r3');
  t.sm.apply([{ index: ++t.index, kind: 'noop' }]);
  return t;
}

const snapshotOf = (t: Harness, conf = CONF): Snapshot => ({
  meta: { index: t.sm.applied(), term: 3, conf },
  data: t.sm.snapshot(),
});

describe('snapshot and restore', () => {
  it('round-trips: the restored state machine holds the same keys, revision, applied, conf and records', () => {
    for (const dst of [new Harness(), new Harness({}, new SqliteKvTable(nodeSql()))]) {
      const src = populated();
      const snap = snapshotOf(src);
      dst.sm.restore(snap);
      expect(dst.sm.snapshot()).toEqual(snap.data);
      expect(dst.sm.range({})).toEqual(src.sm.range({}));
      expect(dst.sm.revision()).toBe(7);
      expect(dst.sm.applied()).toBe(src.sm.applied());
      expect(dst.sm.conf()).toEqual(CONF);
      expect(dst.table.requests()).toEqual(src.table.requests());
      // A retry after the restore still gets its first result.
      dst.index = dst.sm.applied();
      const retry: KvCommand = { type: 'put', key: 'a', value: b('1') };
      expect(dst.run(retry, 'r1')).toEqual({ type: 'put', revision: 1 });
      expect(src.run(retry, 'r1')).toEqual({ type: 'put', revision: 1 });
      expect(dst.put('z', 'next')).toEqual(src.put('z', 'next'));
      expect(dst.sm.snapshot()).toEqual(src.sm.snapshot());
    }
  });

  it('takes applied from meta.index and conf from meta.conf', () => {
    const src = populated();
    const other = { voters: ['x'], learners: [] };
    const dst = new Harness();
    dst.sm.restore(snapshotOf(src, other));
    expect(dst.sm.applied()).toBe(src.sm.applied());
    expect(dst.sm.conf()).toEqual(other);
  });

  it('replaces the whole previous state', () => {
    const dst = new Harness();
    dst.put('stale', 'x', 'stale-req');
    for (let i = 0; i < 20; i++) dst.put(`k${i}`, 'x');
    const src = populated();
    dst.sm.restore(snapshotOf(src));
    expect(dst.sm.get('stale')).toBeUndefined();
    expect(dst.sm.get('k3')).toBeUndefined();
    expect(dst.table.getRequest('stale-req')).toBeUndefined();
    expect(dst.sm.snapshot()).toEqual(src.sm.snapshot());
  });

  it('a fresh state machine snapshots and restores as empty', () => {
    const t = new Harness();
    const data = t.sm.snapshot();
    expect(decodeSnapshot(data)).toEqual({
      revision: 0,
      applied: 0,
      conf: undefined,
      kvs: [],
      requests: [],
      compacted: 0,
      events: [],
      leases: [],
    });
    const dst = new Harness();
    dst.put('k', 'v');
    dst.sm.restore({ meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data });
    expect(dst.sm.range({}).kvs).toEqual([]);
    expect(dst.sm.revision()).toBe(0);
  });

  const good = () => decodeSnapshot(populated().sm.snapshot());
  const bad: [string, () => Uint8Array][] = [
    ['garbage', () => b('not a snapshot')],
    ['empty bytes', () => new Uint8Array(0)],
    ['a future version', () => encode({ ...encodeFields(good()), v: 4 })],
    ['events out of order', () => encodeSnapshot({ ...good(), events: [...good().events].reverse() })],
    ['an event below the compaction point', () => encodeSnapshot({ ...good(), compacted: 4 })],
    ['an event past the revision', () => encodeSnapshot({ ...good(), revision: 2, kvs: [], requests: [] })],
    ['keys out of order', () => encodeSnapshot({ ...good(), kvs: [...good().kvs].reverse() })],
    ['a duplicate key', () => encodeSnapshot({ ...good(), kvs: [...good().kvs, ...good().kvs] })],
    ['a modRevision past the revision', () => encodeSnapshot({ ...good(), revision: 1 })],
    ['a request past applied', () => encodeSnapshot({ ...good(), applied: 1 })],
    [
      'an empty key',
      () =>
        encodeSnapshot({ ...good(), kvs: [{ key: '', value: b(''), createRevision: 1, modRevision: 1, version: 1 }] }),
    ],
    [
      'a zero version',
      () =>
        encodeSnapshot({ ...good(), kvs: [{ key: 'k', value: b(''), createRevision: 1, modRevision: 1, version: 0 }] }),
    ],
    ['an unknown field', () => encode({ ...encodeFields(good()), extra: true })],
  ];
  for (const [what, make] of bad) {
    it(`refuses ${what} and keeps the current state`, () => {
      const t = new Harness();
      t.put('keep', 'me');
      const before = t.sm.snapshot();
      const applied = what === 'a request past applied' ? 1 : good().applied;
      expect(() => t.sm.restore({ meta: { index: applied, term: 1, conf: CONF }, data: make() })).toThrow(
        KvDecodeError,
      );
      expect(t.sm.snapshot()).toEqual(before);
    });
  }

  it('refuses data taken at another index than meta.index', () => {
    const src = populated();
    const t = new Harness();
    expect(() =>
      t.sm.restore({ meta: { index: src.sm.applied() + 1, term: 1, conf: CONF }, data: src.sm.snapshot() }),
    ).toThrow(/index/);
    expect(t.sm.applied()).toBe(0);
  });
});

/** The snapshot's msgpack map, to tamper with. */
function encodeFields(s: ReturnType<typeof decodeSnapshot>): Record<string, unknown> {
  return decode(encodeSnapshot(s)) as Record<string, unknown>;
}

describe('determinism', () => {
  function rng(seed: number) {
    let s = seed >>> 0;
    return (n: number) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s % n;
    };
  }

  /** A seeded workload over a few keys, with retries, junk entries, conf and noop items. */
  function workload(seed: number, n: number): ApplyItem[] {
    const next = rng(seed);
    const keys = ['a', 'a/1', 'a/2', '\u00e9', '\u{1f600}', 'b'];
    const pick = () => keys[next(keys.length)] as string;
    const items: ApplyItem[] = [];
    const sent: Uint8Array[] = [];
    for (let i = 1; i <= n; i++) {
      const roll = next(20);
      const cmds: KvCommand[] = [
        { type: 'put', key: pick(), value: b(`v${i}`), prevKv: next(2) === 0 },
        { type: 'delete', key: pick() },
        { type: 'deletePrefix', prefix: 'a/' },
        { type: 'cas', key: pick(), expect: { version: next(3) }, value: b(`c${i}`) },
        {
          type: 'txn',
          compare: [{ key: pick(), target: 'modRevision', op: '<', value: next(i + 1) }],
          success: [
            { type: 'put', key: 'b', value: b(`t${i}`) },
            { type: 'range', prefix: 'a', limit: 2 },
          ],
          failure: [{ type: 'get', key: pick() }],
        },
      ];
      if (roll === 0) items.push({ index: i, kind: 'noop' });
      else if (roll === 1) items.push({ index: i, kind: 'conf', conf: { voters: [`n${i}`], learners: [] } });
      else if (roll === 2) items.push({ index: i, kind: 'command', data: b(`junk${i}`) });
      else if (roll === 3 && sent.length > 0)
        items.push({ index: i, kind: 'command', data: sent[next(sent.length)] as Uint8Array });
      else {
        const data = encodeCommand({ requestId: `req-${i % 7}-${next(3)}`, cmd: cmds[next(cmds.length)] as KvCommand });
        sent.push(data);
        items.push({ index: i, kind: 'command', data });
      }
    }
    return items;
  }

  it('the same log gives the same results and the same state, whatever the batching and the table', () => {
    for (const seed of [1, 2, 3]) {
      const items = workload(seed, 300);
      const runs: { results: KvResult[]; snap: Uint8Array }[] = [];
      for (const [table, batch] of [
        [new MemoryKvTable(), 1],
        [new MemoryKvTable(), 17],
        [new SqliteKvTable(nodeSql()), 300],
      ] as const) {
        const t = new Harness({ maxRequests: 5, requestRevisionWindow: 40 }, table);
        const results: KvResult[] = [];
        for (let i = 0; i < items.length; i += batch) results.push(...t.sm.apply(items.slice(i, i + batch)));
        runs.push({ results, snap: t.sm.snapshot() });
      }
      const [first, ...rest] = runs;
      for (const r of rest) {
        expect(r.results).toEqual(first?.results);
        expect(r.snap).toEqual(first?.snap);
      }
      expect(first?.results.some((r) => r.type === 'error' && r.error === 'request_id_reused')).toBe(true);
      expect(first?.results.some((r) => r.type === 'cas' && r.succeeded)).toBe(true);
    }
  });
});
