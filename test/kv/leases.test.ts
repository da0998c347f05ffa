import { describe, expect, it } from 'vitest';
import {
  decodeCommand,
  encodeCommand,
  type KvEvent,
  type KvTable,
  type LeaseChange,
  MemoryKvTable,
} from '../../src/kv/index.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import { nodeSql } from '../support/node-sql.ts';
import { as, b, Harness } from './harness.ts';

const tables: [string, () => KvTable][] = [
  ['memory', () => new MemoryKvTable()],
  ['sqlite reference', () => new SqliteKvTable(nodeSql())],
];

describe.each(tables)('leases in the state machine over the %s table', (_name, makeTable) => {
  const h = () => new Harness({}, makeTable());

  it('a grant without an id takes the entry index, or the next free id above it; a chosen id in use fails', () => {
    const t = h();
    t.put('a', '1');
    expect(as(t.run({ type: 'leaseGrant', id: 0, ttl: 10 }), 'leaseGrant')).toEqual({
      type: 'leaseGrant',
      revision: 1,
      id: 2,
      ttl: 10,
    });
    as(t.run({ type: 'leaseGrant', id: 4, ttl: 5 }), 'leaseGrant');
    // Entry 4 wants id 4, which is taken.
    expect(as(t.run({ type: 'leaseGrant', id: 0, ttl: 5 }), 'leaseGrant').id).toBe(5);
    expect(t.run({ type: 'leaseGrant', id: 4, ttl: 7 })).toMatchObject({
      type: 'error',
      error: 'lease_exists',
      lease: 4,
    });
    expect(t.sm.getLease(4)).toEqual({ id: 4, ttl: 5, remaining: 0 });
    expect(t.sm.leases().map((l) => l.id)).toEqual([2, 4, 5]);
    expect(t.sm.leases(2, 1).map((l) => l.id)).toEqual([4]);
    expect(t.sm.revision()).toBe(1);
  });

  it('put, cas and a txn branch attach keys to an existing lease; a missing lease fails the whole command', () => {
    const t = h();
    const { id } = as(t.run({ type: 'leaseGrant', id: 0, ttl: 10 }), 'leaseGrant');
    as(t.run({ type: 'put', key: 'k1', value: b('v'), lease: id }), 'put');
    as(t.run({ type: 'cas', key: 'k2', expect: { absent: true }, value: b('v'), lease: id }), 'cas');
    as(
      t.run({ type: 'txn', compare: [], success: [{ type: 'put', key: 'k3', value: b('v'), lease: id }], failure: [] }),
      'txn',
    );
    expect(t.sm.get('k1')?.lease).toBe(id);
    expect(t.sm.leaseKeys(id)).toEqual(['k1', 'k2', 'k3']);
    const before = t.sm.revision();
    expect(t.run({ type: 'put', key: 'x', value: b('v'), lease: 99 })).toMatchObject({
      error: 'lease_not_found',
      lease: 99,
    });
    expect(t.run({ type: 'cas', key: 'x', expect: { absent: true }, value: b('v'), lease: 99 })).toMatchObject({
      error: 'lease_not_found',
    });
    const txn = t.run({
      type: 'txn',
      compare: [],
      success: [
        { type: 'put', key: 'y', value: b('v') },
        { type: 'put', key: 'z', value: b('v'), lease: 99 },
      ],
      failure: [],
    });
    expect(txn).toMatchObject({ error: 'lease_not_found' });
    // A missing lease in the branch that does not run is no matter (etcd checks the branch taken).
    as(
      t.run({ type: 'txn', compare: [], success: [], failure: [{ type: 'put', key: 'z', value: b('v'), lease: 99 }] }),
      'txn',
    );
    expect(t.sm.revision()).toBe(before);
    expect(t.sm.get('x')).toBeUndefined();
    expect(t.sm.get('y')).toBeUndefined();
    // A cas whose expectation fails answers as a failed cas, lease or not.
    expect(t.run({ type: 'cas', key: 'k1', expect: { absent: true }, value: b('v'), lease: 99 })).toMatchObject({
      type: 'cas',
      succeeded: false,
    });
  });

  it("etcd's ignore_value and ignore_lease keep the key's value or lease; the key must exist", () => {
    const t = h();
    t.run({ type: 'leaseGrant', id: 3, ttl: 10 });
    t.run({ type: 'put', key: 'k', value: b('one'), lease: 3 });
    as(t.run({ type: 'put', key: 'k', value: b(''), ignoreValue: true, lease: 3 }), 'put');
    expect(t.value('k')).toBe('one');
    as(t.run({ type: 'put', key: 'k', value: b('two'), ignoreLease: true }), 'put');
    expect(t.sm.get('k')).toMatchObject({ lease: 3, version: 3 });
    expect(t.value('k')).toBe('two');
    const before = t.sm.revision();
    expect(t.run({ type: 'put', key: 'nope', value: b(''), ignoreValue: true })).toMatchObject({
      type: 'error',
      error: 'key_not_found',
    });
    expect(t.sm.revision()).toBe(before);
    expect(() => encodeCommand({ cmd: { type: 'put', key: 'k', value: b('x'), ignoreValue: true } })).toThrow(
      'ignoreValue',
    );
    expect(() => encodeCommand({ cmd: { type: 'put', key: 'k', value: b(''), lease: 3, ignoreLease: true } })).toThrow(
      'ignoreLease',
    );
  });

  it('a put without a lease detaches the key; a delete removes it from its lease', () => {
    const t = h();
    const { id } = as(t.run({ type: 'leaseGrant', id: 7, ttl: 10 }), 'leaseGrant');
    t.run({ type: 'put', key: 'a', value: b('1'), lease: id });
    t.run({ type: 'put', key: 'b', value: b('1'), lease: id });
    t.put('a', '2');
    t.run({ type: 'delete', key: 'b' });
    expect(t.sm.get('a')?.lease).toBeUndefined();
    expect(t.sm.leaseKeys(id)).toEqual([]);
  });

  it('revoking deletes every key of the lease in one revision, as one set of delete events', () => {
    const t = h();
    const events: KvEvent[][] = [];
    const changes: LeaseChange[] = [];
    t.sm.onEvents = (es) => events.push([...es]);
    t.sm.onLeases = (cs) => changes.push(...cs);
    t.run({ type: 'leaseGrant', id: 3, ttl: 10 });
    for (const k of ['c', 'a', 'b']) t.run({ type: 'put', key: k, value: b(k), lease: 3 });
    t.put('other', 'x');
    events.length = 0;
    const r = as(t.run({ type: 'leaseRevoke', id: 3 }), 'leaseRevoke');
    expect(r).toEqual({ type: 'leaseRevoke', revision: 5, id: 3, deleted: 3 });
    expect(events).toHaveLength(1);
    expect(events[0]?.map((e) => [e.type, e.kv.key, e.revision, e.seq, e.prev?.lease])).toEqual([
      ['delete', 'a', 5, 0, 3],
      ['delete', 'b', 5, 1, 3],
      ['delete', 'c', 5, 2, 3],
    ]);
    expect(t.sm.getLease(3)).toBeUndefined();
    expect(t.value('other')).toBe('x');
    expect(changes).toEqual([
      { type: 'granted', id: 3, ttl: 10 },
      { type: 'revoked', id: 3 },
    ]);
    expect(t.run({ type: 'leaseRevoke', id: 3 })).toMatchObject({ error: 'lease_not_found' });
    // A lease without keys revokes without a revision.
    t.run({ type: 'leaseGrant', id: 4, ttl: 10 });
    expect(as(t.run({ type: 'leaseRevoke', id: 4 }), 'leaseRevoke')).toMatchObject({ revision: 5, deleted: 0 });
  });

  it('a retried grant answers its first result and grants nothing twice', () => {
    const t = h();
    const first = t.run({ type: 'leaseGrant', id: 0, ttl: 10 }, 'req-1');
    const changes: LeaseChange[] = [];
    t.sm.onLeases = (cs) => changes.push(...cs);
    expect(t.run({ type: 'leaseGrant', id: 0, ttl: 10 }, 'req-1')).toEqual(first);
    expect(t.sm.leases()).toHaveLength(1);
    expect(changes).toEqual([]);
    // A failed put with a request id fails the same way when retried, even once the lease exists.
    expect(t.run({ type: 'put', key: 'k', value: b('v'), lease: 50 }, 'req-2')).toMatchObject({
      error: 'lease_not_found',
    });
    t.run({ type: 'leaseGrant', id: 50, ttl: 10 });
    expect(t.run({ type: 'put', key: 'k', value: b('v'), lease: 50 }, 'req-2')).toMatchObject({
      error: 'lease_not_found',
    });
  });

  it('checkpoints record remaining TTLs (capped at the TTL), skip unknown leases, and write no revision', () => {
    const t = h();
    t.run({ type: 'leaseGrant', id: 1, ttl: 100 });
    t.run({ type: 'leaseGrant', id: 2, ttl: 100 });
    const r = t.run({
      type: 'leaseCheckpoint',
      checkpoints: [
        { id: 1, remaining: 40 },
        { id: 2, remaining: 400 },
        { id: 9, remaining: 1 },
      ],
    });
    expect(r).toEqual({ type: 'leaseCheckpoint', revision: 0 });
    expect(t.sm.leases()).toEqual([
      { id: 1, ttl: 100, remaining: 40 },
      { id: 2, ttl: 100, remaining: 100 },
    ]);
    t.run({ type: 'leaseCheckpoint', checkpoints: [{ id: 1, remaining: 0 }] });
    expect(t.sm.getLease(1)?.remaining).toBe(0);
  });

  it('a snapshot carries leases and the leases of records', () => {
    const t = h();
    t.run({ type: 'leaseGrant', id: 5, ttl: 30 });
    t.run({ type: 'leaseCheckpoint', checkpoints: [{ id: 5, remaining: 12 }] });
    t.run({ type: 'put', key: 'k', value: b('v'), lease: 5 });
    t.put('plain', 'v');
    const data = t.sm.snapshot();
    const u = h();
    u.sm.restore({ data, meta: { index: t.index, term: 1, conf: { voters: ['a'], learners: [] } } });
    expect(u.sm.leases()).toEqual([{ id: 5, ttl: 30, remaining: 12 }]);
    expect(u.sm.get('k')?.lease).toBe(5);
    expect(u.sm.get('plain')?.lease).toBeUndefined();
    expect(u.sm.leaseKeys(5)).toEqual(['k']);
  });
});

describe('lease commands on the wire', () => {
  const round = (cmd: unknown) => decodeCommand(encodeCommand({ cmd: cmd as never })).cmd;

  it('are canonical: lease 0 on a put means none', () => {
    expect(round({ type: 'put', key: 'k', value: b('v'), lease: 0 })).toEqual({
      type: 'put',
      key: 'k',
      value: b('v'),
      lease: undefined,
      prevKv: undefined,
    });
    expect(round({ type: 'leaseGrant', id: 0, ttl: 5 })).toEqual({ type: 'leaseGrant', id: 0, ttl: 5 });
  });

  it.each([
    [{ type: 'leaseGrant', id: 0, ttl: 0 }, 'ttl'],
    [{ type: 'leaseGrant', id: -1, ttl: 5 }, 'id'],
    [{ type: 'leaseGrant', id: 1, ttl: 9_000_000_001 }, 'ttl'],
    [{ type: 'leaseGrant', ttl: 5 }, 'id'],
    [{ type: 'leaseRevoke', id: 0 }, 'id'],
    [{ type: 'leaseRevoke', id: 1.5 }, 'id'],
    [{ type: 'leaseCheckpoint', checkpoints: [{ id: 1 }] }, 'remaining'],
    [{ type: 'leaseCheckpoint', checkpoints: [{ id: 1, remaining: 1, x: 1 }] }, 'unknown field'],
    [{ type: 'put', key: 'k', value: b('v'), lease: -3 }, 'lease'],
    [{ type: 'put', key: 'k', value: b('v'), lease: '3' }, 'lease'],
    [{ type: 'cas', key: 'k', value: b('v'), expect: { absent: true }, lease: 2 ** 53 }, 'lease'],
  ])('refuse %j', (cmd, field) => {
    expect(() => encodeCommand({ cmd: cmd as never })).toThrow(field);
  });
});
