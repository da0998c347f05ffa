/** Keys and ranges: GET, PUT and DELETE /v1/kv/{key}, GET and DELETE /v1/kv, POST /v1/cas and /v1/txn. */
import {
  type Compare,
  compareKeys,
  type KeyValue,
  type KvCommand,
  type KvResult,
  prefixEnd,
  type TxnOp,
} from '../../kv/index.ts';
import type { Consistency } from '../cluster.ts';
import { casCommand, needKey, needRole, rangeBounds, rangeJson, txnCommand, txnResultJson } from '../commands.ts';
import { etagsMatch, writeGuards } from '../conditions.ts';
import type { App, C } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { checkKey, kvJson, leaseIdOf, queryBool, queryInt, readBody, readJson, toBase64 } from '../input.ts';
import { errorBody, readFailed, write } from '../outcomes.ts';
import { pathTail, queryOf } from '../request.ts';
import { respond, respondJson } from '../respond.ts';

/** A JSON body (cas, txn) at most this large; the command size is checked again after parsing. */
const MAX_JSON_BYTES = 3 * 1024 * 1024;

export function kvRoutes(app: App): void {
  // ---- ranges ----

  app.get('/v1/kv', async (c) => {
    const p = c.get('principal');
    const config = c.get('config');
    needRole(p, 'read');
    const q = queryOf(c.get('input'), [
      'prefix',
      'start',
      'end',
      'limit',
      'cursor',
      'keys_only',
      'count_only',
      'consistency',
      'revision',
    ]);
    const consistency = consistencyOf(q);
    const revision = revisionOf(q);
    const bounds = rangeBounds(Object.fromEntries(q), 'query', p);
    const limit = queryInt(q, 'limit', 1, config.maxRangeLimit) ?? config.defaultRangeLimit;
    const keysOnly = queryBool(q, 'keys_only');
    const countOnly = queryBool(q, 'count_only');
    let start = bounds.start;
    const cursor = q.get('cursor');
    if (cursor !== undefined) {
      const from = decodeCursor(cursor);
      const lo = bounds.prefix ?? bounds.start ?? '';
      const hi = bounds.prefix !== undefined ? prefixEnd(bounds.prefix) : bounds.end;
      if (compareKeys(from, lo) < 0 || (hi !== undefined && compareKeys(from, hi) >= 0))
        throw badRequest('cursor', 'not a cursor of this range');
      start = from;
    }
    const r = await c
      .get('client')
      .range({ prefix: bounds.prefix, start, end: bounds.end, limit, keysOnly, countOnly }, consistency, revision);
    if (r.kind !== 'ok') throw readFailed(r, revision);
    const v = r.value;
    const body: Record<string, unknown> = countOnly
      ? { count: v.count, revision: v.revision }
      : { ...rangeJson(v, keysOnly), revision: v.revision };
    if (!countOnly && v.more && v.next !== undefined) body.cursor = encodeCursor(v.next);
    return c.json(body, 200, readHeaders(consistency, v.revision));
  });

  app.delete('/v1/kv', async (c) => {
    const p = c.get('principal');
    needRole(p, 'write');
    const q = queryOf(c.get('input'), ['prefix', 'start', 'end']);
    const bounds = rangeBounds(Object.fromEntries(q), 'query', p);
    let cmd: KvCommand;
    if (bounds.prefix !== undefined) cmd = { type: 'deletePrefix', prefix: bounds.prefix };
    else if (bounds.start !== undefined && bounds.end !== undefined)
      cmd = { type: 'deleteRange', start: bounds.start, end: bounds.end };
    else throw badRequest('prefix', 'give prefix, or both start and end');
    const result = await write(c, cmd);
    if (result.type !== 'delete') throw new Error(`unexpected result ${result.type}`);
    return c.json({ deleted: result.deleted, revision: result.revision }, 200, {
      'X-Revision': String(result.revision),
    });
  });

  // ---- single keys (after the ranges: `/v1/kv/*` matches `/v1/kv` too) ----

  app.get('/v1/kv/*', async (c) => {
    const key = pathKey(c);
    const p = c.get('principal');
    needRole(p, 'read');
    needKey(p, key, 'key');
    const q = queryOf(c.get('input'), ['consistency', 'revision']);
    const consistency = consistencyOf(q);
    const revision = revisionOf(q);
    const r = await c.get('client').get(key, consistency, revision);
    if (r.kind !== 'ok') throw readFailed(r, revision);
    const headers = readHeaders(consistency, r.revision);
    const { ifMatch, ifNoneMatch } = c.get('preconditions');
    if (ifMatch !== undefined && !etagsMatch(ifMatch, r.value)) throw preconditionFailed(key, r.value, r.revision);
    if (!r.value) {
      return c.json(
        { ...errorBody('key_not_found', `no key ${JSON.stringify(key)}`), revision: r.revision },
        404,
        headers,
      );
    }
    const kv = r.value;
    Object.assign(headers, kvHeaders(kv));
    if (ifNoneMatch !== undefined && etagsMatch(ifNoneMatch, kv)) return respond(c, 304, null, headers);
    if (wantsJson(c.req.header('accept'))) return respondJson(c, 200, { ...kvJson(kv), revision: r.revision }, headers);
    return respond(c, 200, kv.value as Uint8Array<ArrayBuffer>, {
      ...headers,
      'Content-Type': 'application/octet-stream',
    });
  });

  app.put('/v1/kv/*', async (c) => {
    const { key, q } = writableKey(c, ['lease']);
    const lease = leaseOf(q);
    const value = await readBody(c.req.raw, c.get('config').maxValueBytes);
    const result = await conditionalWrite(c, key, { type: 'put', key, value, lease });
    // Created only if the write required the key to be absent (If-None-Match: *).
    return respondJson(
      c,
      c.get('preconditions').ifNoneMatch === '*' ? 201 : 200,
      { revision: result.revision },
      {
        'X-Revision': String(result.revision),
        ETag: etag(result.revision),
      },
    );
  });

  app.delete('/v1/kv/*', async (c) => {
    const { key } = writableKey(c);
    const result = await conditionalWrite(c, key, { type: 'delete', key });
    const headers = { 'X-Revision': String(result.revision) };
    const deleted =
      result.type === 'delete'
        ? result.deleted
        : result.type === 'txn' && result.results[0]?.type === 'delete'
          ? result.results[0].deleted
          : 0;
    if (deleted === 0)
      return c.json(
        { ...errorBody('key_not_found', `no key ${JSON.stringify(key)}`), revision: result.revision },
        404,
        headers,
      );
    return c.json({ deleted, revision: result.revision }, 200, headers);
  });

  // ---- cas and txn ----

  app.post('/v1/cas', async (c) => {
    const p = c.get('principal');
    needRole(p, 'write');
    queryOf(c.get('input'), []);
    const body = await readJson(c.req.raw, MAX_JSON_BYTES);
    const cmd = casCommand(body, p, c.get('config').maxValueBytes);
    const result = await write(c, cmd);
    if (result.type !== 'cas') throw new Error(`unexpected result ${result.type}`);
    return respondJson(
      c,
      200,
      {
        succeeded: result.succeeded,
        revision: result.revision,
        ...(result.current ? { current: kvJson(result.current) } : {}),
      },
      { 'X-Revision': String(result.revision) },
    );
  });

  app.post('/v1/txn', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    queryOf(c.get('input'), []);
    const body = await readJson(c.req.raw, MAX_JSON_BYTES);
    const { cmd, writes } = txnCommand(body, p, c.get('config').maxValueBytes);
    if (writes) needRole(p, 'write');
    const result = await write(c, cmd);
    if (result.type !== 'txn') throw new Error(`unexpected result ${result.type}`);
    return c.json(
      { succeeded: result.succeeded, revision: result.revision, results: result.results.map(txnResultJson) },
      200,
      { 'X-Revision': String(result.revision) },
    );
  });
}

/** The key: the decoded path after the literal `/v1/kv/` the route matched (so %2F and the like decode once). */
function pathKey(c: C): string {
  return checkKey(pathTail(c.get('input'), '/v1/kv/'), 'key');
}

/** The key of a write to /v1/kv/{key}, once the principal may write it and the query has only `query` names. */
function writableKey(c: C, query: readonly string[] = []): { key: string; q: Map<string, string> } {
  const key = pathKey(c);
  const p = c.get('principal');
  needRole(p, 'write');
  needKey(p, key, 'key');
  return { key, q: queryOf(c.get('input'), query) };
}

/** `?lease=ID`: attach the key to that lease (absent or 0: to none). */
function leaseOf(q: Map<string, string>): number | undefined {
  const v = q.get('lease');
  return v === undefined ? undefined : leaseIdOf(v, 'lease');
}

/** Proposes `op` on `key` under the request's If-Match / If-None-Match: 412, with the key as it is, if they fail. */
async function conditionalWrite(c: C, key: string, op: TxnOp): Promise<Exclude<KvResult, { type: 'error' }>> {
  const result = await write(c, guarded(key, writeGuards(key, c.get('preconditions')), op));
  if (result.type === 'txn' && !result.succeeded) throw preconditionFailed(key, currentOf(result), result.revision);
  return result;
}

/** `op` on `key`, or, when the request carried conditions, a txn that runs it only if they hold. */
function guarded(key: string, guards: Compare[], op: TxnOp): KvCommand {
  if (guards.length === 0) return op as KvCommand;
  return { type: 'txn', compare: guards, success: [op], failure: [{ type: 'get', key }] };
}

/** `?revision=N`: read the store as of revision N (undefined: now). */
function revisionOf(q: Map<string, string>): number | undefined {
  return queryInt(q, 'revision', 0, Number.MAX_SAFE_INTEGER);
}

function consistencyOf(q: Map<string, string>): Consistency {
  const v = q.get('consistency') ?? 'linearizable';
  if (v !== 'linearizable' && v !== 'serializable')
    throw badRequest('consistency', 'expected linearizable or serializable');
  return v;
}

function readHeaders(consistency: Consistency, revision: number): Record<string, string> {
  const h: Record<string, string> = { 'X-Revision': String(revision), 'X-Consistency': consistency };
  if (consistency === 'serializable') h['X-Stale'] = 'possible';
  return h;
}

function kvHeaders(kv: KeyValue): Record<string, string> {
  return {
    ETag: etag(kv.modRevision),
    'X-Create-Revision': String(kv.createRevision),
    'X-Mod-Revision': String(kv.modRevision),
    'X-Version': String(kv.version),
  };
}

function etag(rev: number): string {
  return `"${rev}"`;
}

function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /application\/json/i.test(accept);
}

function currentOf(r: KvResult): KeyValue | undefined {
  if (r.type === 'cas') return r.current;
  if (r.type === 'txn') {
    const first = r.results[0];
    return first?.type === 'get' ? first.kv : undefined;
  }
  return undefined;
}

function preconditionFailed(key: string, current: KeyValue | undefined, revision: number): ApiError {
  return new ApiError(
    412,
    'precondition_failed',
    current
      ? `key ${JSON.stringify(key)} is at mod_revision ${current.modRevision}`
      : `key ${JSON.stringify(key)} does not exist`,
    { current: current ? kvJson(current, true) : null, revision },
    current ? { ETag: etag(current.modRevision) } : {},
  );
}

function encodeCursor(next: string): string {
  return toBase64(new TextEncoder().encode(next)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function decodeCursor(s: string): string {
  try {
    if (!/^[A-Za-z0-9_-]{1,8000}$/.test(s)) throw new Error();
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    return checkKey(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes), 'cursor');
  } catch {
    throw badRequest('cursor', 'not a cursor from this API');
  }
}
