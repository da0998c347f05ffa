import { describe, expect, it } from 'vitest';
import { BadRequestError, CompactedError, NotFoundError, PreconditionFailedError } from '../../src/client/index.ts';
import { newClient } from './helpers.ts';

/** The key-value calls against a real cluster: each result as the routes answer it. */

describe('client: keys', () => {
  it('put, get, delete; text and bytes; a missing key is kv undefined, not an error', async () => {
    const { client } = await newClient();
    const w = await client.put('a/b c%2F', 'hello');
    expect(w.revision).toBeGreaterThan(0);
    const r = await client.get('a/b c%2F');
    expect(r.kv?.key).toBe('a/b c%2F');
    expect(r.kv?.text).toBe('hello');
    expect(r.kv?.modRevision).toBe(w.revision);
    expect(r.kv?.createRevision).toBe(w.revision);
    expect(r.kv?.version).toBe(1);
    expect(r.revision).toBeGreaterThanOrEqual(w.revision);

    const bytes = new Uint8Array([0, 255, 1, 128]);
    await client.put('bin', bytes);
    expect([...((await client.get('bin')).kv?.value ?? [])]).toEqual([0, 255, 1, 128]);

    const missing = await client.get('nope');
    expect(missing.kv).toBeUndefined();
    expect(missing.revision).toBeGreaterThanOrEqual(w.revision);

    const d = await client.delete('a/b c%2F');
    expect(d.deleted).toBe(1);
    expect((await client.get('a/b c%2F')).kv).toBeUndefined();
    expect((await client.delete('a/b c%2F')).deleted).toBe(0);
  });

  it('conditional writes: 412 is a PreconditionFailedError carrying the key as it is and the revision', async () => {
    const { client } = await newClient();
    const first = await client.put('cfg', 'v1', { ifNoneMatch: '*' });
    expect(first.created).toBe(true);
    const second = await client.put('cfg', 'v2', { ifMatch: first.revision });
    expect(second.created).toBe(false);
    const stale = await client.put('cfg', 'v3', { ifMatch: first.revision }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(PreconditionFailedError);
    const e = stale as PreconditionFailedError;
    expect(e.code).toBe('precondition_failed');
    // The 412 carries the key's metadata, not its value.
    expect(e.current?.modRevision).toBe(second.revision);
    expect(e.current?.version).toBe(2);
    expect(e.revision).toBeGreaterThanOrEqual(second.revision);
    const exists = await client.put('cfg', 'x', { ifNoneMatch: '*' }).catch((x: unknown) => x);
    expect(exists).toBeInstanceOf(PreconditionFailedError);
    const absent = await client.delete('nothing', { ifMatch: '*' }).catch((x: unknown) => x);
    expect(absent).toBeInstanceOf(PreconditionFailedError);
    expect((absent as PreconditionFailedError).current).toBeUndefined();
    expect((await client.get('cfg')).kv?.text).toBe('v2');
  });

  it('cas by value, mod_revision, version and absence', async () => {
    const { client } = await newClient();
    const made = await client.cas('job', { absent: true }, 'me');
    expect(made.succeeded).toBe(true);
    expect(made.current?.text).toBe('me');
    const lost = await client.cas('job', { value: 'you' }, 'them');
    expect(lost.succeeded).toBe(false);
    expect(lost.current?.text).toBe('me');
    const byRev = await client.cas('job', { modRevision: made.revision }, new Uint8Array([7]));
    expect(byRev.succeeded).toBe(true);
    expect([...(byRev.current?.value ?? [])]).toEqual([7]);
    expect((await client.cas('job', { version: 2 }, 'v3')).succeeded).toBe(true);
  });

  it('txn: compares, both branches, results decoded', async () => {
    const { client } = await newClient();
    await client.put('t/a', '1');
    const ok = await client.txn({
      compare: [{ key: 't/a', target: 'value', op: '=', value: '1' }],
      success: [
        { put: { key: 't/b', value: '2', prevKv: true } },
        { get: { key: 't/a' } },
        { range: { prefix: 't/' } },
      ],
      failure: [{ delete: { key: 't/a' } }],
    });
    expect(ok.succeeded).toBe(true);
    expect(ok.results.map((r) => r.type)).toEqual(['put', 'get', 'range']);
    const got = ok.results[1];
    expect(got?.type === 'get' && got.kv?.text).toBe('1');
    const range = ok.results[2];
    expect(range?.type === 'range' && range.kvs.map((kv) => kv.key)).toEqual(['t/a', 't/b']);

    const no = await client.txn({
      compare: [{ key: 't/a', target: 'createRevision', op: '>', value: 1_000_000 }],
      success: [{ put: { key: 't/never', value: 'x' } }],
      failure: [{ deletePrefix: { prefix: 't/', prevKv: true } }],
    });
    expect(no.succeeded).toBe(false);
    const del = no.results[0];
    expect(del?.type === 'delete' && del.deleted).toBe(2);
    expect((await client.count({ prefix: 't/' })).count).toBe(0);
  });

  it('range: one page, every page by the cursor at one revision, all at once, count, delete a range', async () => {
    const { client, sent } = await newClient();
    for (const k of ['r/1', 'r/2', 'r/3', 'r/4', 'r/5']) await client.put(k, k);
    await client.put('s/other', 'x');
    const page = await client.range({ prefix: 'r/', limit: 2 });
    expect(page.kvs.map((kv) => kv.key)).toEqual(['r/1', 'r/2']);
    expect(page.more).toBe(true);
    expect(page.count).toBe(5);
    expect(page.cursor).toBeTypeOf('string');
    const next = await client.range({ prefix: 'r/', limit: 2 }, page.cursor);
    expect(next.kvs.map((kv) => kv.key)).toEqual(['r/3', 'r/4']);

    // Pages after the first are read at its revision: a key written meanwhile is not in them.
    const seen: string[] = [];
    let pages = 0;
    let first = 0;
    for await (const p of client.rangePages({ prefix: 'r/', limit: 2 })) {
      if (pages++ === 0) {
        first = p.revision;
        await client.put('r/6', 'late');
      }
      seen.push(...p.kvs.map((kv) => kv.key));
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['r/1', 'r/2', 'r/3', 'r/4', 'r/5']);
    const later = sent.filter((s) => s.path.includes('cursor='));
    expect(later.slice(-2).every((s) => s.path.includes(`revision=${first}`))).toBe(true);

    const all = await client.rangeAll({ start: 'r/2', end: 'r/5', limit: 1 });
    expect(all.kvs.map((kv) => kv.key)).toEqual(['r/2', 'r/3', 'r/4']);
    const keysOnly = await client.range({ prefix: 'r/', keysOnly: true });
    expect(keysOnly.kvs[0]?.value.byteLength).toBe(0);
    expect((await client.count({ prefix: 'r/' })).count).toBe(6);
    expect((await client.deleteRange({ start: 'r/1', end: 'r/3' })).deleted).toBe(2);
    expect((await client.deleteRange({ prefix: 'r/' })).deleted).toBe(4);
    expect((await client.count({ start: '', end: undefined })).count).toBe(1);
  });

  it('history: a read at a revision, compact, then CompactedError with the compact revision', async () => {
    const { client } = await newClient();
    const r1 = (await client.put('h', 'one')).revision;
    await client.put('h', 'two');
    const r3 = (await client.put('h', 'three')).revision;
    expect((await client.get('h', { revision: r1 })).kv?.text).toBe('one');
    const c = await client.compact(r3);
    expect(c.compactRevision).toBe(r3);
    const e = await client.get('h', { revision: r1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CompactedError);
    expect((e as CompactedError).compactRevision).toBe(r3);
    const future = await client.get('h', { revision: r3 + 1000 }).catch((x: unknown) => x);
    expect(future).toBeInstanceOf(BadRequestError);
    expect((future as BadRequestError).code).toBe('future_revision');
    const lease = await client.leases.keepAliveOnce('12345').catch((x: unknown) => x);
    expect(lease).toBeInstanceOf(NotFoundError);
    expect((lease as NotFoundError).code).toBe('lease_not_found');
  });
});
