import { describe, expect, it } from 'vitest';
import { json, newApi } from './api-helpers.ts';

// Answer for answer parity with etcd is checked against a real etcd by `npm run test:etcd-diff`;
// these are what only this store has: two faces of one store, its tokens, its UTF-8 keys.

const b64 = (s: string) => btoa(s);
const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  body: JSON.stringify(body),
  headers,
});

describe('v3 gateway: etcd JSON over the same store', () => {
  it('/v1 and /v3 are two faces of one store: etcd counts one more revision', async () => {
    const api = await newApi();
    const put = await json<{ header: { revision: string } }>(
      await api.fetch('/v3/kv/put', post({ key: b64('shared'), value: b64('from-v3') })),
    );
    const v1 = await api.fetch('/v1/kv/shared');
    expect(await v1.text()).toBe('from-v3');
    expect(Number(v1.headers.get('x-revision')) + 1).toBe(Number(put.header.revision));
    await api.fetch('/v1/kv/shared', { method: 'PUT', body: 'from-v1' });
    const got = await json<{ kvs: { value: string; mod_revision: string; version: string }[] }>(
      await api.fetch('/v3/kv/range', post({ key: b64('shared') })),
    );
    expect(got.kvs[0]).toMatchObject({
      value: b64('from-v1'),
      version: '2',
      mod_revision: String(Number(put.header.revision) + 1),
    });
  });

  it('takes the tokens of /v1, with or without the Bearer scheme, and answers auth failures as etcd', async () => {
    const api = await newApi({
      allowAnonymous: false,
      authTokens: JSON.stringify([{ token: 'writer-token-01', role: 'write', prefixes: ['app/'] }]),
    });
    for (const auth of ['writer-token-01', 'Bearer writer-token-01']) {
      const res = await api.fetch('/v3/kv/put', post({ key: b64('app/x'), value: b64('1') }, { authorization: auth }));
      expect(res.status, auth).toBe(200);
    }
    const none = await api.fetch('/v3/kv/range', post({ key: b64('app/x') }));
    expect(none.status).toBe(401);
    expect(await json(none)).toEqual({
      error: 'etcdserver: invalid auth token',
      message: 'etcdserver: invalid auth token',
      code: 16,
    });
    const outside = await api.fetch(
      '/v3/kv/put',
      post({ key: b64('other'), value: b64('1') }, { authorization: 'writer-token-01' }),
    );
    expect(outside.status).toBe(403);
    expect(await json(outside)).toMatchObject({ code: 7, message: 'etcdserver: permission denied' });
  });

  it('refuses keys that are not UTF-8 as an invalid argument, and changes nothing', async () => {
    const api = await newApi();
    const res = await api.fetch('/v3/kv/put', post({ key: '/w==', value: b64('1') }));
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ code: 3 });
    const range = await json<{ header: { revision: string } }>(
      await api.fetch('/v3/kv/range', post({ key: b64('\u0000'), range_end: b64('\u0000'), count_only: true })),
    );
    expect(range.header.revision).toBe('1');
  });

  it("decodes a body as Go's JSON decoder in etcd's gateway does (seen against etcd 3.4)", async () => {
    const api = await newApi();
    const range = (raw: string) => api.fetch('/v3/kv/range', { method: 'POST', body: raw });
    // Refused: a number that is not an integer literal, a string integer with a leading zero, base64
    // without its padding or in the URL alphabet.
    for (const raw of [
      '{"key":"YQ==","limit":1.0}',
      '{"key":"YQ==","limit":1e3}',
      '{"key":"YQ==","limit":"01"}',
      '{"key":"YQ"}',
      '{"key":"_-8="}',
      '{"key":"YQ==","limit":"\\t1"}',
    ]) {
      const res = await range(raw);
      expect(res.status, raw).toBe(400);
      expect(await json(res), raw).toMatchObject({ code: 3 });
    }
    // Taken: spaces around a string integer, CR and LF inside base64, a float in a field etcd does not
    // have, and `null` as the empty message.
    for (const raw of ['{"key":"YQ==","limit":" 1 "}', '{"key":"YQ==\\r\\n"}', '{"key":"YQ==","unknown":1.5}'])
      expect((await range(raw)).status, raw).toBe(200);
    const empty = await api.fetch('/v3/lease/timetolive', { method: 'POST', body: 'null' });
    const answer = await json(empty);
    expect(answer).toMatchObject({ TTL: '-1' });
    expect(answer).not.toHaveProperty('ID');
    // A body that is a number or a string is no request (etcd 3.4: "json: cannot unmarshal number
    // into Go value of type map[string]json.RawMessage", code 3). A number with a fraction or an
    // exponent had been read as the empty request, and a lease grant then granted a lease.
    for (const raw of ['5', '1.5', '1e3', '"x"']) {
      const res = await api.fetch('/v3/lease/grant', { method: 'POST', body: raw });
      expect(res.status, raw).toBe(400);
      expect(await json(res), raw).toMatchObject({ code: 3 });
    }
    // Nor is such a number a txn's compare or op (etcd: the same unmarshal error).
    for (const raw of ['{"success":[1.5]}', '{"compare":[1e3]}', '{"failure":[5]}']) {
      const res = await api.fetch('/v3/kv/txn', { method: 'POST', body: raw });
      expect(res.status, raw).toBe(400);
      expect(await json(res), raw).toMatchObject({ code: 3, message: 'expected an object' });
    }
    const leases = await json<{ leases?: unknown[] }>(
      await api.fetch('/v3/lease/leases', { method: 'POST', body: '{}' }),
    );
    expect(leases.leases ?? []).toEqual([]);
  });

  it('lists the members and the status from the leader; other admin calls answer Unimplemented', async () => {
    const api = await newApi();
    const list = await json<{ header: Record<string, string>; members: { ID: string; name: string }[] }>(
      await api.fetch('/v3/cluster/member/list', post({})),
    );
    expect(list.members.map((m) => m.name).sort()).toEqual(['node-0', 'node-1', 'node-2']);
    expect(new Set(list.members.map((m) => m.ID)).size).toBe(3);
    expect(list.header.revision).toBeUndefined();
    const st = await json<Record<string, string>>(await api.fetch('/v3/maintenance/status', post({})));
    expect(list.members.map((m) => m.ID)).toContain(st.leader);
    expect(Number(st.raftAppliedIndex)).toBeGreaterThan(0);
    for (const path of ['/v3/maintenance/defragment', '/v3/cluster/member/add', '/v3/auth/enable']) {
      const res = await api.fetch(path, post({}));
      expect(res.status, path).toBe(501);
      expect(await json(res)).toMatchObject({ code: 12 });
    }
  });

  it("reads a txn's range at a revision as the store was then, before the txn's own writes", async () => {
    const api = await newApi();
    type Answer = { kvs?: { value: string }[]; count?: string };
    const put = async (v: string) =>
      (
        await json<{ header: { revision: string } }>(
          await api.fetch('/v3/kv/put', post({ key: b64('at/k'), value: b64(v) })),
        )
      ).header.revision;
    const first = await put('one');
    const second = await put('two');
    const at = (revision: string) => ({ request_range: { key: b64('at/'), range_end: b64('at0'), revision } });
    const res = await api.fetch(
      '/v3/kv/txn',
      post({
        success: [at(first), { request_put: { key: b64('at/new'), value: b64('x') } }, at(second), at('0')],
      }),
    );
    expect(res.status).toBe(200);
    const txn = await json<{ header: { revision: string }; responses: { response_range?: Answer }[] }>(res);
    const values = (i: number) => txn.responses[i]?.response_range?.kvs?.map((kv) => atob(kv.value));
    expect(values(0)).toEqual(['one']);
    expect(values(2)).toEqual(['two']);
    // Without a revision the range sees the write before it, as etcd's does.
    expect(values(3)).toEqual(['two', 'x']);
    expect(Number(txn.header.revision)).toBe(Number(second) + 1);

    // A revision past the store's, or below its compaction point, fails the txn whole: its put is not made.
    const refused = async (revision: string) => {
      const r = await api.fetch(
        '/v3/kv/txn',
        post({ success: [{ request_put: { key: b64('at/no'), value: b64('x') } }, at(revision)] }),
      );
      expect(r.status).toBe(400);
      return json<{ code: number; message: string }>(r);
    };
    expect(await refused(String(Number(txn.header.revision) + 1))).toMatchObject({
      code: 11,
      message: 'etcdserver: mvcc: required revision is a future revision',
    });
    await api.fetch('/v3/kv/compaction', post({ revision: txn.header.revision }));
    expect(await refused(second)).toMatchObject({
      code: 11,
      message: 'etcdserver: mvcc: required revision has been compacted',
    });
    const none = await json<Answer>(await api.fetch('/v3/kv/range', post({ key: b64('at/no') })));
    expect(none.count).toBeUndefined();
  });

  it("sorts and filters a txn's range as a plain range (etcd's concurrency.Mutex asks for the oldest waiter)", async () => {
    const api = await newApi();
    type Kv = { key: string; create_revision: string; value?: string };
    type RangeAnswer = { kvs?: Kv[]; more?: boolean; count?: string };
    const revs: Record<string, string> = {};
    // Created in an order that is not the keys' order.
    for (const k of ['mtx/c', 'mtx/a', 'mtx/b']) {
      const put = await json<{ header: { revision: string } }>(
        await api.fetch('/v3/kv/put', post({ key: b64(k), value: b64(`v-${k}`) })),
      );
      revs[k] = put.header.revision;
    }
    const prefix = { key: b64('mtx/'), range_end: b64('mtx0') };
    const oldest = { request_range: { ...prefix, sort_target: 'CREATE', sort_order: 'ASCEND', limit: '1' } };
    // etcd 3.4's Mutex.Lock: put my key if it is new, and read the oldest key under the prefix, in one txn.
    const mine = 'mtx/d';
    const txn = await json<{ succeeded?: boolean; responses: { response_range?: RangeAnswer }[] }>(
      await api.fetch(
        '/v3/kv/txn',
        post({
          compare: [{ key: b64(mine), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
          success: [{ request_put: { key: b64(mine), value: '' } }, oldest],
          failure: [{ request_range: { key: b64(mine) } }, oldest],
        }),
      ),
    );
    expect(txn.succeeded).toBe(true);
    const owner = txn.responses[1]?.response_range;
    expect(owner?.kvs?.map((kv) => kv.key)).toEqual([b64('mtx/c')]);
    expect(owner?.kvs?.[0]?.create_revision).toBe(revs['mtx/c']);
    expect(owner?.more).toBe(true);
    expect(owner?.count).toBe('4');
    // Newest first, keys only, below a create revision: as /v3/kv/range answers the same request.
    const request = {
      ...prefix,
      sort_target: 'CREATE',
      sort_order: 'DESCEND',
      keys_only: true,
      max_create_revision: revs['mtx/b'],
    };
    const inTxn = await json<{ responses: { response_range: RangeAnswer }[] }>(
      await api.fetch('/v3/kv/txn', post({ success: [{ request_range: request }] })),
    );
    const plain = await json<RangeAnswer>(await api.fetch('/v3/kv/range', post(request)));
    expect(inTxn.responses[0]?.response_range.kvs).toEqual(plain.kvs);
    expect(plain.kvs?.map((kv) => atob(kv.key))).toEqual(['mtx/b', 'mtx/a', 'mtx/c']);
    expect(plain.kvs?.every((kv) => kv.value === undefined)).toBe(true);
    // A sort target without an order (as etcd 3.4): the limit's records and one more in key order (a, b, c),
    // sorted ascending by it, then cut to the limit.
    await api.fetch('/v3/kv/put', post({ key: b64('mtx/a'), value: b64('newer') }));
    const byMod = { ...prefix, limit: '2', sort_target: 'MOD' };
    const plainByMod = await json<RangeAnswer>(await api.fetch('/v3/kv/range', post(byMod)));
    const txnByMod = await json<{ responses: { response_range: RangeAnswer }[] }>(
      await api.fetch('/v3/kv/txn', post({ success: [{ request_range: byMod }] })),
    );
    expect(plainByMod.kvs?.map((kv) => atob(kv.key))).toEqual(['mtx/c', 'mtx/b']);
    expect(plainByMod.more).toBe(true);
    expect(txnByMod.responses[0]?.response_range.kvs).toEqual(plainByMod.kvs);
    // At a past revision, sorted: as the plain range at that revision answers.
    const then = { ...byMod, revision: revs['mtx/b'] };
    const plainThen = await json<RangeAnswer>(await api.fetch('/v3/kv/range', post(then)));
    const txnThen = await json<{ responses: { response_range: RangeAnswer }[] }>(
      await api.fetch('/v3/kv/txn', post({ success: [{ request_range: then }] })),
    );
    expect(plainThen.kvs?.map((kv) => atob(kv.key))).toEqual(['mtx/c', 'mtx/a']);
    expect(txnThen.responses[0]?.response_range.kvs).toEqual(plainThen.kvs);
  });
});
