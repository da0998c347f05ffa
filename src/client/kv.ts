/**
 * Keys and ranges: GET, PUT and DELETE /v1/kv/{key}, GET and DELETE /v1/kv,
 * POST /v1/cas and POST /v1/compact. Every write carries an Idempotency-Key
 * (all of these routes take one), so it is retried safely.
 */
import { errorOf } from './errors.ts';
import type { Query, Transport } from './http.ts';
import { type Consistency, type KeyValue, type KeyValueJson, kvOf, type Value, valueJson } from './types.ts';

const utf8 = new TextEncoder();

/** A key as one path segment: every `/` and `%` encoded, so the API decodes it back exactly once. */
export function keyPath(key: string): string {
  return encodeURIComponent(key);
}

export interface ReadOptions {
  readonly consistency?: Consistency;
  /** Read the store as it was at this revision (CompactedError below the compaction point). */
  readonly revision?: number;
}

export interface GetResult {
  /** The key, or undefined if it does not exist. */
  readonly kv: KeyValue | undefined;
  /** The store revision the read saw. */
  readonly revision: number;
}

export async function get(t: Transport, key: string, o: ReadOptions = {}): Promise<GetResult> {
  const a = await t.request({
    method: 'GET',
    path: `/v1/kv/${keyPath(key)}`,
    query: { consistency: o.consistency, revision: o.revision },
    retry: 'read',
    answers: [404],
  });
  const body = a.body as KeyValueJson & { revision: number; error?: { code: string } };
  if (a.status === 404) {
    // 404 key_not_found is an answer; any other 404 (a route) is not.
    if (body.error?.code !== 'key_not_found') throw errorOf(a.status, body);
    return { kv: undefined, revision: body.revision };
  }
  return { kv: kvOf(body), revision: body.revision };
}

/** A write's conditions: its ETags are mod_revisions (README "Compare-and-swap in plain HTTP"). */
export interface WriteConditions {
  /** Write only if the key exists (`*`) or is at this mod_revision. */
  readonly ifMatch?: '*' | number;
  /** Write only if the key does not exist (`*`) or is at none of these mod_revisions. */
  readonly ifNoneMatch?: '*' | readonly number[];
}

export interface PutOptions extends WriteConditions {
  /** Attach the key to this lease (revoking or expiring it deletes the key). */
  readonly lease?: string;
}

export interface PutResult {
  readonly revision: number;
  /** The write created the key (only said when `ifNoneMatch: '*'` required it to be absent). */
  readonly created: boolean;
}

/** PUT /v1/kv/{key}; a failed condition is a PreconditionFailedError holding the key as it is. */
export async function put(t: Transport, key: string, value: Value, o: PutOptions = {}): Promise<PutResult> {
  const a = await t.request({
    method: 'PUT',
    path: `/v1/kv/${keyPath(key)}`,
    query: { lease: o.lease },
    raw: typeof value === 'string' ? utf8.encode(value) : value,
    headers: conditionHeaders(o),
    retry: 'keyed',
  });
  return { revision: (a.body as { revision: number }).revision, created: a.status === 201 };
}

export interface DeleteResult {
  /** How many keys went (0: there was none). */
  readonly deleted: number;
  readonly revision: number;
}

/** DELETE /v1/kv/{key}: a missing key deletes nothing (`deleted: 0`); a failed condition throws. */
export async function del(t: Transport, key: string, o: WriteConditions = {}): Promise<DeleteResult> {
  const a = await t.request({
    method: 'DELETE',
    path: `/v1/kv/${keyPath(key)}`,
    headers: conditionHeaders(o),
    retry: 'keyed',
    answers: [404],
  });
  const body = a.body as { deleted?: number; revision: number; error?: { code: string } };
  if (a.status === 404 && body.error?.code !== 'key_not_found') throw errorOf(a.status, body);
  return { deleted: body.deleted ?? 0, revision: body.revision };
}

/** Which keys: everything under `prefix`, or `[start, end)` (end exclusive; no end: to the last key). */
export type KeyRange = { readonly prefix: string } | { readonly start: string; readonly end?: string };

/** DELETE /v1/kv?prefix= or ?start=&end= (the API needs both bounds of an interval). */
export async function deleteRange(
  t: Transport,
  r: { readonly prefix: string } | { readonly start: string; readonly end: string },
): Promise<DeleteResult> {
  const a = await t.request({ method: 'DELETE', path: '/v1/kv', query: rangeQuery(r), retry: 'keyed' });
  return a.body as DeleteResult;
}

export type RangeOptions = KeyRange &
  ReadOptions & {
    /** Keys per page (the API's default 100, at most 1000). */
    readonly limit?: number;
    /** Records without their values. */
    readonly keysOnly?: boolean;
  };

export interface RangePage {
  readonly kvs: KeyValue[];
  /** Keys in the whole range (not only this page). */
  readonly count: number;
  /** More keys follow this page. */
  readonly more: boolean;
  readonly revision: number;
  /** Where the next page starts, when `more`. */
  readonly cursor?: string;
}

/** One page of GET /v1/kv, from `cursor` (a page's `cursor`) if given. */
export async function rangePage(t: Transport, o: RangeOptions, cursor?: string): Promise<RangePage> {
  const a = await t.request({
    method: 'GET',
    path: '/v1/kv',
    query: {
      ...rangeQuery(o),
      limit: o.limit,
      keys_only: o.keysOnly,
      consistency: o.consistency,
      revision: o.revision,
      cursor,
    },
    retry: 'read',
  });
  const b = a.body as { kvs: KeyValueJson[]; count: number; more: boolean; revision: number; cursor?: string };
  return {
    kvs: b.kvs.map(kvOf),
    count: b.count,
    more: b.more,
    revision: b.revision,
    ...(b.cursor !== undefined ? { cursor: b.cursor } : {}),
  };
}

/**
 * Every page of a range, following the cursor. A linearizable range reads
 * each later page at the first page's revision, so the pages together are
 * one snapshot (a compaction meanwhile is a CompactedError).
 */
export async function* rangePages(t: Transport, o: RangeOptions): AsyncGenerator<RangePage, void, undefined> {
  let page = await rangePage(t, o);
  const pinned: RangeOptions =
    o.revision === undefined && o.consistency !== 'serializable' ? { ...o, revision: page.revision } : o;
  yield page;
  while (page.more && page.cursor !== undefined) {
    page = await rangePage(t, pinned, page.cursor);
    yield page;
  }
}

/** Every key of a range in one array (all pages, one snapshot as rangePages reads them). */
export async function rangeAll(t: Transport, o: RangeOptions): Promise<{ kvs: KeyValue[]; revision: number }> {
  const kvs: KeyValue[] = [];
  let revision = 0;
  for await (const page of rangePages(t, o)) {
    kvs.push(...page.kvs);
    revision = page.revision;
  }
  return { kvs, revision };
}

/** GET /v1/kv?count_only=true: how many keys the range holds. */
export async function count(t: Transport, o: KeyRange & ReadOptions): Promise<{ count: number; revision: number }> {
  const a = await t.request({
    method: 'GET',
    path: '/v1/kv',
    query: { ...rangeQuery(o), count_only: true, consistency: o.consistency, revision: o.revision },
    retry: 'read',
  });
  return a.body as { count: number; revision: number };
}

/** What a cas expects of the key: exactly one of these. */
export type CasExpect =
  | { readonly value: Value }
  | { readonly modRevision: number }
  | { readonly version: number }
  | { readonly absent: true };

export interface CasResult {
  readonly succeeded: boolean;
  readonly revision: number;
  /** The key as it is after the cas (absent if it does not exist). */
  readonly current?: KeyValue;
}

/** POST /v1/cas: put `value` only if the key matches `expect`. */
export async function cas(
  t: Transport,
  key: string,
  expect: CasExpect,
  value: Value,
  o: { readonly lease?: string } = {},
): Promise<CasResult> {
  const a = await t.request({
    method: 'POST',
    path: '/v1/cas',
    json: {
      key,
      ...valueJson(value),
      expect: expectJson(expect),
      ...(o.lease !== undefined ? { lease: o.lease } : {}),
    },
    retry: 'keyed',
  });
  const b = a.body as { succeeded: boolean; revision: number; current?: KeyValueJson };
  return { succeeded: b.succeeded, revision: b.revision, ...(b.current ? { current: kvOf(b.current) } : {}) };
}

/** POST /v1/compact (admin): drops the history below `revision` on every replica. */
export async function compact(t: Transport, revision: number): Promise<{ revision: number; compactRevision: number }> {
  const a = await t.request({ method: 'POST', path: '/v1/compact', json: { revision }, retry: 'keyed' });
  const b = a.body as { revision: number; compact_revision: number };
  return { revision: b.revision, compactRevision: b.compact_revision };
}

function expectJson(e: CasExpect): Record<string, unknown> {
  if (Object.hasOwn(e, 'modRevision')) return { mod_revision: (e as { modRevision: number }).modRevision };
  if (Object.hasOwn(e, 'version')) return { version: (e as { version: number }).version };
  if (Object.hasOwn(e, 'absent')) return { absent: true };
  return valueJson((e as { value: Value }).value);
}

export function rangeQuery(r: KeyRange): Query {
  if (Object.hasOwn(r, 'prefix')) return { prefix: (r as { prefix: string }).prefix };
  const { start, end } = r as { start: string; end?: string };
  return { start, end };
}

function conditionHeaders(o: WriteConditions): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.ifMatch !== undefined) h['If-Match'] = o.ifMatch === '*' ? '*' : `"${o.ifMatch}"`;
  if (o.ifNoneMatch !== undefined)
    h['If-None-Match'] = o.ifNoneMatch === '*' ? '*' : o.ifNoneMatch.map((r) => `"${r}"`).join(', ');
  return h;
}
