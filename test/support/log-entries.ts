import type { Entry } from '../../src/raft/index.ts';
import type { Sql } from '../../src/storage/index.ts';

/** Log entries for storage tests: data defaults to `e<index>`, shown back as `index/term/data`. */
const enc = new TextEncoder();
const dec = new TextDecoder();

export const entry = (index: number, term: number, data = `e${index}`): Entry => ({
  index,
  term,
  type: 'normal',
  data: enc.encode(data),
});

/** Entries lo..hi (inclusive), all of `term`. */
export const range = (lo: number, hi: number, term: number): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => entry(lo + i, term));

export const show = (es: readonly Entry[]): string[] => es.map((e) => `${e.index}/${e.term}/${dec.decode(e.data)}`);

/** The rows of raft_log as `first+n` (one row per segment of n entries). */
export function segmentRows(sql: Sql): string[] {
  return sql.exec('SELECT idx, n FROM raft_log ORDER BY idx').map((r) => `${String(r.idx)}+${String(r.n)}`);
}
