/**
 * Keys: get, put, del, txn and compact, as etcdctl has them, each a thin
 * translation onto one client call.
 */
import type { Consistency, KeyRange, KeyValue, RangeOptions, TxnOpResult, TxnRequest } from '../client/index.ts';
import { UsageError } from './args.ts';
import { arg, boolFlag, type Command, type Context, numberFlag, stringFlag } from './command.ts';
import { kvLines, kvTable, type Line } from './output.ts';
import { txnRequestOf } from './txn-json.ts';

const utf8 = new TextDecoder();

/** The range `get` and `del` name: a key, `[KEY, END)`, or everything under the prefix KEY. */
function rangeOf(ctx: Context): KeyRange | undefined {
  const key = arg(ctx, 0);
  const end = ctx.positionals[1];
  if (boolFlag(ctx, 'prefix')) {
    if (end !== undefined) throw new UsageError('--prefix takes one KEY, not an END');
    return { prefix: key };
  }
  return end === undefined ? undefined : { start: key, end };
}

function consistencyOf(ctx: Context): Consistency | undefined {
  const c = stringFlag(ctx, 'consistency');
  if (c === undefined) return undefined;
  if (c === 'l' || c === 'linearizable') return 'linearizable';
  if (c === 's' || c === 'serializable') return 'serializable';
  throw new UsageError(`--consistency is l (linearizable) or s (serializable), not ${JSON.stringify(c)}`);
}

const get: Command = {
  name: 'get',
  args: 'KEY [END]',
  summary: 'read a key, the keys of [KEY, END), or every key under a prefix',
  details:
    'Simple output prints each key, then its value, on lines of their own; a missing key prints nothing (exit 0).',
  min: 1,
  max: 2,
  flags: {
    prefix: { type: 'boolean', help: 'every key under the prefix KEY' },
    rev: { type: 'number', value: 'N', help: 'read the store as it was at revision N' },
    'keys-only': { type: 'boolean', help: 'keys without their values' },
    'print-value-only': { type: 'boolean', help: 'values without their keys (simple output)' },
    'count-only': { type: 'boolean', help: 'only how many keys the range holds' },
    limit: { type: 'number', value: 'N', help: 'at most N keys of a range (one page)' },
    consistency: { type: 'string', value: 'l|s', help: 'linearizable (l, the default) or serializable (s)' },
  },
  async run(ctx) {
    const range = rangeOf(ctx);
    const revision = numberFlag(ctx, 'rev') || undefined;
    const consistency = consistencyOf(ctx);
    const keysOnly = boolFlag(ctx, 'keys-only');
    const valuesOnly = boolFlag(ctx, 'print-value-only');
    const read = { revision, consistency };
    const client = ctx.client();
    if (boolFlag(ctx, 'count-only')) {
      const c = range
        ? await client.count({ ...range, ...read })
        : await client.get(arg(ctx, 0), read).then((a) => ({ count: a.kv ? 1 : 0, revision: a.revision }));
      ctx.print({ simple: [String(c.count)], json: c, table: { headers: ['COUNT'], rows: [[String(c.count)]] } });
      return;
    }
    if (range === undefined) {
      const a = await client.get(arg(ctx, 0), read);
      const kvs = a.kv ? [keysOnly ? withoutValue(a.kv) : a.kv] : [];
      ctx.print({ simple: kvLines(kvs, { keysOnly, valuesOnly }), json: { ...a, kv: kvs[0] }, table: kvTable(kvs) });
      return;
    }
    const o: RangeOptions = { ...range, ...read, keysOnly };
    const limit = numberFlag(ctx, 'limit');
    const a = limit ? await client.range({ ...o, limit }) : await client.rangeAll(o);
    ctx.print({ simple: kvLines(a.kvs, { keysOnly, valuesOnly }), json: a, table: kvTable(a.kvs, { keysOnly }) });
  },
};

function withoutValue(kv: KeyValue): KeyValue {
  return { ...kv, value: new Uint8Array(0), text: '' };
}

const put: Command = {
  name: 'put',
  args: 'KEY [VALUE]',
  summary: 'write a key (the value from stdin when VALUE is left out)',
  min: 1,
  max: 2,
  flags: {
    lease: { type: 'string', value: 'ID', help: 'attach the key to lease ID (decimal)' },
  },
  async run(ctx) {
    const value = ctx.positionals[1] ?? (await ctx.io.readStdin());
    const lease = stringFlag(ctx, 'lease');
    const a = await ctx.client().put(arg(ctx, 0), value, lease === undefined ? {} : { lease });
    ctx.print({
      simple: ['OK'],
      json: a,
      table: { headers: ['REVISION', 'CREATED'], rows: [[String(a.revision), String(a.created)]] },
    });
  },
};

const del: Command = {
  name: 'del',
  args: 'KEY [END]',
  summary: 'delete a key, the keys of [KEY, END), or every key under a prefix',
  min: 1,
  max: 2,
  flags: { prefix: { type: 'boolean', help: 'every key under the prefix KEY' } },
  async run(ctx) {
    const range = rangeOf(ctx);
    const client = ctx.client();
    const a =
      range === undefined
        ? await client.delete(arg(ctx, 0))
        : await client.deleteRange(
            Object.hasOwn(range, 'prefix') ? (range as { prefix: string }) : (range as { start: string; end: string }),
          );
    ctx.print({
      simple: [String(a.deleted)],
      json: a,
      table: { headers: ['DELETED', 'REVISION'], rows: [[String(a.deleted), String(a.revision)]] },
    });
  },
};

const txn: Command = {
  name: 'txn',
  args: '',
  summary: 'run a transaction read as JSON from stdin',
  details: [
    "The JSON is the API's (POST /v1/txn) or the client's shape, e.g.",
    '  {"compare":[{"key":"k","target":"version","op":"=","value":0}],',
    '   "success":[{"put":{"key":"k","value":"v"}}],"failure":[{"get":{"key":"k"}}]}',
    'Simple output prints SUCCESS or FAILURE, then each result (OK for a put, the count for a delete,',
    'key and value lines for a get or range). The failure branch is an answer: exit 0.',
  ].join('\n'),
  min: 0,
  max: 0,
  async run(ctx) {
    const text = utf8.decode(await ctx.io.readStdin());
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`the txn on stdin is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
    const request: TxnRequest = txnRequestOf(parsed);
    const a = await ctx.client().txn(request);
    ctx.print({
      simple: [a.succeeded ? 'SUCCESS' : 'FAILURE', '', ...a.results.flatMap(resultLines)],
      json: a,
    });
  },
};

function resultLines(r: TxnOpResult): Line[] {
  switch (r.type) {
    case 'get':
      return r.kv ? kvLines([r.kv]) : [];
    case 'range':
      return kvLines(r.kvs);
    case 'put':
      return ['OK'];
    case 'delete':
      return [String(r.deleted)];
    case 'txn':
      return [r.succeeded ? 'SUCCESS' : 'FAILURE', ...r.results.flatMap(resultLines)];
  }
}

const compact: Command = {
  name: 'compact',
  args: 'REVISION',
  summary: 'drop the history below REVISION on every replica (admin)',
  min: 1,
  max: 1,
  async run(ctx) {
    const rev = Number(arg(ctx, 0));
    if (!/^\d{1,15}$/.test(arg(ctx, 0)) || rev < 1) throw new UsageError('REVISION must be a whole number above 0');
    const a = await ctx.client().compact(rev);
    ctx.print({
      simple: [`compacted revision ${a.compactRevision}`],
      json: a,
      table: { headers: ['COMPACT_REVISION', 'REVISION'], rows: [[String(a.compactRevision), String(a.revision)]] },
    });
  },
};

export const KV_COMMANDS: readonly Command[] = [get, put, del, txn, compact];
