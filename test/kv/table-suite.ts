import { describe, expect, it } from 'vitest';
import {
  beforeRevision,
  EMPTY_META,
  type KeyValue,
  type KvEvent,
  type KvTable,
  type Lease,
  MAX_VALUE_BYTES,
  type RequestRecord,
} from '../../src/kv/index.ts';
import { allEvents, deleteEvent, positions, putEvent } from '../support/events.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const kv = (key: string, rev = 1, value = `v:${key}`): KeyValue => ({
  key,
  value: bytes(value),
  createRevision: rev,
  modRevision: rev,
  version: 1,
});
const req = (id: string, index: number): RequestRecord => ({
  id,
  index,
  revision: index,
  fingerprint: index * 7,
  result: bytes(`r${index}`),
});
const keysOf = (kvs: readonly KeyValue[]) => kvs.map((x) => x.key);
/** `kv(key, rev)` attached to lease `lease`. */
const leased = (key: string, lease: number, rev = 1): KeyValue => ({ ...kv(key, rev), lease });
/** A lease id past 2^48 (terms' and indexes' bound on the wire): lease ids are any positive safe integer. */
const BIG_LEASE = 2 ** 52 + 3;
const lease = (id: number, ttl = 60, remaining = 0): Lease => ({ id, ttl, remaining });
/** Event `e` with its record attached to `lease`. */
const onLease = (e: KvEvent, lease: number): KvEvent => ({ ...e, kv: { ...e.kv, lease } });
/** Keys in an order that UTF-16 comparison gets wrong: U+1F600 (a surrogate pair) sorts after U+FFFF in UTF-8. */
export const MIXED_KEYS = [
  'b',
  'a',
  'ab',
  'a\u0000',
  'Z',
  '\u00e9',
  '\u00e9t\u00e9',
  '\uffff',
  '\ue000',
  '\u{1f600}',
  '\u{1f600}x',
  '\u4e2d',
  '~',
];
/** The same keys sorted by their UTF-8 bytes, written out by hand. */
export const MIXED_SORTED = [
  'Z',
  'a',
  'a\u0000',
  'ab',
  'b',
  '~',
  '\u00e9',
  '\u00e9t\u00e9',
  '\u4e2d',
  '\ue000',
  '\uffff',
  '\u{1f600}',
  '\u{1f600}x',
];

/**
 * The contract every KvTable must keep (see src/kv/table.ts): run it against
 * each implementation.
 */
export function kvTableSuite(name: string, make: () => KvTable): void {
  describe(`KvTable conformance: ${name}`, () => {
    it('starts empty', () => {
      const t = make();
      expect(t.get('a')).toBeUndefined();
      expect(t.range('', undefined)).toEqual([]);
      expect(t.count('', undefined)).toBe(0);
      expect(t.meta()).toEqual(EMPTY_META);
      expect(t.requests()).toEqual([]);
      expect(t.oldestRequest()).toBeUndefined();
      expect(t.requestCount()).toBe(0);
      expect(t.leases()).toEqual([]);
      expect(t.leaseKeys(1)).toEqual([]);
    });

    it('puts, replaces and deletes a key, keeping its bytes exactly', () => {
      const t = make();
      const value = new Uint8Array([0, 255, 1, 0]);
      t.put({ key: 'k', value, createRevision: 1, modRevision: 1, version: 1 });
      expect(t.get('k')).toEqual({ key: 'k', value, createRevision: 1, modRevision: 1, version: 1 });
      t.put({ key: 'k', value: new Uint8Array(0), createRevision: 1, modRevision: 2, version: 2 });
      expect(t.get('k')).toEqual({ key: 'k', value: new Uint8Array(0), createRevision: 1, modRevision: 2, version: 2 });
      expect(t.count('', undefined)).toBe(1);
      t.put({ key: 'e', value: bytes(''), createRevision: 3, modRevision: 3, version: 1 });
      expect(t.get('e')?.value).toEqual(new Uint8Array(0));
      expect(t.count('', undefined)).toBe(2);
      expect(t.delete('e')).toBe(true);
      expect(t.delete('k')).toBe(true);
      expect(t.delete('k')).toBe(false);
      expect(t.get('k')).toBeUndefined();
    });

    it('lists keys in UTF-8 byte order, not UTF-16 order', () => {
      const t = make();
      for (const k of MIXED_KEYS) t.put(kv(k));
      expect(keysOf(t.range('', undefined))).toEqual(MIXED_SORTED);
      expect(t.range('\u{1f600}', undefined).map((x) => new TextDecoder().decode(x.value))).toEqual([
        'v:\u{1f600}',
        'v:\u{1f600}x',
      ]);
    });

    it('ranges over [start, end) with a limit, and counts the same interval', () => {
      const t = make();
      for (const k of ['a', 'b', 'c', 'd', 'e']) t.put(kv(k));
      expect(keysOf(t.range('b', 'd'))).toEqual(['b', 'c']);
      expect(keysOf(t.range('bb', undefined))).toEqual(['c', 'd', 'e']);
      expect(keysOf(t.range('a', undefined, 2))).toEqual(['a', 'b']);
      expect(keysOf(t.range('', 'c', 10))).toEqual(['a', 'b']);
      expect(t.range('d', 'b')).toEqual([]);
      expect(t.range('c', 'c')).toEqual([]);
      expect(t.count('b', 'd')).toBe(2);
      expect(t.count('b', undefined)).toBe(4);
      expect(t.count('d', 'b')).toBe(0);
      expect(t.count('\u{1f600}', undefined)).toBe(0);
    });

    it('keeps the meta, conf included', () => {
      const t = make();
      const meta = { revision: 7, applied: 12, conf: { voters: ['n1', 'n2'], learners: ['n3'] }, compacted: 5 };
      t.setMeta(meta);
      expect(t.meta()).toEqual(meta);
      t.setMeta({ ...meta, conf: undefined });
      expect(t.meta()).toEqual({ revision: 7, applied: 12, conf: undefined, compacted: 5 });
    });

    it('keeps requests in index order and finds the oldest', () => {
      const t = make();
      for (const [id, i] of [
        ['x', 3],
        ['a', 5],
        ['m', 9],
      ] as const)
        t.putRequest(req(id, i));
      expect(t.getRequest('a')).toEqual(req('a', 5));
      expect(t.getRequest('zz')).toBeUndefined();
      expect(t.oldestRequest()).toEqual(req('x', 3));
      expect(t.requests().map((r) => r.id)).toEqual(['x', 'a', 'm']);
      t.deleteRequest('x');
      expect(t.oldestRequest()?.id).toBe('a');
      expect(t.requestCount()).toBe(2);
    });

    it('clear removes keys and requests and resets the meta', () => {
      const t = make();
      t.put(kv('a'));
      t.putRequest(req('r', 1));
      t.setMeta({ revision: 1, applied: 1, conf: undefined, compacted: 0 });
      t.clear();
      expect(t.range('', undefined)).toEqual([]);
      expect(t.requests()).toEqual([]);
      expect(t.meta()).toEqual(EMPTY_META);
    });

    it('keeps events in (revision, seq) order with their prev records, across batches', () => {
      const t = make();
      const a1 = putEvent('a', 1);
      const b2 = putEvent('b', 2);
      t.appendEvents([a1]);
      t.appendEvents([b2, putEvent('c', 2, 1), putEvent('a', 2, 2, a1.kv)]);
      t.appendEvents([deleteEvent(b2.kv, 3), putEvent('\u{1f600}', 4, 0, undefined, 0)]);
      const all = allEvents(t);
      expect(positions(all)).toEqual(['1.0', '2.0', '2.1', '2.2', '3.0', '4.0']);
      expect(all[3]).toEqual(putEvent('a', 2, 2, a1.kv));
      expect(all[4]).toEqual(deleteEvent(b2.kv, 3));
      expect(all[5]?.kv.value).toEqual(new Uint8Array(0));
      // Any position: mid-revision, a revision's start, past the end.
      expect(positions(t.events({ revision: 2, seq: 0 }, 10))).toEqual(['2.1', '2.2', '3.0', '4.0']);
      expect(positions(t.events(beforeRevision(3), 1))).toEqual(['3.0']);
      expect(t.events({ revision: 4, seq: 0 }, 10)).toEqual([]);
      expect(positions(allEvents(t, 3))).toEqual(['3.0', '4.0']);
    });

    it('keeps large events and their large prev records whole (each at the value limit)', () => {
      const t = make();
      const first = putEvent('big', 1, 0, undefined, MAX_VALUE_BYTES);
      const second = putEvent('big', 2, 0, first.kv, MAX_VALUE_BYTES);
      const third = putEvent('small', 2, 1);
      t.appendEvents([first]);
      t.appendEvents([second, third, deleteEvent(second.kv, 3)]);
      const all = allEvents(t);
      expect(positions(all)).toEqual(['1.0', '2.0', '2.1', '3.0']);
      expect(all[1]).toEqual(second);
      expect(all[1]?.prev?.value.byteLength).toBe(MAX_VALUE_BYTES);
      expect(all[3]?.prev).toEqual(second.kv);
    });

    it('a page holds at most limit events, and no page is empty while events remain', () => {
      const t = make();
      const many = Array.from({ length: 300 }, (_, i) => putEvent(`k${i}`, 1 + Math.floor(i / 7), i % 7));
      t.appendEvents(many);
      expect(t.events(beforeRevision(1), 5)).toHaveLength(5);
      const all = allEvents(t);
      expect(all).toEqual(many);
    });

    it('compacts below a revision, and keeps everything at and above it', () => {
      const t = make();
      const a1 = putEvent('a', 1);
      t.appendEvents([a1, putEvent('b', 1, 1)]);
      t.appendEvents([putEvent('a', 2, 0, a1.kv)]);
      t.appendEvents([putEvent('c', 3), putEvent('d', 3, 1)]);
      t.compactEvents(2);
      expect(positions(allEvents(t))).toEqual(['2.0', '3.0', '3.1']);
      expect(allEvents(t)[0]?.prev).toEqual(a1.kv);
      t.compactEvents(2);
      expect(positions(allEvents(t))).toEqual(['2.0', '3.0', '3.1']);
      t.compactEvents(4);
      expect(allEvents(t)).toEqual([]);
      t.appendEvents([putEvent('e', 4)]);
      expect(positions(allEvents(t))).toEqual(['4.0']);
    });

    it('clear and a rolled-back transaction take events with them', () => {
      const t = make();
      t.appendEvents([putEvent('a', 1)]);
      expect(() =>
        t.transaction(() => {
          t.appendEvents([putEvent('b', 2)]);
          t.compactEvents(2);
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(positions(allEvents(t))).toEqual(['1.0']);
      t.clear();
      expect(allEvents(t)).toEqual([]);
    });

    it('a transaction that returns keeps its writes', () => {
      const t = make();
      const out = t.transaction(() => {
        t.put(kv('a'));
        t.setMeta({ revision: 1, applied: 1, conf: undefined, compacted: 0 });
        return 42;
      });
      expect(out).toBe(42);
      expect(t.get('a')).toBeDefined();
      expect(t.meta().applied).toBe(1);
    });

    it('a transaction that throws undoes every write, nested ones and clear included', () => {
      const t = make();
      for (const k of ['a', 'b', 'c']) t.put(kv(k));
      for (const [id, i] of [
        ['r1', 1],
        ['r2', 2],
        ['r3', 3],
      ] as const)
        t.putRequest(req(id, i));
      const meta = { revision: 3, applied: 3, conf: { voters: ['n1'], learners: [] }, compacted: 0 };
      t.setMeta(meta);
      const before = { kvs: t.range('', undefined), reqs: t.requests(), meta: t.meta() };
      expect(() =>
        t.transaction(() => {
          t.put(kv('a', 4, 'changed'));
          t.put(kv('new', 4));
          t.delete('b');
          t.deleteRequest('r1');
          t.putRequest(req('r4', 4));
          t.transaction(() => {
            t.delete('c');
            t.deleteRequest('r2');
          });
          t.setMeta({ revision: 4, applied: 4, conf: undefined, compacted: 0 });
          t.clear();
          t.put(kv('after-clear', 5));
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(t.range('', undefined)).toEqual(before.kvs);
      expect(t.requests()).toEqual(before.reqs);
      expect(t.oldestRequest()?.id).toBe('r1');
      expect(t.meta()).toEqual(before.meta);
      // Still usable, and still ordered, after the rollback.
      t.put(kv('aa'));
      expect(keysOf(t.range('', undefined))).toEqual(['a', 'aa', 'b', 'c']);
    });

    it("keeps a record's lease; a record put without one has none", () => {
      const t = make();
      t.put(leased('a', 5));
      t.put(leased('b', BIG_LEASE));
      t.put(kv('c'));
      expect(t.get('a')).toEqual(leased('a', 5));
      expect(t.get('b')?.lease).toBe(BIG_LEASE);
      expect(t.get('c')?.lease).toBeUndefined();
      expect(t.range('', undefined).map((x) => x.lease)).toEqual([5, BIG_LEASE, undefined]);
    });

    it('leaseKeys lists the keys of one lease in UTF-8 byte order, up to a limit', () => {
      const t = make();
      // Every third key on lease 7, the next on lease 8, the rest on none.
      MIXED_KEYS.forEach((k, i) => {
        t.put(i % 3 === 0 ? leased(k, 7) : i % 3 === 1 ? leased(k, 8) : kv(k));
      });
      const on = (id: number) => MIXED_SORTED.filter((k) => MIXED_KEYS.indexOf(k) % 3 === (id === 7 ? 0 : 1));
      expect(t.leaseKeys(7)).toEqual(on(7));
      expect(t.leaseKeys(8)).toEqual(on(8));
      expect(t.leaseKeys(7, 2)).toEqual(on(7).slice(0, 2));
      expect(t.leaseKeys(7, 0)).toEqual([]);
      expect(t.leaseKeys(9)).toEqual([]);
      // Keys without a lease are nobody's, not lease 0's.
      expect(t.leaseKeys(0)).toEqual([]);
    });

    it('a put moves a key to its new lease or detaches it, and a delete takes it off its lease', () => {
      const t = make();
      for (const k of ['a', 'b', 'c']) t.put(leased(k, 1));
      t.put(kv('a', 2));
      t.put(leased('b', 2, 2));
      expect(t.leaseKeys(1)).toEqual(['c']);
      expect(t.leaseKeys(2)).toEqual(['b']);
      expect(t.get('a')?.lease).toBeUndefined();
      t.delete('c');
      t.put(leased('c', 2, 3));
      expect(t.leaseKeys(1)).toEqual([]);
      expect(t.leaseKeys(2)).toEqual(['b', 'c']);
      t.delete('b');
      expect(t.leaseKeys(2)).toEqual(['c']);
    });

    it('keeps leases in id order: get, replace, delete, and pages of leases(after, limit)', () => {
      const t = make();
      for (const id of [40, BIG_LEASE, 3, 17]) t.putLease(lease(id, id === BIG_LEASE ? 9_000_000_000 : id));
      expect(t.getLease(17)).toEqual(lease(17, 17));
      expect(t.getLease(BIG_LEASE)).toEqual(lease(BIG_LEASE, 9_000_000_000));
      expect(t.getLease(4)).toBeUndefined();
      t.putLease(lease(17, 17, 9));
      expect(t.getLease(17)).toEqual(lease(17, 17, 9));
      const ids = (ls: readonly Lease[]) => ls.map((l) => l.id);
      expect(ids(t.leases())).toEqual([3, 17, 40, BIG_LEASE]);
      expect(ids(t.leases(0, 2))).toEqual([3, 17]);
      expect(ids(t.leases(17))).toEqual([40, BIG_LEASE]);
      expect(ids(t.leases(16, 1))).toEqual([17]);
      expect(t.leases(BIG_LEASE)).toEqual([]);
      t.deleteLease(3);
      t.deleteLease(3);
      t.deleteLease(99);
      expect(ids(t.leases())).toEqual([17, 40, BIG_LEASE]);
      expect(t.leases()[0]).toEqual(lease(17, 17, 9));
    });

    it("events keep their records' leases, the prev record's included", () => {
      const t = make();
      const a1 = putEvent('a', 1);
      const a2 = onLease(putEvent('a', 2, 0, a1.kv), 5);
      const a3 = onLease(putEvent('a', 3, 0, a2.kv), BIG_LEASE);
      const a4 = putEvent('a', 4, 0, a3.kv);
      const b4 = onLease(putEvent('b', 4, 1), 5);
      const del = deleteEvent(b4.kv, 5);
      t.appendEvents([a1]);
      t.appendEvents([a2]);
      t.appendEvents([a3, a4, b4]);
      t.appendEvents([del]);
      const all = allEvents(t);
      expect(all).toEqual([a1, a2, a3, a4, b4, del]);
      expect(all.map((e) => [e.kv.lease, e.prev?.lease])).toEqual([
        [undefined, undefined],
        [5, undefined],
        [BIG_LEASE, 5],
        [undefined, BIG_LEASE],
        [5, undefined],
        [undefined, 5],
      ]);
    });

    it("clear removes the leases and every record's lease", () => {
      const t = make();
      t.putLease(lease(1));
      t.put(leased('a', 1));
      t.clear();
      expect(t.leases()).toEqual([]);
      expect(t.getLease(1)).toBeUndefined();
      expect(t.leaseKeys(1)).toEqual([]);
    });

    it('a transaction that throws undoes lease changes and the leases of records', () => {
      const t = make();
      t.putLease(lease(1));
      t.putLease(lease(2, 30, 10));
      for (const k of ['a', 'b']) t.put(leased(k, 1));
      t.put(kv('c'));
      const before = { kvs: t.range('', undefined), leases: t.leases() };
      expect(() =>
        t.transaction(() => {
          t.putLease(lease(3));
          t.putLease(lease(1, 60, 42));
          t.deleteLease(2);
          t.put(kv('a', 2));
          t.put(leased('c', 1, 2));
          t.delete('b');
          t.transaction(() => t.put(leased('d', 3, 2)));
          expect(t.leaseKeys(1)).toEqual(['c']);
          t.clear();
          t.putLease(lease(4));
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(t.leases()).toEqual(before.leases);
      expect(t.range('', undefined)).toEqual(before.kvs);
      expect(t.leaseKeys(1)).toEqual(['a', 'b']);
      expect(t.leaseKeys(3)).toEqual([]);
      expect(t.getLease(1)).toEqual(lease(1));
    });
  });
}
