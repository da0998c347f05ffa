/** GET /v1/watch: what to watch, read from the query (etcd's WatchCreateRequest) and Last-Event-ID. */
import { prefixEnd } from '../kv/index.ts';
import type { WatchSpec } from '../node/watch-streams.ts';
import type { Principal } from './auth.ts';
import { needInterval } from './commands.ts';
import { badRequest } from './errors.ts';
import { checkKey, queryBool, queryInt } from './input.ts';

export const WATCH_QUERY = ['key', 'prefix', 'range_end', 'start_revision', 'prev_kv', 'filter', 'progress_notify'];

/** etcd's watch filters, by name (a Map: an inherited name is no filter). */
const FILTERS = new Map<string, 'noPut' | 'noDelete'>([
  ['noput', 'noPut'],
  ['nodelete', 'noDelete'],
]);

/**
 * `key` alone watches one key, `key` with `range_end` the interval
 * [key, range_end), `prefix` every key under it. `start_revision` (default:
 * the next revision) is where it begins; a Last-Event-ID header (an
 * EventSource reconnecting) resumes after that revision and wins.
 */
export function watchSpecOf(q: Map<string, string>, lastEventId: string | undefined, p: Principal): WatchSpec {
  const key = q.get('key');
  const prefix = q.get('prefix');
  const rangeEnd = q.get('range_end');
  if ((key === undefined) === (prefix === undefined)) throw badRequest('key', 'give key or prefix (one of them)');
  if (rangeEnd !== undefined && key === undefined) throw badRequest('range_end', 'only with key');
  let start: string;
  let end: string | undefined;
  if (prefix !== undefined) {
    start = checkKey(prefix, 'prefix');
    end = prefixEnd(start);
  } else {
    start = checkKey(key, 'key');
    end = rangeEnd === undefined ? `${start}\u0000` : checkKey(rangeEnd, 'range_end');
  }
  needInterval(p, start, end, prefix !== undefined ? 'prefix' : 'key');
  let startRevision = queryInt(q, 'start_revision', 0, Number.MAX_SAFE_INTEGER);
  if (lastEventId !== undefined) {
    if (!/^\d{1,15}$/.test(lastEventId)) throw badRequest('Last-Event-ID', 'expected a revision');
    startRevision = Number(lastEventId) + 1;
  }
  const filters = { noPut: false, noDelete: false };
  const f = q.get('filter');
  if (f !== undefined)
    for (const name of f.split(',')) {
      const which = FILTERS.get(name);
      if (which === undefined) throw badRequest('filter', 'expected noput, nodelete, or both separated by a comma');
      filters[which] = true;
    }
  return {
    start,
    end,
    startRevision,
    prevKv: queryBool(q, 'prev_kv'),
    progressNotify: queryBool(q, 'progress_notify'),
    ...filters,
  };
}
