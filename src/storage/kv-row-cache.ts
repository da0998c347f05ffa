import type { KeyValue } from '../kv/index.ts';

/** Bytes counted per record beyond its key and value: the object, the map slot. */
const RECORD_OVERHEAD_BYTES = 96;

/**
 * The most recently read or written rows of the kv table, by key, so that a
 * write to a hot key (which reads the old row for its create revision and
 * version) and a read of one skip SQLite. Bounded by bytes and by count; the
 * least recently used goes first. Holds copies of values: a value may be a
 * view into a much larger buffer (a decoded log segment) that must not stay
 * alive because of it.
 *
 * Its owner keeps it equal to the table: every write goes through `set` or
 * `delete`, and anything that rewrites the table behind it (a snapshot
 * install, a rolled-back transaction) calls `clear`.
 */
export class KvRowCache {
  private readonly maxBytes: number;
  private readonly maxRows: number;
  private readonly rows = new Map<string, { readonly kv: KeyValue; readonly bytes: number }>();
  private bytes = 0;

  constructor(maxBytes: number, maxRows: number) {
    this.maxBytes = maxBytes;
    this.maxRows = maxRows;
  }

  get(key: string): KeyValue | undefined {
    const hit = this.rows.get(key);
    if (!hit) return undefined;
    // Map order is recency order: move the hit to the end.
    this.rows.delete(key);
    this.rows.set(key, hit);
    return hit.kv;
  }

  set(kv: KeyValue): void {
    this.delete(kv.key);
    const bytes = kv.key.length * 2 + kv.value.byteLength + RECORD_OVERHEAD_BYTES;
    if (bytes > this.maxBytes / 16) return;
    this.rows.set(kv.key, { kv: { ...kv, value: kv.value.slice() }, bytes });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes || this.rows.size > this.maxRows) {
      const oldest = this.rows.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: string): void {
    const held = this.rows.get(key);
    if (!held) return;
    this.rows.delete(key);
    this.bytes -= held.bytes;
  }

  clear(): void {
    this.rows.clear();
    this.bytes = 0;
  }
}
