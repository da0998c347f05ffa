/**
 * Reads as of a past revision (etcd's Range with `revision`). The table holds
 * the state now and every event since the compaction point; the state as of
 * revision N is the state now with every change after N undone, and the first
 * change of a key after N carries the key's record as of N (its `prev`).
 * The caller checks that N is at or above the compaction point.
 */
import { compareKeys, resolveInterval, utf8Length } from './keys.ts';
import type { KvTable } from './table.ts';
import {
  beforeRevision,
  type EventPosition,
  type KeyValue,
  type KvEvent,
  type RangeQuery,
  type RangeResult,
} from './types.ts';

const EVENTS_PER_PAGE = 256;
const ROWS_PER_PAGE = 64;

/** The record of `key` as of `revision`. */
export function stateAt(table: KvTable, key: string, revision: number): KeyValue | undefined {
  for (const e of eventsAfter(table, revision)) if (e.kv.key === key) return e.prev;
  return table.get(key);
}

/** Every kept event after `revision`, read a page at a time. */
function* eventsAfter(table: KvTable, revision: number): Generator<KvEvent> {
  let after: EventPosition = beforeRevision(revision + 1);
  for (;;) {
    const page = table.events(after, EVENTS_PER_PAGE);
    if (page.length === 0) return;
    yield* page;
    after = page[page.length - 1] as KvEvent;
  }
}

/** Just before event `e`: where to read it again. */
function positionBefore(e: KvEvent): EventPosition {
  return e.seq > 0 ? { revision: e.revision, seq: e.seq - 1 } : beforeRevision(e.revision);
}

/** A key changed after the revision read: where its first change is, and whether it existed then. */
interface Changed {
  readonly before: EventPosition;
  readonly existed: boolean;
}

function inRange(key: string, start: string, end: string | undefined): boolean {
  return compareKeys(key, start) >= 0 && (end === undefined || compareKeys(key, end) < 0);
}

/**
 * A range as of `revision`: the keys of [start, end) now, merged in key order
 * with the keys changed since, each changed one as it was then. Memory holds
 * the changed keys' names and positions, not their values; a value is read
 * back only for a record the page returns.
 */
export function rangeAt(table: KvTable, q: RangeQuery, revision: number, maxBytes: number): RangeResult {
  const { start, end } = resolveInterval(q);
  if (end !== undefined && compareKeys(start, end) >= 0) return { kvs: [], count: 0, more: false };
  const changed = new Map<string, Changed>();
  for (const e of eventsAfter(table, revision)) {
    if (!changed.has(e.kv.key) && inRange(e.kv.key, start, end))
      changed.set(e.kv.key, { before: positionBefore(e), existed: e.prev !== undefined });
  }
  const changedNow = [...changed.keys()].filter((k) => table.get(k) !== undefined).length;
  const existedThen = [...changed.values()].filter((c) => c.existed).length;
  const count = table.count(start, end) - changedNow + existedThen;
  if (q.countOnly) return { kvs: [], count, more: false };

  const limit = q.limit === undefined || q.limit === 0 ? undefined : q.limit;
  const kvs: KeyValue[] = [];
  let bytes = 0;
  let next: string | undefined;
  for (const [key, now, c] of mergedKeys(table, start, end, changed)) {
    const kv = c === undefined ? now : c.existed ? then(table, c) : undefined;
    if (kv === undefined) continue;
    const size = utf8Length(key) + (q.keysOnly ? 0 : kv.value.byteLength);
    if ((limit !== undefined && kvs.length >= limit) || (kvs.length > 0 && bytes + size > maxBytes)) {
      next = key;
      break;
    }
    kvs.push(q.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv);
    bytes += size;
  }
  return { kvs, count, more: next !== undefined, ...(next !== undefined ? { next } : {}) };
}

/** The record a changed key had: the prev of its first change. */
function then(table: KvTable, c: Changed): KeyValue | undefined {
  return table.events(c.before, 1)[0]?.prev;
}

/**
 * The keys of [start, end) now and the changed ones, in key order, each with
 * its record now (if it exists) and its change (undefined: unchanged since).
 */
function* mergedKeys(
  table: KvTable,
  start: string,
  end: string | undefined,
  changed: ReadonlyMap<string, Changed>,
): Generator<[string, KeyValue | undefined, Changed | undefined]> {
  const sorted = [...changed.keys()].sort(compareKeys);
  let i = 0;
  let from = start;
  for (;;) {
    const page = table.range(from, end, ROWS_PER_PAGE);
    for (const row of page) {
      for (; i < sorted.length && compareKeys(sorted[i] as string, row.key) < 0; i++) {
        const k = sorted[i] as string;
        yield [k, undefined, changed.get(k)];
      }
      if (sorted[i] === row.key) i++;
      yield [row.key, row, changed.get(row.key)];
    }
    const last = page[page.length - 1];
    if (page.length < ROWS_PER_PAGE || last === undefined) break;
    from = `${last.key}\u0000`;
  }
  for (; i < sorted.length; i++) {
    const k = sorted[i] as string;
    yield [k, undefined, changed.get(k)];
  }
}
