/**
 * etcd's RangeRequest as it reads the store (etcdserver's applier Range, 3.4):
 * the interval its key and range_end name, and what it does with the records
 * of that interval: the revision filters, the sort, the limit, `count` (every
 * record of the interval, before filters) and `more`.
 */
import { compareBytes, compareKeys, type KeyValue } from '../../kv/index.ts';
import { storeRevision } from './etcd-json.ts';

export const SORT_ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
export const SORT_TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;

export interface EtcdRange {
  readonly key: string;
  /** undefined: the one key; '\0': every key from `key` on; else the interval [key, rangeEnd). */
  readonly rangeEnd: string | undefined;
  readonly limit: number;
  /** etcd's revision (0: now). */
  readonly revision: number;
  readonly sortOrder: (typeof SORT_ORDERS)[number];
  readonly sortTarget: (typeof SORT_TARGETS)[number];
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  /** etcd's revisions (0: no bound). */
  readonly minModRevision: number;
  readonly maxModRevision: number;
  readonly minCreateRevision: number;
  readonly maxCreateRevision: number;
}

/** The interval of the store a range reads: [start, end), end undefined for no bound. */
export function intervalOf(r: Pick<EtcdRange, 'key' | 'rangeEnd'>): { start: string; end: string | undefined } {
  if (r.rangeEnd === undefined) return { start: r.key, end: `${r.key}\u0000` };
  if (r.rangeEnd === '\u0000') return { start: r.key, end: undefined };
  return { start: r.key, end: r.rangeEnd };
}

/**
 * Whether a range needs every record of its interval (filters, or a sort
 * order) before it can apply the limit. A sort target without an order is
 * not one: etcd takes the limit's records in key order first, then sorts
 * them ascending by the target (sortInPlace).
 */
export function needsAll(r: EtcdRange): boolean {
  return r.sortOrder !== 'NONE' || r.minModRevision + r.maxModRevision + r.minCreateRevision + r.maxCreateRevision > 0;
}

/**
 * Applies a range's filters, sort and limit to every record of its interval
 * (in key order): the records to return and whether it cut some (`more`).
 */
export function shape(r: EtcdRange, all: readonly KeyValue[]): { kvs: KeyValue[]; more: boolean } {
  const kvs = sortInPlace(
    r,
    all.filter((kv) => kept(r, kv)),
  );
  if (r.limit > 0 && kvs.length > r.limit) return { kvs: kvs.slice(0, r.limit), more: true };
  return { kvs, more: false };
}

/**
 * Puts records in key order into the range's sort order: etcd sorts
 * ascending by a target other than the key even when no order is given.
 */
export function sortInPlace(r: EtcdRange, kvs: KeyValue[]): KeyValue[] {
  const order = r.sortTarget !== 'KEY' && r.sortOrder === 'NONE' ? 'ASCEND' : r.sortOrder;
  if (order === 'NONE' || (order === 'ASCEND' && r.sortTarget === 'KEY')) return kvs;
  const by = compareBy(r.sortTarget);
  // Stable: records equal by the target keep key order, as Go's sort.Sort does not promise but etcd's data shows.
  return kvs.sort((a, b) => (order === 'ASCEND' ? by(a, b) : by(b, a)));
}

/**
 * For a range with a sort target but no order and a limit: how many records
 * (in key order) etcd reads before it sorts them, the limit and one more
 * (for `more`); undefined for any other range.
 */
export function reorderedLimit(r: EtcdRange): number | undefined {
  return !needsAll(r) && r.sortTarget !== 'KEY' && r.limit > 0 && !r.countOnly ? r.limit + 1 : undefined;
}

/** The records reorderedLimit read, sorted, cut to the limit: the answer's records and `more`. */
export function sortedCut(r: EtcdRange, read: readonly KeyValue[]): { kvs: KeyValue[]; more: boolean } {
  const sorted = sortInPlace(r, [...read]);
  const over = r.limit > 0 && sorted.length > r.limit;
  return { kvs: over ? sorted.slice(0, r.limit) : sorted, more: over };
}

function kept(r: EtcdRange, kv: KeyValue): boolean {
  const mod = kv.modRevision + 1;
  const create = kv.createRevision + 1;
  if (r.minModRevision > 0 && mod < r.minModRevision) return false;
  if (r.maxModRevision > 0 && mod > r.maxModRevision) return false;
  if (r.minCreateRevision > 0 && create < r.minCreateRevision) return false;
  if (r.maxCreateRevision > 0 && create > r.maxCreateRevision) return false;
  return true;
}

function compareBy(target: EtcdRange['sortTarget']): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case 'KEY':
      return (a, b) => compareKeys(a.key, b.key);
    case 'VERSION':
      return (a, b) => a.version - b.version;
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision;
    case 'MOD':
      return (a, b) => a.modRevision - b.modRevision;
    case 'VALUE':
      return (a, b) => compareBytes(a.value, b.value);
  }
}

/** The store revision a range reads at (undefined: now). */
export function readRevision(r: EtcdRange): number | undefined {
  return r.revision === 0 ? undefined : storeRevision(r.revision);
}
