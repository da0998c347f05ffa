/**
 * The in-memory KvTable of the simulator and the tests: a Map of records
 * plus an array of keys kept sorted by `compareKeys` (binary search; an
 * insert or delete shifts the array, O(n), fine at simulator sizes).
 * Transactions keep an undo log and replay it backwards on a throw; a
 * nested transaction is a savepoint.
 */
import { compareKeys } from './keys.ts';
import { EMPTY_META, type KvMeta, type KvTable } from './table.ts';
import type { EventPosition, KeyValue, KvEvent, Lease, RequestRecord } from './types.ts';

export class MemoryKvTable implements KvTable {
  private readonly kvs = new Map<string, KeyValue>();
  /** Every key of `kvs`, sorted by compareKeys. */
  private readonly keys: string[] = [];
  /** Insertion order is index order (see `deleteRequest`'s undo). */
  private reqs = new Map<string, RequestRecord>();
  /** The history, in (revision, seq) order. */
  private history: KvEvent[] = [];
  private m: KvMeta = EMPTY_META;
  private leaseMap = new Map<number, Lease>();
  /** Inverse operations of the changes made by the open transaction, oldest first; undefined outside one. */
  private undo: (() => void)[] | undefined;

  get(key: string): KeyValue | undefined {
    return this.kvs.get(key);
  }

  put(kv: KeyValue): void {
    const old = this.kvs.get(kv.key);
    if (old === undefined) this.keys.splice(this.lowerBound(kv.key), 0, kv.key);
    this.kvs.set(kv.key, kv);
    this.undo?.push(() => (old === undefined ? this.delete(kv.key) : this.put(old)));
  }

  delete(key: string): boolean {
    const old = this.kvs.get(key);
    if (old === undefined) return false;
    this.kvs.delete(key);
    this.keys.splice(this.lowerBound(key), 1);
    this.undo?.push(() => this.put(old));
    return true;
  }

  range(start: string, end: string | undefined, limit?: number): KeyValue[] {
    const out: KeyValue[] = [];
    const max = limit ?? Number.POSITIVE_INFINITY;
    for (let i = this.lowerBound(start); i < this.keys.length && out.length < max; i++) {
      const k = this.keys[i] as string;
      if (end !== undefined && compareKeys(k, end) >= 0) break;
      out.push(this.kvs.get(k) as KeyValue);
    }
    return out;
  }

  count(start: string, end: string | undefined): number {
    const from = this.lowerBound(start);
    const to = end === undefined ? this.keys.length : this.lowerBound(end);
    return Math.max(0, to - from);
  }

  meta(): KvMeta {
    return this.m;
  }

  setMeta(meta: KvMeta): void {
    const old = this.m;
    this.m = meta;
    this.undo?.push(() => {
      this.m = old;
    });
  }

  getRequest(id: string): RequestRecord | undefined {
    return this.reqs.get(id);
  }

  putRequest(record: RequestRecord): void {
    const old = this.reqs.get(record.id);
    this.reqs.set(record.id, record);
    this.undo?.push(() => (old === undefined ? this.reqs.delete(record.id) : this.reqs.set(record.id, old)));
  }

  deleteRequest(id: string): void {
    const old = this.reqs.get(id);
    if (old === undefined) return;
    this.reqs.delete(id);
    // Re-inserting would put it last: rebuild in index order (undo runs only after a throw).
    this.undo?.push(() => {
      this.reqs = new Map([...this.reqs, [id, old] as const].sort((a, b) => a[1].index - b[1].index));
    });
  }

  oldestRequest(): RequestRecord | undefined {
    for (const r of this.reqs.values()) return r;
    return undefined;
  }

  requestCount(): number {
    return this.reqs.size;
  }

  requests(): RequestRecord[] {
    return [...this.reqs.values()];
  }

  appendEvents(events: readonly KvEvent[]): void {
    const n = this.history.length;
    this.history.push(...events);
    this.undo?.push(() => {
      this.history.length = n;
    });
  }

  events(after: EventPosition, limit: number): KvEvent[] {
    // The first event past `after` (binary search on (revision, seq)).
    let lo = 0;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.history[mid] as KvEvent;
      if (e.revision < after.revision || (e.revision === after.revision && e.seq <= after.seq)) lo = mid + 1;
      else hi = mid;
    }
    return this.history.slice(lo, lo + limit);
  }

  compactEvents(revision: number): void {
    const old = this.history;
    this.history = old.filter((e) => e.revision >= revision);
    this.undo?.push(() => {
      this.history = old;
    });
  }

  getLease(id: number): Lease | undefined {
    return this.leaseMap.get(id);
  }

  putLease(lease: Lease): void {
    const old = this.leaseMap.get(lease.id);
    this.leaseMap.set(lease.id, lease);
    this.undo?.push(() => (old === undefined ? this.leaseMap.delete(lease.id) : this.leaseMap.set(lease.id, old)));
  }

  deleteLease(id: number): void {
    const old = this.leaseMap.get(id);
    if (old === undefined) return;
    this.leaseMap.delete(id);
    this.undo?.push(() => this.leaseMap.set(id, old));
  }

  leases(after = 0, limit = Number.POSITIVE_INFINITY): Lease[] {
    const ids = [...this.leaseMap.keys()].filter((id) => id > after).sort((a, b) => a - b);
    return ids.slice(0, limit).map((id) => this.leaseMap.get(id) as Lease);
  }

  /** A scan of every key: fine at simulator sizes. */
  leaseKeys(id: number, limit = Number.POSITIVE_INFINITY): string[] {
    const out: string[] = [];
    for (const k of this.keys) {
      if (out.length >= limit) break;
      if ((this.kvs.get(k) as KeyValue).lease === id) out.push(k);
    }
    return out;
  }

  clear(): void {
    const kvs = [...this.kvs.values()];
    const keys = [...this.keys];
    const reqs = this.reqs;
    const history = this.history;
    const m = this.m;
    const leases = this.leaseMap;
    this.leaseMap = new Map();
    this.kvs.clear();
    this.keys.length = 0;
    this.reqs = new Map();
    this.history = [];
    this.m = EMPTY_META;
    this.undo?.push(() => {
      for (const kv of kvs) this.kvs.set(kv.key, kv);
      for (const k of keys) this.keys.push(k);
      this.reqs = reqs;
      this.history = history;
      this.m = m;
      this.leaseMap = leases;
    });
  }

  transaction<T>(fn: () => T): T {
    const outer = this.undo;
    const undo: (() => void)[] = [];
    this.undo = undo;
    try {
      const out = fn();
      if (outer) for (const u of undo) outer.push(u);
      return out;
    } catch (e) {
      this.undo = undefined;
      for (let i = undo.length - 1; i >= 0; i--) (undo[i] as () => void)();
      throw e;
    } finally {
      this.undo = outer;
    }
  }

  /** The position of the first key >= `key` in `keys`. */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.keys[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
