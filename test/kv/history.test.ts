import { describe, expect, it } from 'vitest';
import {
  beforeRevision,
  decodeSnapshot,
  type KeyValue,
  type KvEvent,
  type KvResult,
  type KvTable,
  MemoryKvTable,
  type TxnOpResult,
} from '../../src/kv/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';
import { as, b, Harness, text } from './harness.ts';

/**
 * The history (etcd's MVCC): every committed change is an event written with
 * its apply, reads at a past revision, and compaction through the log.
 */

const tables: [string, () => KvTable][] = [
  ['memory', () => new MemoryKvTable()],
  ['sqlite reference', () => new SqliteKvTable(nodeSql())],
];

const brief = (e: KvEvent) =>
  `${e.revision}.${e.seq} ${e.type} ${e.kv.key}${e.type === 'put' ? `=${text(e.kv.value)}` : ''}` +
  (e.prev ? ` (was ${text(e.prev.value)}@${e.prev.modRevision})` : '');

function history(h: Harness, from = 1): string[] {
  const out: string[] = [];
  for (let after = beforeRevision(from); ; ) {
    const page = h.sm.events(after, 100);
    if (page.length === 0) return out;
    out.push(...page.map(brief));
    after = page[page.length - 1] as KvEvent;
  }
}

const values = (kvs: readonly KeyValue[]) => kvs.map((kv) => `${kv.key}=${text(kv.value)}`);

describe.each(tables)('history over the %s table', (_name, makeTable) => {
  const h = () => new Harness({}, makeTable());

  it('every change is an event, numbered within its revision, with the record it replaced', () => {
    const t = h();
    t.put('a', '1');
    t.put('b', '1');
    t.put('a', '2');
    t.run({
      type: 'txn',
      compare: [],
      success: [
        { type: 'put', key: 'c', value: b('1') },
        { type: 'delete', key: 'b' },
        { type: 'put', key: 'a', value: b('3') },
      ],
      failure: [],
    });
    t.run({ type: 'deletePrefix', prefix: 'a' });
    t.run({ type: 'delete', key: 'nothing' }); // deletes nothing: no revision, no event
    t.run({ type: 'txn', compare: [], success: [{ type: 'get', key: 'c' }], failure: [] }); // reads only
    expect(history(t)).toEqual([
      '1.0 put a=1',
      '2.0 put b=1',
      '3.0 put a=2 (was 1@1)',
      '4.0 put c=1',
      '4.1 delete b (was 1@2)',
      '4.2 put a=3 (was 2@3)',
      '5.0 delete a (was 3@4)',
    ]);
    expect(t.sm.revision()).toBe(5);
    const [, , , , , , del] = t.sm.events(beforeRevision(1), 10);
    expect(del?.kv).toEqual({ key: 'a', value: new Uint8Array(0), createRevision: 0, modRevision: 5, version: 0 });
    expect(del?.prev).toMatchObject({ key: 'a', createRevision: 1, modRevision: 4, version: 3 });
  });

  it('the state machine hands each committed batch of events to its listener, in order', () => {
    const t = h();
    const seen: string[][] = [];
    t.sm.onEvents = (es) => seen.push(es.map(brief));
    t.sm.apply([
      t.command({ type: 'put', key: 'x', value: b('1') }),
      t.command({ type: 'put', key: 'y', value: b('2') }),
    ]);
    t.run({ type: 'delete', key: 'none' });
    t.put('x', '3');
    expect(seen).toEqual([['1.0 put x=1', '2.0 put y=2'], ['3.0 put x=3 (was 1@1)']]);
  });

  it('reads a key and a range as of any kept revision', () => {
    const t = h();
    t.put('k/a', 'a1'); // 1
    t.put('k/b', 'b1'); // 2
    t.put('k/a', 'a2'); // 3
    t.run({ type: 'delete', key: 'k/b' }); // 4
    t.put('k/c', 'c1'); // 5
    t.put('z', 'z1'); // 6
    expect(text(t.sm.getAt('k/a', 0)?.value)).toBeUndefined();
    expect(text(t.sm.getAt('k/a', 2)?.value)).toBe('a1');
    expect(text(t.sm.getAt('k/a', 3)?.value)).toBe('a2');
    expect(t.sm.getAt('k/b', 2)).toMatchObject({ modRevision: 2, version: 1 });
    expect(t.sm.getAt('k/b', 4)).toBeUndefined();
    expect(text(t.sm.getAt('z', 6)?.value)).toBe('z1');
    const at = (rev: number, extra = {}) => t.sm.rangeAt({ prefix: 'k/', ...extra }, rev);
    expect(values(at(0).kvs)).toEqual([]);
    expect(values(at(2).kvs)).toEqual(['k/a=a1', 'k/b=b1']);
    expect(values(at(3).kvs)).toEqual(['k/a=a2', 'k/b=b1']);
    expect(values(at(4).kvs)).toEqual(['k/a=a2']);
    expect(values(at(6).kvs)).toEqual(['k/a=a2', 'k/c=c1']);
    expect(at(3)).toMatchObject({ count: 2, more: false, revision: 6 }); // the store revision now, as in etcd
    expect(at(3, { countOnly: true })).toMatchObject({ kvs: [], count: 2 });
    expect(at(3, { limit: 1 })).toMatchObject({ count: 2, more: true, next: 'k/b' });
    expect(values(at(3, { start: 'k/b' }).kvs)).toEqual(['k/b=b1']);
    expect(at(3, { keysOnly: true }).kvs.map((kv) => [kv.key, kv.value.byteLength])).toEqual([
      ['k/a', 0],
      ['k/b', 0],
    ]);
    // The same answers as the store gave at the time.
    expect(t.sm.rangeAt({ prefix: '' }, 6).kvs).toEqual(t.sm.range({ prefix: '' }).kvs);
  });

  it('reads at a revision agree with the store as it was, over a random history', () => {
    const t = h();
    const snapshots: KeyValue[][] = [[]];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 120; i++) {
      const key = `k${rnd(6)}`;
      const r = rnd(10);
      if (r < 6) t.put(key, `v${i}`);
      else if (r < 8) t.run({ type: 'delete', key });
      else t.run({ type: 'deletePrefix', prefix: 'k' });
      snapshots[t.sm.revision()] = t.sm.range({ prefix: '' }).kvs.slice();
    }
    for (let rev = 0; rev <= t.sm.revision(); rev++) {
      const want = snapshots[rev];
      if (want === undefined) continue;
      expect(t.sm.rangeAt({ prefix: '' }, rev).kvs, `revision ${rev}`).toEqual(want);
      for (let k = 0; k < 6; k++) expect(t.sm.getAt(`k${k}`, rev)).toEqual(want.find((kv) => kv.key === `k${k}`));
    }
  });

  it("a txn's range at a revision reads the store as it was, after its batch's earlier commands and before its own writes", () => {
    const t = h();
    t.put('k/a', 'a1'); // 1
    const range = (revision: number) => ({ type: 'range' as const, prefix: 'k/', revision });
    const [, , , r] = t.sm.apply([
      t.command({ type: 'put', key: 'k/a', value: b('a2') }), // 2
      t.command({ type: 'put', key: 'k/b', value: b('b1') }), // 3
      t.command({ type: 'delete', key: 'k/a' }), // 4
      t.command({
        type: 'txn',
        compare: [],
        success: [
          range(1),
          { type: 'put', key: 'k/c', value: b('c1') }, // 5
          range(4),
          { type: 'txn', compare: [], success: [range(2), { type: 'range', prefix: 'k/' }], failure: [] },
        ],
        failure: [],
      }),
    ]);
    const txn = as(r as KvResult, 'txn');
    expect(txn.revision).toBe(5);
    const kvsOf = (x: TxnOpResult | undefined) => values(x?.type === 'range' ? x.kvs : []);
    expect(kvsOf(txn.results[0])).toEqual(['k/a=a1']);
    expect(kvsOf(txn.results[2])).toEqual(['k/b=b1']);
    const nested = txn.results[3];
    if (nested?.type !== 'txn') throw new Error('expected the nested txn');
    expect(kvsOf(nested.results[0])).toEqual(['k/a=a2']);
    // Without a revision a range sees the txn's write before it.
    expect(kvsOf(nested.results[1])).toEqual(['k/b=b1', 'k/c=c1']);
  });

  it("a txn's range past the store revision or below the compaction point fails it whole, as etcd's does", () => {
    const t = h();
    t.put('k/a', 'a1'); // 1
    t.put('k/a', 'a2'); // 2
    const txn = (revision: number) =>
      t.run({
        type: 'txn',
        compare: [],
        success: [
          { type: 'put', key: 'k/b', value: b('no') },
          { type: 'range', prefix: 'k/', revision },
        ],
        failure: [],
      });
    expect(txn(3)).toMatchObject({ type: 'error', error: 'future_revision', current: 2 });
    t.run({ type: 'compact', revision: 2 });
    expect(txn(1)).toMatchObject({ type: 'error', error: 'compacted', compacted: 2 });
    expect(t.value('k/b')).toBeUndefined();
    expect(t.sm.revision()).toBe(2);
    // At the compaction point itself it reads.
    expect(as(txn(2), 'txn').results[1]).toMatchObject({ type: 'range', count: 1 });
  });

  it('compaction goes through the log: it drops the history below its revision and refuses what is gone', () => {
    const t = h();
    for (let i = 1; i <= 5; i++) t.put(`k${i % 2}`, `v${i}`);
    expect(t.sm.unreadable(0)).toBeUndefined();
    expect(t.sm.unreadable(6)).toBe('future_revision');
    expect(as(t.run({ type: 'compact', revision: 3 }), 'compact')).toEqual({
      type: 'compact',
      revision: 5,
      compacted: 3,
    });
    expect(t.sm.compacted()).toBe(3);
    expect(t.sm.revision()).toBe(5); // a compaction writes no revision
    expect(history(t)).toEqual(['3.0 put k1=v3 (was v1@1)', '4.0 put k0=v4 (was v2@2)', '5.0 put k1=v5 (was v3@3)']);
    expect(t.sm.unreadable(2)).toBe('compacted');
    expect(t.sm.unreadable(3)).toBeUndefined();
    expect(text(t.sm.getAt('k1', 3)?.value)).toBe('v3');
    expect(values(t.sm.rangeAt({ prefix: 'k' }, 3).kvs)).toEqual(['k0=v2', 'k1=v3']);
    expect(t.run({ type: 'compact', revision: 3 })).toMatchObject({ type: 'error', error: 'compacted' });
    expect(t.run({ type: 'compact', revision: 2 })).toMatchObject({ type: 'error', error: 'compacted' });
    expect(t.run({ type: 'compact', revision: 6 })).toMatchObject({ type: 'error', error: 'future_revision' });
    expect(as(t.run({ type: 'compact', revision: 5 }), 'compact').compacted).toBe(5);
    expect(history(t)).toEqual(['5.0 put k1=v5 (was v3@3)']);
  });

  it('a compaction in a batch after writes keeps their events in order, and the listener still gets them', () => {
    const t = h();
    t.put('a', '1');
    const seen: string[] = [];
    t.sm.onEvents = (es) => seen.push(...es.map(brief));
    t.sm.apply([
      t.command({ type: 'put', key: 'a', value: b('2') }),
      t.command({ type: 'compact', revision: 2 }),
      t.command({ type: 'put', key: 'a', value: b('3') }),
    ]);
    expect(history(t)).toEqual(['2.0 put a=2 (was 1@1)', '3.0 put a=3 (was 2@2)']);
    expect(seen).toEqual(['2.0 put a=2 (was 1@1)', '3.0 put a=3 (was 2@2)']);
  });

  it('a snapshot carries the history and the compaction point, and a restored replica answers the same', () => {
    const t = h();
    for (let i = 1; i <= 6; i++) t.put(`k${i % 3}`, `v${i}`);
    t.run({ type: 'compact', revision: 3 });
    const snap = t.sm.snapshot();
    expect(decodeSnapshot(snap)).toMatchObject({ compacted: 3, revision: 6 });
    const other = h();
    other.sm.restore({ meta: { index: t.index, term: 1, conf: { voters: ['a'], learners: [] } }, data: snap });
    expect(history(other)).toEqual(history(t));
    expect(other.sm.compacted()).toBe(3);
    expect(other.sm.rangeAt({ prefix: '' }, 4)).toEqual(t.sm.rangeAt({ prefix: '' }, 4));
  });
});
