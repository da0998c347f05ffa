/** Events for tests of the history: builders, positions, and reading a table's whole history a page at a time. */
import { beforeRevision, type KeyValue, type KvEvent, type KvTable } from '../../src/kv/index.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

/** A put of `key` at (rev, seq) replacing `prev` (if any), with a value of `size` bytes (or its own text). */
export function putEvent(key: string, rev: number, seq = 0, prev?: KeyValue, size?: number): KvEvent {
  return {
    type: 'put',
    revision: rev,
    seq,
    kv: {
      key,
      value: size === undefined ? bytes(`v:${key}@${rev}`) : new Uint8Array(size).fill(rev % 251),
      createRevision: prev?.createRevision ?? rev,
      modRevision: rev,
      version: (prev?.version ?? 0) + 1,
    },
    ...(prev ? { prev } : {}),
  };
}

/** The delete of `prev`'s key at (rev, seq). */
export function deleteEvent(prev: KeyValue, rev: number, seq = 0): KvEvent {
  return {
    type: 'delete',
    revision: rev,
    seq,
    kv: { key: prev.key, value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0 },
    prev,
  };
}

export const positions = (es: readonly KvEvent[]) => es.map((e) => `${e.revision}.${e.seq}`);

/** Every kept event from revision `from`, read page by page with `limit` events a page. */
export function allEvents(t: Pick<KvTable, 'events'>, from = 1, limit = 3): KvEvent[] {
  const out: KvEvent[] = [];
  for (let page = t.events(beforeRevision(from), limit); page.length > 0; ) {
    out.push(...page);
    page = t.events(page[page.length - 1] as KvEvent, limit);
  }
  return out;
}
