/**
 * Conditional requests (RFC 9110 §13). A key's mod_revision is its ETag.
 * `If-Match` and `If-None-Match` are honoured where they have a meaning (one
 * key: GET, PUT and DELETE `/v1/kv/{key}`) and refused with 400 on every other
 * route; the date and range conditionals mean nothing here and are refused on
 * every route. None is ever ignored: a route that starts to honour one is
 * added to HONOURED, and everything else refuses it by default.
 */
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Compare, KeyValue } from '../kv/index.ts';
import { badRequest } from './errors.ts';
import type { DecodedInput } from './request.ts';

/** `*` or a list of ETags (mod_revisions). */
export type EtagSet = '*' | readonly number[];

export interface Preconditions {
  readonly ifMatch?: EtagSet;
  readonly ifNoneMatch?: EtagSet;
}

/** Routes, as `METHOD pattern`, that honour If-Match and If-None-Match. */
const HONOURED = new Set(['GET /v1/kv/*', 'PUT /v1/kv/*', 'DELETE /v1/kv/*']);
const NEVER = ['If-Modified-Since', 'If-Unmodified-Since', 'If-Range'];
const NONE: Preconditions = Object.freeze({});
const MAX_ETAGS = 32;

/** `*`, or a comma-separated list of `"12"`, `W/"12"` or bare `12`. */
export function parseEtags(header: string, field: string): EtagSet {
  const s = header.trim();
  if (s === '*') return '*';
  const tags = s.split(',').map((t) => t.trim());
  if (tags.length > MAX_ETAGS) throw badRequest(field, `at most ${MAX_ETAGS} ETags`);
  return tags.map((t) => {
    const m = /^(?:W\/)?(?:"([1-9]\d{0,15})"|([1-9]\d{0,15}))$/.exec(t);
    const n = Number(m?.[1] ?? m?.[2]);
    if (!Number.isSafeInteger(n)) throw badRequest(field, 'expected * or ETags like "12"');
    return n;
  });
}

/** Whether `kv` (undefined: no such key) matches `tags`. */
export function etagsMatch(tags: EtagSet, kv: KeyValue | undefined): boolean {
  if (kv === undefined) return false;
  return tags === '*' || tags.includes(kv.modRevision);
}

/**
 * The compares a conditional write on `key` must pass. All compares of a txn
 * must hold, so `If-Match` takes `*` or one ETag here (a choice of several
 * cannot be expressed), while `If-None-Match` may list several.
 */
export function writeGuards(key: string, pre: Preconditions): Compare[] {
  const out: Compare[] = [];
  const { ifMatch, ifNoneMatch } = pre;
  if (ifMatch === '*') out.push({ key, target: 'version', op: '>', value: 0 });
  else if (ifMatch !== undefined) {
    const [rev, ...more] = ifMatch;
    if (rev === undefined || more.length > 0) throw badRequest('If-Match', 'a write takes * or exactly one ETag');
    out.push({ key, target: 'modRevision', op: '=', value: rev });
  }
  if (ifNoneMatch === '*') out.push({ key, target: 'version', op: '=', value: 0 });
  else if (ifNoneMatch !== undefined)
    for (const rev of ifNoneMatch) out.push({ key, target: 'modRevision', op: '!=', value: rev });
  return out;
}

/**
 * Parses If-Match / If-None-Match into `c.var.preconditions` on the routes
 * that honour them; refuses every conditional header elsewhere (400).
 */
export function conditionals(): MiddlewareHandler<{
  Variables: { input: DecodedInput; preconditions: Preconditions };
}> {
  return async function conditionals(c, next) {
    // Read with every other header, once (request.ts), rather than looked up one by one here.
    const sent = c.get('input').conditionalHeaders;
    for (const name of NEVER) if (sent.has(name.toLowerCase())) throw badRequest(name, 'not supported by this API');
    const ifMatch = sent.get('if-match');
    const ifNoneMatch = sent.get('if-none-match');
    if (ifMatch === undefined && ifNoneMatch === undefined) {
      c.set('preconditions', NONE);
      await next();
      return;
    }
    // The route that answers: the first handler that matched (middleware is registered for ALL methods).
    const route = matchedRoutes(c).find((r) => r.method !== 'ALL');
    const honoured = route !== undefined && HONOURED.has(`${route.method} ${route.path}`);
    if (!honoured) {
      if (ifMatch !== undefined) throw badRequest('If-Match', 'has no meaning on this route');
      if (ifNoneMatch !== undefined) throw badRequest('If-None-Match', 'has no meaning on this route');
    }
    c.set('preconditions', {
      ...(ifMatch !== undefined ? { ifMatch: parseEtags(ifMatch, 'If-Match') } : {}),
      ...(ifNoneMatch !== undefined ? { ifNoneMatch: parseEtags(ifNoneMatch, 'If-None-Match') } : {}),
    });
    await next();
  };
}
