import { describe, expect, it } from 'vitest';
import { batchesFor, type KeyValue, type KvEvent, type WatchFilter } from '../../src/kv/index.ts';

const kv = (key: string, rev: number): KeyValue => ({
  key,
  value: new TextEncoder().encode(`${key}@${rev}`),
  createRevision: rev,
  modRevision: rev,
  version: 1,
});
const put = (key: string, rev: number, seq = 0, prev?: KeyValue): KvEvent => ({
  type: 'put',
  revision: rev,
  seq,
  kv: kv(key, rev),
  ...(prev ? { prev } : {}),
});
const del = (key: string, rev: number, seq = 0): KvEvent => ({
  type: 'delete',
  revision: rev,
  seq,
  kv: { key, value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0 },
  prev: kv(key, rev - 1),
});
const all: WatchFilter = { start: '', end: undefined, prevKv: true, noPut: false, noDelete: false };
const shape = (bs: ReturnType<typeof batchesFor>) =>
  bs.map((b) => `${b.revision}: ${b.events.map((e) => `${e.type} ${e.kv.key}${e.prev ? '+prev' : ''}`).join(', ')}`);

describe('watch filter (etcd watch semantics)', () => {
  const events = [put('a', 1), put('b/1', 2), put('b/2', 2, 1), del('b/1', 3), put('c', 4, 0, kv('c', 1)), del('a', 5)];

  it('groups the events of a revision together, in order', () => {
    expect(shape(batchesFor(all, events))).toEqual([
      '1: put a',
      '2: put b/1, put b/2',
      '3: delete b/1+prev',
      '4: put c+prev',
      '5: delete a+prev',
    ]);
  });

  it('keeps only the watched interval; a revision with nothing in it is left out', () => {
    expect(shape(batchesFor({ ...all, start: 'b/', end: 'b0' }, events))).toEqual([
      '2: put b/1, put b/2',
      '3: delete b/1+prev',
    ]);
    expect(shape(batchesFor({ ...all, start: 'c', end: 'c\u0000' }, events))).toEqual(['4: put c+prev']);
  });

  it('noPut, noDelete and prevKv are exact', () => {
    expect(shape(batchesFor({ ...all, noPut: true }, events))).toEqual(['3: delete b/1+prev', '5: delete a+prev']);
    expect(shape(batchesFor({ ...all, noDelete: true, prevKv: false }, events))).toEqual([
      '1: put a',
      '2: put b/1, put b/2',
      '4: put c',
    ]);
  });
});
