import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { type Compare, type KvTable, MemoryKvTable } from '../../src/kv/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';
import { as, b, Harness, text } from './harness.ts';

const tables: [string, () => KvTable][] = [
  ['memory', () => new MemoryKvTable()],
  ['sqlite reference', () => new SqliteKvTable(nodeSql())],
];

describe.each(tables)('KvStateMachine over the %s table', (_name, makeTable) => {
  const h = () => new Harness({}, makeTable());

  describe('range pages bounded in bytes', () => {
    it('a page stops once its values pass the byte bound, with a cursor that pages through everything', () => {
      const t = h();
      const big = 'x'.repeat(1000);
      for (let i = 0; i < 150; i++) t.put(`r${String(i).padStart(3, '0')}`, big);
      t.put('s', 'after the range');
      const seen: string[] = [];
      let start: string | undefined = 'r';
      for (let pages = 0; start !== undefined; pages++) {
        expect(pages).toBeLessThan(100);
        const r = t.sm.range({ start, end: 's' }, 2500);
        expect(r.kvs.length).toBe(r.more ? 2 : Math.min(2, 150 - seen.length));
        expect(r.count).toBe(r.more ? 150 - seen.length : r.kvs.length);
        for (const kv of r.kvs) seen.push(kv.key);
        start = r.more ? r.next : undefined;
      }
      expect(seen).toEqual(Array.from({ length: 150 }, (_, i) => `r${String(i).padStart(3, '0')}`));
    });

    it('one record larger than the bound still comes back alone; limit still applies first', () => {
      const t = h();
      t.put('a', 'y'.repeat(5000));
      t.put('b', 'z');
      expect(t.sm.range({ prefix: '' }, 100)).toMatchObject({ kvs: [{ key: 'a' }], more: true, next: 'b', count: 2 });
      expect(t.sm.range({ prefix: '', limit: 1 })).toMatchObject({ kvs: [{ key: 'a' }], more: true, next: 'b' });
      expect(t.sm.range({ prefix: '' })).toMatchObject({ more: false, count: 2 });
    });
  });

  describe('revisions (etcd mvcc semantics)', () => {
    it('put, put, delete, put: revision, createRevision, modRevision and version', () => {
      const t = h();
      expect(t.sm.revision()).toBe(0);
      expect(t.put('k', 'v1')).toEqual({ type: 'put', revision: 1 });
      expect(t.sm.get('k')).toMatchObject({ createRevision: 1, modRevision: 1, version: 1 });
      t.put('other', 'x');
      expect(t.put('k', 'v2')).toEqual({ type: 'put', revision: 3 });
      expect(t.sm.get('k')).toMatchObject({ createRevision: 1, modRevision: 3, version: 2 });
      expect(t.run({ type: 'delete', key: 'k' })).toEqual({ type: 'delete', revision: 4, deleted: 1 });
      expect(t.sm.get('k')).toBeUndefined();
      expect(t.put('k', 'v3')).toEqual({ type: 'put', revision: 5 });
      expect(t.sm.get('k')).toEqual({ key: 'k', value: b('v3'), createRevision: 5, modRevision: 5, version: 1 });
      expect(t.sm.get('other')).toMatchObject({ createRevision: 2, modRevision: 2, version: 1 });
      expect(t.sm.revision()).toBe(5);
    });

    it('a put of the same value still makes a new revision', () => {
      const t = h();
      t.put('k', 'v');
      expect(as(t.put('k', 'v'), 'put').revision).toBe(2);
      expect(t.sm.get('k')?.version).toBe(2);
    });

    it('a delete that finds nothing changes no revision', () => {
      const t = h();
      t.put('k', 'v');
      expect(t.run({ type: 'delete', key: 'missing', prevKv: true })).toEqual({
        type: 'delete',
        revision: 1,
        deleted: 0,
      });
      expect(t.sm.revision()).toBe(1);
    });

    it('prevKv returns the replaced or deleted record, and only when asked', () => {
      const t = h();
      expect(t.run({ type: 'put', key: 'k', value: b('a'), prevKv: true })).toEqual({ type: 'put', revision: 1 });
      const before = t.sm.get('k');
      expect(t.run({ type: 'put', key: 'k', value: b('b'), prevKv: true })).toEqual({
        type: 'put',
        revision: 2,
        prev: before,
      });
      expect(t.run({ type: 'put', key: 'k', value: b('c') })).toEqual({ type: 'put', revision: 3 });
      const last = t.sm.get('k');
      expect(t.run({ type: 'delete', key: 'k', prevKv: true })).toEqual({
        type: 'delete',
        revision: 4,
        deleted: 1,
        prev: last,
      });
    });

    it('keeps arbitrary bytes, empty and binary values included', () => {
      const t = h();
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      t.run({ type: 'put', key: 'bin', value: all });
      t.run({ type: 'put', key: 'empty', value: new Uint8Array(0) });
      expect(t.sm.get('bin')?.value).toEqual(all);
      expect(t.sm.get('empty')?.value).toEqual(new Uint8Array(0));
    });
  });

  describe('cas', () => {
    it('by value: swaps on a match, returns the existing key on a mismatch', () => {
      const t = h();
      t.put('k', 'a');
      const miss = as(t.run({ type: 'cas', key: 'k', expect: { value: b('x') }, value: b('b') }), 'cas');
      expect(miss).toEqual({ type: 'cas', succeeded: false, revision: 1, current: t.sm.get('k') });
      expect(text(miss.current?.value)).toBe('a');
      const hit = as(t.run({ type: 'cas', key: 'k', expect: { value: b('a') }, value: b('b') }), 'cas');
      expect(hit.succeeded).toBe(true);
      expect(hit.revision).toBe(2);
      expect(hit.current).toEqual({ key: 'k', value: b('b'), createRevision: 1, modRevision: 2, version: 2 });
    });

    it('by value on a missing key fails, and a value prefix is no match', () => {
      const t = h();
      expect(t.run({ type: 'cas', key: 'k', expect: { value: b('') }, value: b('b') })).toEqual({
        type: 'cas',
        succeeded: false,
        revision: 0,
      });
      t.put('k', 'abc');
      expect(as(t.run({ type: 'cas', key: 'k', expect: { value: b('ab') }, value: b('z') }), 'cas').succeeded).toBe(
        false,
      );
      expect(t.value('k')).toBe('abc');
    });

    it('by modRevision', () => {
      const t = h();
      t.put('k', 'a');
      t.put('k', 'b');
      expect(as(t.run({ type: 'cas', key: 'k', expect: { modRevision: 1 }, value: b('c') }), 'cas').succeeded).toBe(
        false,
      );
      expect(t.value('k')).toBe('b');
      const ok = as(t.run({ type: 'cas', key: 'k', expect: { modRevision: 2 }, value: b('c') }), 'cas');
      expect(ok).toMatchObject({ succeeded: true, revision: 3, current: { modRevision: 3, version: 3 } });
      expect(t.value('k')).toBe('c');
    });

    it('by version', () => {
      const t = h();
      t.put('k', 'a');
      expect(as(t.run({ type: 'cas', key: 'k', expect: { version: 2 }, value: b('c') }), 'cas')).toMatchObject({
        succeeded: false,
        current: { version: 1 },
      });
      expect(as(t.run({ type: 'cas', key: 'k', expect: { version: 1 }, value: b('c') }), 'cas')).toMatchObject({
        succeeded: true,
        current: { version: 2 },
      });
    });

    it('by absent: creates once, then fails with the key that is there', () => {
      const t = h();
      const first = as(t.run({ type: 'cas', key: 'lock', expect: { absent: true }, value: b('me') }), 'cas');
      expect(first).toEqual({
        type: 'cas',
        succeeded: true,
        revision: 1,
        current: { key: 'lock', value: b('me'), createRevision: 1, modRevision: 1, version: 1 },
      });
      const second = as(t.run({ type: 'cas', key: 'lock', expect: { absent: true }, value: b('you') }), 'cas');
      expect(second).toEqual({ type: 'cas', succeeded: false, revision: 1, current: first.current });
      expect(t.value('lock')).toBe('me');
    });

    it('a missing key has modRevision 0 and version 0, as in etcd', () => {
      const t = h();
      expect(as(t.run({ type: 'cas', key: 'a', expect: { modRevision: 0 }, value: b('1') }), 'cas').succeeded).toBe(
        true,
      );
      expect(as(t.run({ type: 'cas', key: 'b', expect: { version: 0 }, value: b('1') }), 'cas').succeeded).toBe(true);
      expect(as(t.run({ type: 'cas', key: 'a', expect: { modRevision: 0 }, value: b('2') }), 'cas').succeeded).toBe(
        false,
      );
      expect(t.sm.revision()).toBe(2);
    });
  });

  describe('deletePrefix and deleteRange', () => {
    it('deletes exactly the keys under the prefix, counts them, and makes one revision', () => {
      const t = h();
      for (const k of ['a', 'a/', 'a/1', 'a/2', 'a/2/x', 'a0', 'b/1']) t.put(k, k);
      const r = as(t.run({ type: 'deletePrefix', prefix: 'a/', prevKv: true }), 'delete');
      expect(r.deleted).toBe(4);
      expect(r.revision).toBe(8);
      expect(r.prevKvs?.map((kv) => kv.key)).toEqual(['a/', 'a/1', 'a/2', 'a/2/x']);
      expect(t.sm.range({}).kvs.map((kv) => kv.key)).toEqual(['a', 'a0', 'b/1']);
    });

    it('bumps no revision when nothing matches', () => {
      const t = h();
      t.put('b', 'x');
      expect(t.run({ type: 'deletePrefix', prefix: 'a' })).toEqual({ type: 'delete', revision: 1, deleted: 0 });
      expect(t.run({ type: 'deleteRange', start: 'c', end: 'z' })).toEqual({ type: 'delete', revision: 1, deleted: 0 });
      expect(t.sm.revision()).toBe(1);
    });

    it('deleteRange deletes [start, end)', () => {
      const t = h();
      for (const k of ['a', 'b', 'c', 'd']) t.put(k, k);
      expect(as(t.run({ type: 'deleteRange', start: 'b', end: 'd' }), 'delete')).toEqual({
        type: 'delete',
        revision: 5,
        deleted: 2,
      });
      expect(t.sm.range({}).kvs.map((kv) => kv.key)).toEqual(['a', 'd']);
    });

    it('a prefix of non-ASCII keys deletes by code point, not by UTF-16 unit', () => {
      const t = h();
      for (const k of ['\u00e9/1', '\u00e9/2', '\u00e90', '\u{1f600}/a', '\u{1f601}']) t.put(k, k);
      expect(as(t.run({ type: 'deletePrefix', prefix: '\u{1f600}' }), 'delete').deleted).toBe(1);
      expect(as(t.run({ type: 'deletePrefix', prefix: '\u00e9/' }), 'delete').deleted).toBe(2);
      expect(t.sm.range({}).kvs.map((kv) => kv.key)).toEqual(['\u00e90', '\u{1f601}']);
    });
  });

  describe('txn', () => {
    const seed = (t: Harness) => {
      t.put('k', 'm'); // rev 1
      t.put('k', 'm'); // rev 2: version 2, createRevision 1, modRevision 2
    };
    const holds = (t: Harness, c: Compare) =>
      as(t.run({ type: 'txn', compare: [c], success: [], failure: [] }), 'txn').succeeded;

    it('compares every target with every op', () => {
      const t = h();
      seed(t);
      const cases: [Compare, boolean][] = [
        [{ key: 'k', target: 'value', op: '=', value: b('m') }, true],
        [{ key: 'k', target: 'value', op: '!=', value: b('m') }, false],
        [{ key: 'k', target: 'value', op: '<', value: b('n') }, true],
        [{ key: 'k', target: 'value', op: '<', value: b('m') }, false],
        [{ key: 'k', target: 'value', op: '>', value: b('l') }, true],
        [{ key: 'k', target: 'value', op: '>', value: b('m\u0000') }, false],
        [{ key: 'k', target: 'version', op: '=', value: 2 }, true],
        [{ key: 'k', target: 'version', op: '>', value: 2 }, false],
        [{ key: 'k', target: 'version', op: '<', value: 3 }, true],
        [{ key: 'k', target: 'version', op: '!=', value: 1 }, true],
        [{ key: 'k', target: 'createRevision', op: '=', value: 1 }, true],
        [{ key: 'k', target: 'createRevision', op: '>', value: 0 }, true],
        [{ key: 'k', target: 'modRevision', op: '=', value: 2 }, true],
        [{ key: 'k', target: 'modRevision', op: '<', value: 2 }, false],
        // A missing key: numbers read 0, a value compare always fails.
        [{ key: 'nope', target: 'version', op: '=', value: 0 }, true],
        [{ key: 'nope', target: 'createRevision', op: '<', value: 1 }, true],
        [{ key: 'nope', target: 'modRevision', op: '>', value: 0 }, false],
        [{ key: 'nope', target: 'value', op: '!=', value: b('m') }, false],
        [{ key: 'nope', target: 'value', op: '>', value: new Uint8Array(0) }, false],
      ];
      for (const [c, want] of cases) expect(holds(t, c), JSON.stringify({ ...c, value: String(c.value) })).toBe(want);
      expect(t.sm.revision()).toBe(2);
    });

    it('all compares must hold (AND)', () => {
      const t = h();
      seed(t);
      const r = t.run({
        type: 'txn',
        compare: [
          { key: 'k', target: 'version', op: '=', value: 2 },
          { key: 'k', target: 'value', op: '=', value: b('other') },
        ],
        success: [{ type: 'put', key: 's', value: b('1') }],
        failure: [{ type: 'put', key: 'f', value: b('1') }],
      });
      expect(as(r, 'txn').succeeded).toBe(false);
      expect(t.sm.get('s')).toBeUndefined();
      expect(t.value('f')).toBe('1');
    });

    it('runs the success branch: one revision for all writes, reads see earlier writes, results in order', () => {
      const t = h();
      seed(t);
      t.put('p/old', 'o'); // rev 3
      const r = as(
        t.run({
          type: 'txn',
          compare: [{ key: 'k', target: 'modRevision', op: '=', value: 2 }],
          success: [
            { type: 'put', key: 'k', value: b('n'), prevKv: true },
            { type: 'put', key: 'p/new', value: b('x') },
            { type: 'deletePrefix', prefix: 'p/o', prevKv: true },
            { type: 'get', key: 'k' },
            { type: 'range', prefix: 'p/' },
            { type: 'delete', key: 'missing' },
          ],
          failure: [{ type: 'put', key: 'f', value: b('1') }],
        }),
        'txn',
      );
      expect(r.succeeded).toBe(true);
      expect(r.revision).toBe(4);
      expect(t.sm.revision()).toBe(4);
      const [put, put2, del, get, range, del2] = r.results;
      expect(put).toEqual({
        type: 'put',
        prev: { key: 'k', value: b('m'), createRevision: 1, modRevision: 2, version: 2 },
      });
      expect(put2).toEqual({ type: 'put' });
      expect(del).toMatchObject({ type: 'delete', deleted: 1, prevKvs: [{ key: 'p/old' }] });
      expect(get).toEqual({
        type: 'get',
        kv: { key: 'k', value: b('n'), createRevision: 1, modRevision: 4, version: 3 },
      });
      expect(range).toMatchObject({
        type: 'range',
        count: 1,
        more: false,
        kvs: [{ key: 'p/new', modRevision: 4, createRevision: 4 }],
      });
      expect(del2).toEqual({ type: 'delete', deleted: 0 });
      expect(t.sm.get('f')).toBeUndefined();
    });

    it('runs the failure branch when a compare fails, and nothing of the success branch', () => {
      const t = h();
      seed(t);
      const r = as(
        t.run({
          type: 'txn',
          compare: [{ key: 'k', target: 'version', op: '>', value: 5 }],
          success: [
            { type: 'put', key: 's1', value: b('1') },
            { type: 'deletePrefix', prefix: 'k' },
          ],
          failure: [
            { type: 'get', key: 'k' },
            { type: 'get', key: 'none' },
          ],
        }),
        'txn',
      );
      expect(r).toEqual({
        type: 'txn',
        succeeded: false,
        revision: 2,
        results: [{ type: 'get', kv: t.sm.get('k') }, { type: 'get' }],
      });
      expect(t.sm.get('s1')).toBeUndefined();
      expect(t.value('k')).toBe('m');
      expect(t.sm.revision()).toBe(2);
    });

    it('a txn that only reads, or deletes nothing, makes no revision', () => {
      const t = h();
      seed(t);
      const r = as(
        t.run({
          type: 'txn',
          compare: [],
          success: [
            { type: 'range', prefix: '' },
            { type: 'delete', key: 'zz' },
          ],
          failure: [],
        }),
        'txn',
      );
      expect(r.succeeded).toBe(true);
      expect(r.revision).toBe(2);
      expect(t.sm.revision()).toBe(2);
    });
  });

  describe('range reads', () => {
    const fill = (t: Harness, keys: string[]) => {
      for (const k of keys) t.put(k, `v-${k}`);
    };

    it('by prefix and by [start, end), in UTF-8 order with non-ASCII keys', () => {
      const t = h();
      fill(t, ['a/\u{1f600}', 'a/\uffff', 'a/z', 'a/\u00e9', 'a', 'a0', 'b', 'a/']);
      expect(t.sm.range({ prefix: 'a/' }).kvs.map((kv) => kv.key)).toEqual([
        'a/',
        'a/z',
        'a/\u00e9',
        'a/\uffff',
        'a/\u{1f600}',
      ]);
      expect(t.sm.range({ start: 'a/z', end: 'a0' }).kvs.map((kv) => kv.key)).toEqual([
        'a/z',
        'a/\u00e9',
        'a/\uffff',
        'a/\u{1f600}',
      ]);
      expect(t.sm.range({ start: 'a0' }).kvs.map((kv) => kv.key)).toEqual(['a0', 'b']);
      expect(t.sm.range({ start: 'a/\uffff', end: 'a/\u{1f600}' }).kvs.map((kv) => kv.key)).toEqual(['a/\uffff']);
      expect(t.sm.range({ end: 'a/' }).kvs.map((kv) => kv.key)).toEqual(['a']);
      expect(t.sm.range({ prefix: 'q' })).toEqual({ kvs: [], count: 0, more: false, revision: 8 });
    });

    it('pages through a prefix with limit and next, count staying the total', () => {
      const t = h();
      const keys = Array.from({ length: 23 }, (_, i) => `p/${String(i).padStart(2, '0')}`);
      fill(t, ['o', ...keys, 'q']);
      const seen: string[] = [];
      let start: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = t.sm.range({ prefix: 'p/', start, limit: 5 });
        expect(r.count).toBe(23 - seen.length);
        seen.push(...r.kvs.map((kv) => kv.key));
        expect(r.revision).toBe(25);
        if (!r.more) {
          expect(r.next).toBeUndefined();
          break;
        }
        expect(r.kvs).toHaveLength(5);
        start = r.next;
      }
      expect(seen).toEqual(keys);
    });

    it('limit over [start, end): more and next point at the first key left out', () => {
      const t = h();
      fill(t, ['a', 'b', 'c', 'd']);
      const r = t.sm.range({ start: 'a', end: 'd', limit: 2 });
      expect(r.kvs.map((kv) => kv.key)).toEqual(['a', 'b']);
      expect(r).toMatchObject({ count: 3, more: true, next: 'c' });
      expect(t.sm.range({ start: 'a', end: 'd', limit: 3 })).toMatchObject({ count: 3, more: false });
    });

    it('keysOnly drops values, countOnly returns the count alone', () => {
      const t = h();
      fill(t, ['a', 'b', 'c']);
      const keys = t.sm.range({ keysOnly: true });
      expect(keys.kvs.map((kv) => [kv.key, kv.value.length, kv.version])).toEqual([
        ['a', 0, 1],
        ['b', 0, 1],
        ['c', 0, 1],
      ]);
      expect(t.value('a')).toBe('v-a');
      expect(t.sm.range({ countOnly: true, start: 'b' })).toEqual({ kvs: [], count: 2, more: false, revision: 3 });
    });
  });

  describe('malformed entries', () => {
    it('give bad_command and change nothing but the applied index', () => {
      const t = h();
      t.put('k', 'v');
      const snap = t.sm.snapshot();
      const junk = [
        new Uint8Array([0xc1]),
        b('hello'),
        encode({}),
        encode({ v: 1, cmd: { type: 'put', key: '', value: b('x') } }),
        encode({ v: 1, cmd: { type: 'put', key: 'k', value: 'not bytes' } }),
        encode({
          v: 1,
          cmd: {
            type: 'txn',
            compare: [],
            success: [
              { type: 'put', key: 'k', value: b('1') },
              { type: 'delete', key: 'k' },
            ],
            failure: [],
          },
        }),
      ];
      for (const data of junk) {
        const r = as(t.applyOne(t.rawItem(data)), 'error');
        expect(r.error).toBe('bad_command');
        expect(r.message.length).toBeGreaterThan(0);
      }
      expect(t.sm.revision()).toBe(1);
      expect(t.value('k')).toBe('v');
      expect(t.sm.applied()).toBe(t.index);
      const after = new Harness({}, makeTable());
      after.sm.restore({ meta: { index: 1, term: 1, conf: { voters: [], learners: [] } }, data: snap });
      expect(after.sm.range({})).toEqual(t.sm.range({}));
    });

    it('a batch applies each command on its own: a bad one in the middle does not stop the others', () => {
      const t = h();
      const items = [
        t.command({ type: 'put', key: 'a', value: b('1') }),
        { index: ++t.index, kind: 'noop' as const },
        t.rawItem(b('garbage')),
        { index: ++t.index, kind: 'conf' as const, conf: { voters: ['n1', 'n2', 'n3'], learners: [] } },
        t.command({ type: 'put', key: 'b', value: b('2') }),
      ];
      const results = t.sm.apply(items);
      expect(results.map((r) => r.type)).toEqual(['put', 'error', 'put']);
      expect(results[2]).toEqual({ type: 'put', revision: 2 });
      expect(t.sm.applied()).toBe(5);
      expect(t.sm.conf()).toEqual({ voters: ['n1', 'n2', 'n3'], learners: [] });
      expect([t.value('a'), t.value('b')]).toEqual(['1', '2']);
    });
  });

  describe('applied index', () => {
    it('noop and conf items advance it and give no result; conf() is undefined until a conf item', () => {
      const t = h();
      expect(t.sm.applied()).toBe(0);
      expect(t.sm.conf()).toBeUndefined();
      expect(t.sm.apply([{ index: 1, kind: 'noop' }])).toEqual([]);
      expect(t.sm.applied()).toBe(1);
      expect(t.sm.conf()).toBeUndefined();
    });

    it('skips items already applied (stale_entry), never applying twice', () => {
      const t = h();
      const item = t.command({ type: 'put', key: 'k', value: b('v') });
      t.sm.apply([item]);
      const again = t.sm.apply([item, t.command({ type: 'put', key: 'k', value: b('w') })]);
      expect(again.map((r) => r.type)).toEqual(['error', 'put']);
      expect(again[0]).toMatchObject({ type: 'error', error: 'stale_entry' });
      expect(t.sm.get('k')?.version).toBe(2);
      expect(t.sm.applied()).toBe(2);
    });

    it('throws on a gap and leaves the whole batch unapplied', () => {
      const t = h();
      t.put('k', 'v');
      const ok = t.command({ type: 'put', key: 'k', value: b('w') });
      t.index++;
      const afterGap = t.command({ type: 'put', key: 'x', value: b('1') });
      expect(() => t.sm.apply([ok, afterGap])).toThrow(/missing/);
      expect(t.value('k')).toBe('v');
      expect(t.sm.applied()).toBe(1);
      expect(t.sm.revision()).toBe(1);
    });
  });

  describe('idempotent requests', () => {
    it('a repeated requestId returns the first result and applies once', () => {
      const t = h();
      const first = t.put('k', 'v', 'req-1');
      t.put('k', 'other');
      const again = t.put('k', 'v', 'req-1');
      expect(again).toEqual(first);
      expect(t.value('k')).toBe('other');
      expect(t.sm.get('k')?.version).toBe(2);
      expect(t.sm.revision()).toBe(2);
      expect(t.sm.applied()).toBe(3);
    });

    it('also for cas and txn, whose retry would otherwise answer differently', () => {
      const t = h();
      const lock = { type: 'cas', key: 'lock', expect: { absent: true }, value: b('me') } as const;
      const first = t.run(lock, 'c1');
      expect(as(first, 'cas').succeeded).toBe(true);
      expect(t.run(lock, 'c1')).toEqual(first);
      expect(as(t.run(lock, 'c2'), 'cas').succeeded).toBe(false);
      const tx = {
        type: 'txn',
        compare: [{ key: 'n', target: 'version', op: '=', value: 0 }],
        success: [{ type: 'put', key: 'n', value: b('1') }],
        failure: [],
      } as const;
      const r1 = t.run(tx, 't1');
      expect(t.run(tx, 't1')).toEqual(r1);
      expect(t.sm.get('n')?.version).toBe(1);
    });

    it('within one batch too', () => {
      const t = h();
      const results = t.sm.apply([
        t.command({ type: 'put', key: 'k', value: b('v') }, 'r'),
        t.command({ type: 'put', key: 'k', value: b('v') }, 'r'),
      ]);
      expect(results[1]).toEqual(results[0]);
      expect(t.sm.get('k')?.version).toBe(1);
    });

    it('a requestId reused with another command is refused, not applied', () => {
      const t = h();
      t.put('k', 'v', 'r');
      const r = as(t.put('k', 'w', 'r'), 'error');
      expect(r.error).toBe('request_id_reused');
      expect(t.value('k')).toBe('v');
    });

    it('a bad command with a requestId records nothing', () => {
      const t = h();
      const bad = new Uint8Array([0x82, 0xa1, 0x76, 0x01, 0xa3, 0x63, 0x6d, 0x64]); // {v: 1, cmd: <truncated>}
      expect(as(t.applyOne(t.rawItem(bad)), 'error').error).toBe('bad_command');
      expect(t.table.requestCount()).toBe(0);
    });
  });
});

describe('idempotency bounds (memory table)', () => {
  it('keeps at most maxRequests, dropping the oldest', () => {
    const t = new Harness({ maxRequests: 2 });
    t.put('k', '1', 'a');
    t.put('k', '2', 'b');
    t.put('k', '3', 'c');
    expect(t.table.requests().map((r) => r.id)).toEqual(['b', 'c']);
    expect(t.put('k', '2', 'b')).toEqual({ type: 'put', revision: 2 });
    expect(t.sm.revision()).toBe(3);
    // 'a' was forgotten, so it applies again.
    expect(t.put('k', '1', 'a')).toEqual({ type: 'put', revision: 4 });
  });

  it('drops records once the revision has moved more than the window past them', () => {
    const t = new Harness({ requestRevisionWindow: 3 });
    t.put('k', '0', 'old'); // rev 1
    t.put('x', '1'); // rev 2
    t.put('x', '2'); // rev 3
    t.put('x', '3', 'new'); // rev 4: 1 + 3 is not < 4, kept
    expect(t.table.requests().map((r) => r.id)).toEqual(['old', 'new']);
    t.put('x', '4', 'newer'); // rev 5: 1 + 3 < 5, dropped
    expect(t.table.requests().map((r) => r.id)).toEqual(['new', 'newer']);
  });

  it('a result too large to keep answers result_unavailable on retry, never a second apply', () => {
    const t = new Harness({ maxResultBytes: 64 });
    const big = 'x'.repeat(100);
    t.put('k', big);
    const cmd = { type: 'put', key: 'k', value: b('y'), prevKv: true } as const;
    expect(as(t.run(cmd, 'r'), 'put').prev?.value).toEqual(b(big));
    expect(as(t.run(cmd, 'r'), 'error').error).toBe('result_unavailable');
    expect(t.sm.get('k')?.version).toBe(2);
  });
});
