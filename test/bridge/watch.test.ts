/**
 * The bridge's Watch service against a stand-in store: many watches on one
 * stream, their ids and the order of their `created` answers, a store
 * stream that ends (resumed from the next revision, nothing repeated), a
 * cancel, a compacted start, a refused create; and unary calls: the
 * request's JSON as /v3 reads it, etcd's errors back as gRPC statuses.
 * (Malformed protobuf is sent by the live run, scripts/grpc-bridge.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../../src/bridge/index.ts';
import { FakeStore } from './fake-store.ts';
import { call, type Duplex, type EtcdClients, etcdClients, type Message, type Status } from './grpc-client.ts';

const HEAD = { cluster_id: '14841639068965178418', member_id: '10276657743932975437', raft_term: '2' };
const head = (revision: number) => ({ ...HEAD, revision: String(revision) });
const put = (key: string, value: string, rev: number) => ({
  kv: { key: btoa(key), value: btoa(value), create_revision: String(rev), mod_revision: String(rev), version: '1' },
});

/** A Watch stream and what it has answered so far. */
function open(c: EtcdClients): { stream: Duplex; got: Message[]; ended: Promise<Status | undefined> } {
  const stream = c.watch.Watch();
  const got: Message[] = [];
  stream.on('data', (m) => got.push(m));
  const ended = new Promise<Status | undefined>((resolve) => {
    stream.on('error', (e) => resolve(e));
    stream.on('end', () => resolve(undefined));
  });
  return { stream, got, ended };
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('bridge: Watch', () => {
  let store: FakeStore;
  let bridge: BridgeHandle;
  let client: EtcdClients;

  beforeEach(async () => {
    store = new FakeStore();
    bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      token: 'bridge-token',
      fetch: store.fetch as typeof fetch,
    });
    client = etcdClients(bridge.port);
  });

  afterEach(async () => {
    client.close();
    await bridge.close();
  });

  it("answers `created` in the order of the creates, whichever store stream answers first, each with its watch's id", async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('a') } });
    stream.write({ create_request: { key: btoa('b'), prev_kv: true, watch_id: '7' } });
    const a = await store.streamCount(1);
    const b = await store.streamCount(2);
    // The store's create request is the client's, without the watch id.
    expect(b.body).toEqual({ create_request: { key: btoa('b'), prev_kv: true } });
    b.push({ header: head(5), created: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
    a.push({ header: head(5), created: true });
    await until(() => got.length === 2);
    expect(got.map((m) => [m.watch_id, m.created])).toEqual([
      ['0', true],
      ['7', true],
    ]);
    b.push({ header: head(6), events: [put('b', '1', 6)] });
    await until(() => got.length === 3);
    expect(got[2]).toMatchObject({ watch_id: '7', events: [{ kv: { key: btoa('b'), mod_revision: '6' } }] });
    expect(store.calls.every((x) => x.auth === 'Bearer bridge-token')).toBe(true);
    stream.end();
  });

  it('resumes from the revision after the last one delivered when the store stream ends, without a second `created`', async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('k'), range_end: btoa('l') } });
    const first = await store.streamCount(1);
    first.push({ header: head(10), created: true });
    first.push({ header: head(11), events: [put('k1', 'x', 11)] });
    first.push({ header: head(12), events: [put('k2', 'y', 12)] });
    await until(() => got.length === 3);
    first.end();
    const second = await store.streamCount(2);
    expect(second.body).toEqual({ create_request: { key: btoa('k'), range_end: btoa('l'), start_revision: '13' } });
    second.push({ header: head(12), created: true });
    second.push({ header: head(13), events: [put('k3', 'z', 13)] });
    await until(() => got.length === 4);
    expect(got.filter((m) => m.created).length).toBe(1);
    expect(got[3]).toMatchObject({ events: [{ kv: { key: btoa('k3') } }] });
    // A watch that started now and saw no event yet resumes after the created line's revision.
    stream.write({ create_request: { key: btoa('quiet') } });
    const third = await store.streamCount(3);
    third.push({ header: head(20), created: true });
    await until(() => got.length === 5);
    third.end();
    const fourth = await store.streamCount(4);
    expect(fourth.body).toEqual({ create_request: { key: btoa('quiet'), start_revision: '21' } });
    stream.end();
  });

  it('a cancel answers `canceled` for that id and closes its store stream; an unknown id gets nothing', async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('c') } });
    const s = await store.streamCount(1);
    s.push({ header: head(3), created: true });
    await until(() => got.length === 1);
    stream.write({ cancel_request: { watch_id: '42' } });
    stream.write({ cancel_request: { watch_id: '0' } });
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ watch_id: '0', canceled: true, header: { revision: '3' } });
    await until(() => s.signal.aborted);
    stream.end();
  });

  it("passes on a compacted start, and answers a refused create with etcd's reason; the stream goes on", async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('old'), start_revision: '2' } });
    const s = await store.streamCount(1);
    s.push({ header: head(9), created: true });
    s.push({ header: HEAD, canceled: true, compact_revision: '5' });
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ canceled: true, compact_revision: '5' });
    const msg = 'etcdserver: permission denied';
    store.refuseWatch = { status: 403, json: { error: msg, message: msg, code: 7 } };
    stream.write({ create_request: { key: btoa('secret') } });
    await until(() => got.length === 3);
    expect(got[2]).toMatchObject({ watch_id: '1', created: true, canceled: true, cancel_reason: msg });
    stream.write({ create_request: { key: btoa('after') } });
    const after = await store.streamCount(2);
    after.push({ header: head(9), created: true });
    await until(() => got.length === 4);
    expect(got[3]).toMatchObject({ watch_id: '2', created: true });
    stream.end();
  });
});

describe('bridge: unary calls and errors', () => {
  it("passes the request's JSON to /v3 and etcd's errors back as the gRPC status; malformed bytes fail the call only", async () => {
    const store = new FakeStore();
    const compacted = 'etcdserver: mvcc: required revision has been compacted';
    store.routes.set('/v3/kv/range', (body) =>
      body.revision === '3'
        ? { status: 400, json: { error: compacted, message: compacted, code: 11 } }
        : { status: 200, json: { header: head(4), kvs: [put('k', 'v', 4).kv], count: '1' } },
    );
    const bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      fetch: store.fetch as typeof fetch,
    });
    const client = etcdClients(bridge.port);
    try {
      const ok = await call(client.kv.Range, { key: btoa('k'), limit: '5', sort_order: 'DESCEND' });
      expect(store.calls[0]).toEqual({
        path: '/v3/kv/range',
        body: { key: btoa('k'), limit: '5', sort_order: 'DESCEND' },
        auth: null,
      });
      expect(ok).toMatchObject({ ok: true, m: { header: { revision: '4' }, count: '1', kvs: [{ value: btoa('v') }] } });
      expect(await call(client.kv.Range, { key: btoa('k'), revision: '3' })).toEqual({
        ok: false,
        e: expect.objectContaining({ code: 11, details: compacted }),
      });
      // No /v3 route answers: a route the Worker lacks is Unimplemented.
      expect(await call(client.kv.Put, { key: btoa('k') })).toMatchObject({ ok: false, e: { code: 12 } });
      expect(await call(client.kv.Range, { key: btoa('k') })).toMatchObject({ ok: true });
    } finally {
      client.close();
      await bridge.close();
    }
  });

  it('a store that refuses connections is Unavailable', async () => {
    const refused = async (): Promise<Response> => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      });
    };
    const bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      fetch: refused as typeof fetch,
    });
    const client = etcdClients(bridge.port);
    try {
      const r = await call(client.kv.Put, { key: btoa('k'), value: btoa('v') });
      expect(r).toMatchObject({ ok: false, e: { code: 14 } });
    } finally {
      client.close();
      await bridge.close();
    }
  });
});

describe('bridge: Authenticate and tokens', () => {
  it("takes a store token as the password, and forwards a client's token in place of its own", async () => {
    const store = new FakeStore();
    store.routes.set('/v3/maintenance/status', () => ({ status: 200, json: { header: head(1), version: '3.4.0' } }));
    store.routes.set('/v3/kv/range', () => ({ status: 200, json: { header: head(1) } }));
    const known = new Set(['Bearer good-token', 'Bearer bridge-token']);
    const fetchChecking = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      const auth = new Headers(init?.headers).get('authorization');
      if (auth !== null && !known.has(auth)) {
        const msg = 'etcdserver: invalid auth token';
        return Response.json({ error: msg, message: msg, code: 16 }, { status: 401 });
      }
      return store.fetch(input, init);
    };
    const bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      token: 'bridge-token',
      fetch: fetchChecking as typeof fetch,
    });
    const client = etcdClients(bridge.port);
    try {
      expect(await call(client.auth.Authenticate, { name: 'anyone', password: 'good-token' })).toMatchObject({
        ok: true,
        m: { token: 'good-token' },
      });
      expect(await call(client.auth.Authenticate, { name: 'anyone', password: 'bad-token' })).toMatchObject({
        ok: false,
        e: { code: 3, details: 'etcdserver: authentication failed, invalid user ID or password' },
      });
      await call(client.kv.Range, { key: btoa('k') }, 'good-token');
      await call(client.kv.Range, { key: btoa('k') });
      const ranges = store.calls.filter((x) => x.path === '/v3/kv/range').map((x) => x.auth);
      expect(ranges).toEqual(['Bearer good-token', 'Bearer bridge-token']);
      // A token the store does not know is refused by the store, whatever the bridge's own is.
      expect(await call(client.kv.Range, { key: btoa('k') }, 'forged')).toMatchObject({
        ok: false,
        e: { code: 16, details: 'etcdserver: invalid auth token' },
      });
    } finally {
      client.close();
      await bridge.close();
    }
  });
});

describe('bridge: Observe', () => {
  it('reopens the store stream when it ends, without sending the same leader twice', async () => {
    const store = new FakeStore();
    const bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      fetch: store.fetch as typeof fetch,
    });
    const client = etcdClients(bridge.port);
    try {
      const stream = client.election.Observe({ name: btoa('e') });
      const got: Message[] = [];
      stream.on('data', (m) => got.push(m));
      stream.on('error', () => {});
      const first = await store.streamCount(1);
      expect(first.body).toEqual({ name: btoa('e') });
      first.push({ header: head(3), kv: put('e/1', 'p1', 3).kv });
      await until(() => got.length === 1);
      first.end();
      const second = await store.streamCount(2);
      second.push({ header: head(4), kv: put('e/1', 'p1', 3).kv });
      second.push({ header: head(5), kv: put('e/2', 'p2', 5).kv });
      await until(() => got.length === 2);
      expect(got.map((m) => atob(String((m.kv as Message).value)))).toEqual(['p1', 'p2']);
      stream.cancel();
    } finally {
      client.close();
      await bridge.close();
    }
  });
});
