/**
 * etcd's KV service on its JSON gateway: POST /v3/kv/range, put,
 * deleterange, txn and compaction, answered as etcd answers them (see
 * etcd-json.ts for the encoding and the revision offset).
 */
import {
  type KeyValue,
  type KvResult,
  prefixEnd,
  type TxnCommand,
  type TxnOp,
  type TxnOpResult,
} from '../../kv/index.ts';
import { needInterval, needKey, needRole } from '../commands.ts';
import type { App, C } from '../env.ts';
import { ETCD, EtcdError } from './etcd-errors.ts';
import { boolField, intField, kvJson, showRevision, storeRevision } from './etcd-json.ts';
import { header, propose, readMessage, readRange } from './gateway.ts';
import {
  type EtcdRange,
  intervalOf,
  needsAll,
  readRevision,
  reorderedLimit,
  shape,
  sortedCut,
  sortInPlace,
} from './range.ts';
import { deleteOf, putOf, rangeOf } from './requests.ts';
import { shapeOf, txnOf } from './txn.ts';

export function v3KvRoutes(app: App): void {
  app.post('/v3/kv/range', async (c) => {
    const m = await readMessage(c);
    const r = rangeOf(m);
    const p = c.get('principal');
    needRole(p, 'read');
    const iv = intervalOf(r);
    needInterval(p, iv.start, iv.end, 'key');
    const { kvs, count, more, revision, term, member } = await rangeRead(c, r, boolField(m, 'serializable'));
    return c.json({
      header: header(c, member, term, revision),
      ...(kvs.length > 0 ? { kvs: kvs.map((kv) => kvJson(kv, r.keysOnly)) } : {}),
      ...(more ? { more: true } : {}),
      ...(count > 0 ? { count: String(count) } : {}),
    });
  });

  app.post('/v3/kv/put', async (c) => {
    const m = await readMessage(c);
    const put = putOf(m);
    allowWrites(c, [put]);
    const { result, term, member } = await propose(c, put);
    const r = settled(result, 'put');
    return c.json({ header: header(c, member, term, r.revision), ...(r.prev ? { prev_kv: kvJson(r.prev) } : {}) });
  });

  app.post('/v3/kv/deleterange', async (c) => {
    const m = await readMessage(c);
    const del = deleteOf(m);
    allowWrites(c, [del]);
    const { result, term, member } = await propose(c, del);
    const r = settled(result, 'delete');
    const prevs = r.prevKvs ?? (r.prev ? [r.prev] : []);
    return c.json({
      header: header(c, member, term, r.revision),
      ...(r.deleted > 0 ? { deleted: String(r.deleted) } : {}),
      ...(prevs.length > 0 ? { prev_kvs: prevs.map((kv) => kvJson(kv)) } : {}),
    });
  });

  app.post('/v3/kv/txn', async (c) => {
    const m = await readMessage(c);
    const txn = txnOf(m);
    const p = c.get('principal');
    needRole(p, 'read');
    allowTxn(c, txn);
    const { result, term, member } = await propose(c, txn);
    const r = settled(result, 'txn');
    // Each op's header has the revision right after it: the txn's first write moves it by one.
    const state = { rev: wrote(r.results) ? r.revision - 1 : r.revision, final: r.revision };
    const responses = responsesJson(r.results, r.succeeded ? txn.success : txn.failure, state);
    return c.json({
      header: header(c, member, term, r.revision),
      ...(r.succeeded ? { succeeded: true } : {}),
      ...(responses.length > 0 ? { responses } : {}),
    });
  });

  app.post('/v3/kv/compaction', async (c) => {
    needRole(c.get('principal'), 'admin');
    const m = await readMessage(c);
    const { result, term, member } = await propose(c, {
      type: 'compact',
      revision: storeRevision(intField(m, 'revision')),
    });
    const r = settled(result, 'compact');
    return c.json({ header: header(c, member, term, r.revision) });
  });
}

/** The principal may write what these puts and deletes touch. */
function allowWrites(
  c: C,
  ops: readonly (TxnOp & { type: 'put' | 'delete' | 'deletePrefix' | 'deleteRange' })[],
): void {
  const p = c.get('principal');
  needRole(p, 'write');
  for (const op of ops) {
    if (op.type === 'put' || op.type === 'delete') needKey(p, op.key, 'key');
    else if (op.type === 'deleteRange') needInterval(p, op.start, op.end, 'key');
    else needInterval(p, op.prefix, prefixEnd(op.prefix), 'key');
  }
}

/** A command's result of the kind asked for, or etcd's error for a refusal. */
export function settled<T extends Exclude<KvResult['type'], 'error'>>(
  r: KvResult,
  type: T,
): Extract<KvResult, { type: T }> {
  if (r.type === 'error') {
    if (r.error === 'lease_not_found') throw ETCD.leaseNotFound();
    if (r.error === 'lease_exists') throw ETCD.leaseExists();
    if (r.error === 'key_not_found') throw EtcdError.invalid('etcdserver: key not found');
    // A compaction, or a txn's range, at a revision the store cannot read.
    if (r.error === 'compacted') throw ETCD.compacted();
    if (r.error === 'future_revision') throw ETCD.futureRev();
    throw EtcdError.invalid(r.message);
  }
  if (r.type !== type) throw new Error(`unexpected result ${r.type}`);
  return r as Extract<KvResult, { type: T }>;
}

/**
 * Reads a range as etcd does: with filters or a sort, every record of the
 * interval (page by page, all at the revision of the first page), then
 * shaped; else the store's own limit, count and `more`, which are etcd's.
 */
async function rangeRead(
  c: C,
  r: EtcdRange,
  serializable: boolean,
): Promise<{ kvs: KeyValue[]; count: number; more: boolean; revision: number; term: number; member: string }> {
  const client = c.get('client');
  const { start, end } = intervalOf(r);
  const at = readRevision(r);
  if (r.countOnly || !needsAll(r)) {
    // A sort target without an order (etcd 3.4): the limit's records and one more, sorted, then cut to the limit.
    const cut = reorderedLimit(r);
    const limit = cut ?? r.limit;
    const q = { start, end, limit: r.countOnly ? undefined : limit || undefined, countOnly: r.countOnly };
    const first = await readRange(client, q, serializable, at);
    const all: KeyValue[] = [...first.value.kvs];
    // A page cut by bytes (not by the limit) continues at the same revision.
    let page = first.value;
    const rev = at ?? first.value.revision;
    while (!r.countOnly && page.more && page.next !== undefined && (limit === 0 || all.length < limit)) {
      const left = limit === 0 ? undefined : limit - all.length;
      page = (await readRange(client, { start: page.next, end, limit: left }, serializable, rev)).value;
      all.push(...page.kvs);
    }
    const sorted = sortInPlace(r, all);
    const over = cut !== undefined && sorted.length > r.limit;
    const more = over || (cut === undefined && r.limit > 0 && first.value.count > all.length && !r.countOnly);
    return {
      kvs: over ? sorted.slice(0, r.limit) : sorted,
      count: first.value.count,
      more,
      revision: first.value.revision,
      term: first.term,
      member: first.member,
    };
  }
  const first = await readRange(client, { start, end }, serializable, at);
  const all: KeyValue[] = [...first.value.kvs];
  const rev = at ?? first.value.revision;
  for (let page = first.value; page.more && page.next !== undefined; ) {
    page = (await readRange(client, { start: page.next, end }, serializable, rev)).value;
    all.push(...page.kvs);
  }
  const { kvs, more } = shape(r, all);
  return { kvs, count: all.length, more, revision: first.value.revision, term: first.term, member: first.member };
}

/** The principal may read and write what a txn (and its nested txns) touches. */
function allowTxn(c: C, t: TxnCommand): void {
  const p = c.get('principal');
  for (const cmp of t.compare)
    needInterval(
      p,
      cmp.key,
      cmp.rangeEnd === undefined ? `${cmp.key}\u0000` : cmp.rangeEnd === '\u0000' ? undefined : cmp.rangeEnd,
      'compare',
    );
  for (const op of [...t.success, ...t.failure]) {
    if (op.type === 'range') needInterval(p, op.start ?? '', op.end, 'request_range');
    else if (op.type === 'txn') allowTxn(c, op);
    else if (op.type !== 'get') allowWrites(c, [op]);
  }
}

/** Whether these results (nested ones included) wrote anything. */
function wrote(results: readonly TxnOpResult[]): boolean {
  return results.some(writes);
}

function writes(x: TxnOpResult): boolean {
  return x.type === 'put' || (x.type === 'delete' && x.deleted > 0) || (x.type === 'txn' && wrote(x.results));
}

/** The ResponseOps of a branch that ran, in order, each with the revision right after it. */
function responsesJson(
  results: readonly TxnOpResult[],
  ops: readonly TxnOp[],
  state: { rev: number; final: number },
): Record<string, unknown>[] {
  return results.map((x, i) => {
    const op = ops[i] as TxnOp;
    if (x.type === 'txn') {
      const nested = op.type === 'txn' ? (x.succeeded ? op.success : op.failure) : [];
      const responses = responsesJson(x.results, nested, state);
      // A nested txn's own header carries no revision (etcd sets only the outermost one).
      return {
        response_txn: {
          header: {},
          ...(x.succeeded ? { succeeded: true } : {}),
          ...(responses.length ? { responses } : {}),
        },
      };
    }
    if (writes(x)) state.rev = state.final;
    return opJson(x, op, { revision: showRevision(state.rev) });
  });
}

/** etcd's ResponseOp for one op of the branch that ran. */
function opJson(
  r: Exclude<TxnOpResult, { type: 'txn' }>,
  op: TxnOp,
  sub: { revision: string },
): Record<string, unknown> {
  switch (r.type) {
    case 'get':
    case 'range': {
      const shaping = shapeOf(op);
      const all = r.type === 'get' ? (r.kv ? [r.kv] : []) : r.kvs;
      const count = r.type === 'get' ? all.length : r.count;
      const { kvs, more } = !shaping
        ? { kvs: all, more: r.type === 'range' && r.more }
        : needsAll(shaping)
          ? shape(shaping, all)
          : sortedCut(shaping, all);
      const keysOnly = shaping ? shaping.keysOnly : op.type === 'range' && op.keysOnly === true;
      return {
        response_range: {
          header: sub,
          ...(kvs.length > 0 ? { kvs: kvs.map((kv) => kvJson(kv, keysOnly)) } : {}),
          ...(more ? { more: true } : {}),
          ...(count > 0 ? { count: String(count) } : {}),
        },
      };
    }
    case 'put':
      return { response_put: { header: sub, ...(r.prev ? { prev_kv: kvJson(r.prev) } : {}) } };
    case 'delete': {
      const prevs = r.prevKvs ?? (r.prev ? [r.prev] : []);
      return {
        response_delete_range: {
          header: sub,
          ...(r.deleted > 0 ? { deleted: String(r.deleted) } : {}),
          ...(prevs.length > 0 ? { prev_kvs: prevs.map((kv) => kvJson(kv)) } : {}),
        },
      };
    }
  }
}
