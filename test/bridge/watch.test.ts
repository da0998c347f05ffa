/**
 * The bridge's Watch service against a stand-in store: many watches on one
 * stream carried on one WebSocket, their ids and the order of their
 * `created` answers, a socket that drops (resumed from the next revision,
 * nothing repeated or skipped), a cancel, a compacted start, a refused
 * create, a full socket (a second one), a refused socket, progress and
 * progress_notify, a client that stops reading; and unary calls: the
 * request's JSON as /v3 reads it, etcd's errors back as gRPC statuses.
 * (Malformed protobuf is sent by the live run, scripts/grpc-bridge.)
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../../src/bridge/index.ts';
import { SOCKET_FULL_REASON } from '../../src/bridge/watch-socket.ts';
import { SOCKET_FULL_REASON as STORE_SOCKET_FULL_REASON } from '../../src/node/watch-sockets-v3.ts';
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

  const start = async (progressNotifyMs?: number) => {
    store = new FakeStore();
    bridge = await startBridge({
      endpoint: 'http://store.test',
      listen: '127.0.0.1:0',
      token: 'bridge-token',
      fetch: store.fetch as typeof fetch,
      webSocket: store.openSocket,
      ...(progressNotifyMs === undefined ? {} : { progressNotifyMs }),
    });
    client = etcdClients(bridge.port);
  };

  beforeEach(() => start());

  afterEach(async () => {
    client.close();
    await bridge.close();
  });

  it('the store cancel_reason of a full socket is the one the bridge looks for', () => {
    expect(SOCKET_FULL_REASON).toBe(STORE_SOCKET_FULL_REASON);
  });

  it("carries a stream's watches on one socket, with ids of its own; `created` in the order of the creates", async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('a') } });
    stream.write({ create_request: { key: btoa('b'), prev_kv: true, watch_id: '7' } });
    for (let i = 0; i < 20; i++) stream.write({ create_request: { key: btoa(`c${i}`) } });
    const s = await store.socketCount(1);
    await s.sentCount(22);
    expect(store.sockets).toHaveLength(1);
    expect(s.url).toBe('ws://store.test/v3/watch');
    expect(s.headers).toEqual({ Authorization: 'Bearer bridge-token' });
    // The store's create request is the client's, with the socket's own id.
    expect(s.creates().slice(0, 2)).toEqual([
      { key: btoa('a'), watch_id: '1' },
      { key: btoa('b'), prev_kv: true, watch_id: '2' },
    ]);
    // Answers for the second come first (as from another socket): the client still gets them in order.
    s.push({ header: head(5), watch_id: '2', created: true });
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
    s.answerCreates(head(5));
    await until(() => got.length === 22);
    expect(got.slice(0, 3).map((m) => [m.watch_id, m.created])).toEqual([
      ['0', true],
      ['7', true],
      ['1', true],
    ]);
    s.push({ header: head(6), watch_id: '2', events: [put('b', '1', 6)] });
    await until(() => got.length === 23);
    expect(got[22]).toMatchObject({ watch_id: '7', events: [{ kv: { key: btoa('b'), mod_revision: '6' } }] });
    expect(store.sockets).toHaveLength(1);
    stream.end();
  });

  it('a socket that drops reconnects and creates every watch from the revision after the last one taken: no repeat, no gap', async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('k'), range_end: btoa('l') } });
    stream.write({ create_request: { key: btoa('quiet') } });
    const first = await store.socketCount(1);
    await first.sentCount(2);
    first.answerCreates(head(10));
    first.push({ header: head(11), watch_id: '1', events: [put('k1', 'x', 11)] });
    first.push({ header: head(12), watch_id: '1', events: [put('k2', 'y', 12)] });
    await until(() => got.length === 4);
    first.drop();
    const second = await store.socketCount(2);
    await second.sentCount(2);
    // A watch that started now and saw no event yet resumes after the created answer's revision.
    expect(second.creates()).toEqual([
      { key: btoa('k'), range_end: btoa('l'), start_revision: '13', watch_id: '1' },
      { key: btoa('quiet'), start_revision: '11', watch_id: '2' },
    ]);
    second.answerCreates(head(12));
    second.push({ header: head(12), watch_id: '1', events: [put('k2', 'y', 12)] });
    second.push({ header: head(13), watch_id: '1', events: [put('k3', 'z', 13)] });
    await until(() => got.length === 5);
    await new Promise((r) => setTimeout(r, 30));
    expect(got.filter((m) => m.created).map((m) => m.watch_id)).toEqual(['0', '1']);
    expect(
      got.flatMap((m) => ((m.events as Message[] | undefined) ?? []).map((e) => (e.kv as Message).mod_revision)),
    ).toEqual(['11', '12', '13']);
    stream.end();
  });

  it('a cancel answers `canceled` for that id and cancels it on the socket; an unknown id gets nothing', async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('c') } });
    const s = await store.socketCount(1);
    await s.sentCount(1);
    s.answerCreates(head(3));
    await until(() => got.length === 1);
    stream.write({ cancel_request: { watch_id: '42' } });
    stream.write({ cancel_request: { watch_id: '0' } });
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ watch_id: '0', canceled: true, header: { revision: '3' } });
    await s.sentCount(2);
    expect(s.sent[1]).toEqual({ cancel_request: { watch_id: '1' } });
    // The store's answer to it, and anything else for that watch, is not the client's.
    s.push({ header: head(3), watch_id: '1', canceled: true });
    s.push({ header: head(4), watch_id: '1', events: [put('c', 'late', 4)] });
    await new Promise((r) => setTimeout(r, 30));
    expect(got).toHaveLength(2);
    stream.end();
  });

  it("passes on a compacted start; answers a refused create with etcd's reason; a duplicate id as etcd does", async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('old'), start_revision: '2' } });
    const s = await store.socketCount(1);
    await s.sentCount(1);
    s.answerCreates(head(9));
    s.push({ header: HEAD, watch_id: '1', canceled: true, compact_revision: '5' });
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ watch_id: '0', canceled: true, compact_revision: '5' });
    const msg = 'etcdserver: permission denied';
    stream.write({ create_request: { key: btoa('secret') } });
    await s.sentCount(2);
    s.push({ header: head(9), watch_id: '2', created: true, canceled: true, cancel_reason: msg });
    await until(() => got.length === 3);
    expect(got[2]).toMatchObject({ watch_id: '1', created: true, canceled: true, cancel_reason: msg });
    // A bad create (the store's error message answers the oldest create not answered).
    stream.write({ create_request: { key: btoa('') } });
    await s.sentCount(3);
    s.pushRaw({
      error: { grpc_code: 3, http_code: 400, message: 'etcdserver: key is not provided', http_status: 'Bad Request' },
    });
    await until(() => got.length === 4);
    expect(got[3]).toMatchObject({
      watch_id: '2',
      created: true,
      canceled: true,
      cancel_reason: 'etcdserver: key is not provided',
    });
    stream.write({ create_request: { key: btoa('after'), watch_id: '9' } });
    stream.write({ create_request: { key: btoa('again'), watch_id: '9' } });
    await s.sentCount(4);
    s.answerCreates(head(9));
    await until(() => got.length === 6);
    expect(got[4]).toMatchObject({ watch_id: '9', created: true });
    expect(got[5]).toMatchObject({
      watch_id: '-1',
      created: true,
      canceled: true,
      cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
    });
    expect(store.sockets).toHaveLength(1);
    stream.end();
  });

  it('a socket with no room sends further watches to a second socket; answers stay in order', async () => {
    const { stream, got } = open(client);
    for (const k of ['a', 'b', 'c', 'd']) stream.write({ create_request: { key: btoa(k) } });
    const s1 = await store.socketCount(1);
    await s1.sentCount(4);
    s1.push({ header: head(2), watch_id: '1', created: true });
    s1.push({ header: head(2), watch_id: '2', created: true, canceled: true, cancel_reason: SOCKET_FULL_REASON });
    s1.push({ header: head(2), watch_id: '3', created: true, canceled: true, cancel_reason: SOCKET_FULL_REASON });
    s1.push({ header: head(2), watch_id: '4', created: true });
    s1.push({ header: head(3), watch_id: '4', events: [put('d', '1', 3)] });
    const s2 = await store.socketCount(2);
    await s2.sentCount(2);
    expect(s2.creates()).toEqual([
      { key: btoa('b'), watch_id: '1' },
      { key: btoa('c'), watch_id: '2' },
    ]);
    await new Promise((r) => setTimeout(r, 30));
    // d's events wait behind b's and c's `created`.
    expect(got.map((m) => m.watch_id)).toEqual(['0']);
    s2.answerCreates(head(3));
    await until(() => got.length === 5);
    expect(got.map((m) => [m.watch_id, m.created === true])).toEqual([
      ['0', true],
      ['1', true],
      ['2', true],
      ['3', true],
      ['3', false],
    ]);
    // The first socket is full: the next watch goes to the second.
    stream.write({ create_request: { key: btoa('e') } });
    await s2.sentCount(3);
    expect(s2.creates()[2]).toEqual({ key: btoa('e'), watch_id: '3' });
    expect(store.sockets).toHaveLength(2);
    stream.end();
  });

  it('a socket the store refuses: a refusal another try would meet again ends its watches, another is retried', async () => {
    const { stream, got } = open(client);
    const msg = 'etcdserver: invalid auth token';
    store.routes.set('/v3/watch', () => ({ status: 401, json: { error: msg, message: msg, code: 16 } }));
    store.refuseSockets = 1;
    stream.write({ create_request: { key: btoa('a') } });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ watch_id: '0', created: true, canceled: true, cancel_reason: msg });
    // Refused for a reason that passes (no replica answered): tried again.
    store.routes.set('/v3/watch', () => ({ status: 200, json: { result: { header: head(4), watch_id: '-1' } } }));
    store.refuseSockets = 1;
    stream.write({ create_request: { key: btoa('b') } });
    const s = await store.socketCount(3);
    await s.sentCount(1);
    s.answerCreates(head(4));
    await until(() => got.length === 2);
    expect(got[1]).toMatchObject({ watch_id: '1', created: true });
    expect(got[1]?.canceled).toBeFalsy();
    stream.end();
  });

  it("answers a progress_request with the sockets' revision, or the store's when it has no watch", async () => {
    const { stream, got } = open(client);
    store.routes.set('/v3/watch', () => ({ status: 200, json: { result: { header: head(4), watch_id: '-1' } } }));
    stream.write({ progress_request: {} });
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ watch_id: '-1', header: { revision: '4' } });
    stream.write({ create_request: { key: btoa('a') } });
    const s = await store.socketCount(1);
    await s.sentCount(1);
    s.answerCreates(head(5));
    stream.write({ progress_request: {} });
    await s.sentCount(2);
    expect(s.sent[1]).toEqual({ progress_request: {} });
    s.push({ header: head(7), watch_id: '-1' });
    await until(() => got.length === 3);
    expect(got[2]).toMatchObject({ watch_id: '-1', header: { revision: '7' } });
    // The answer moves where the watch resumes, but never before the revision it asked to start at.
    stream.write({ create_request: { key: btoa('later'), start_revision: '20' } });
    await s.sentCount(3);
    s.answerCreates(head(7));
    stream.write({ progress_request: {} });
    await s.sentCount(4);
    s.push({ header: head(8), watch_id: '-1' });
    await until(() => got.length === 5);
    s.drop();
    const again = await store.socketCount(2);
    await again.sentCount(2);
    expect(again.creates()).toEqual([
      { key: btoa('a'), start_revision: '9', watch_id: '1' },
      { key: btoa('later'), start_revision: '20', watch_id: '2' },
    ]);
    stream.end();
  });

  it('progress_notify: a watch that asked and had no events gets a header-only answer each interval', async () => {
    client.close();
    await bridge.close();
    await start(150);
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('p'), progress_notify: true } });
    stream.write({ create_request: { key: btoa('q') } });
    stream.write({ create_request: { key: btoa('r'), progress_notify: true } });
    const s = await store.socketCount(1);
    await s.sentCount(3);
    s.answerCreates(head(5));
    await until(() => got.length === 3);
    // Events for the third before the tick: it is not quiet, so only the first is due.
    s.push({ header: head(6), watch_id: '3', events: [put('r', '1', 6)] });
    await s.sentCount(4);
    expect(s.sent[3]).toEqual({ progress_request: {} });
    s.push({ header: head(6), watch_id: '-1' });
    await until(() => got.length === 5);
    expect(got[4]).toEqual({ header: expect.objectContaining({ revision: '6' }), watch_id: '0' });
    // The next tick: both are quiet.
    await s.sentCount(5);
    s.push({ header: head(6), watch_id: '-1' });
    await until(() => got.length === 7);
    expect(
      got
        .slice(5)
        .map((m) => m.watch_id)
        .sort(),
    ).toEqual(['0', '2']);
    stream.end();
  });

  it('a client that stops reading: the bridge drops its socket past its bound and resumes once the client reads', async () => {
    const { stream, got } = open(client);
    stream.write({ create_request: { key: btoa('big/'), range_end: btoa('big0') } });
    const s = await store.socketCount(1);
    await s.sentCount(1);
    s.answerCreates(head(1));
    await until(() => got.length === 1);
    stream.pause();
    const value = 'v'.repeat(96 * 1024);
    let rev = 2;
    for (; rev < 200 && !s.closed; rev++) {
      s.push({ header: head(rev), watch_id: '1', events: [put(`big/${rev}`, value, rev)] });
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(s.closedByBridge).toBe(true);
    const sentUpTo = rev - 1;
    stream.resume();
    const again = await store.socketCount(2, 10_000);
    await again.sentCount(1);
    const from = Number(again.creates()[0]?.start_revision);
    expect(from).toBeLessThanOrEqual(sentUpTo + 1);
    again.answerCreates(head(sentUpTo));
    for (let r = from; r <= sentUpTo + 2; r++)
      again.push({ header: head(r), watch_id: '1', events: [put(`big/${r}`, value, r)] });
    await until(() => got.length === sentUpTo + 2, 10_000);
    const revisions = got
      .slice(1)
      .map((m) => Number(((m.events as Message[])[0]?.kv as Message | undefined)?.mod_revision));
    expect(revisions).toEqual(Array.from({ length: sentUpTo + 1 }, (_, i) => i + 2));
    stream.end();
  });
});

/** A bridge on `fetch` (a stand-in store) and an etcd client of it, for `run`; both closed after. */
async function withBridge(fetch: unknown, run: (client: EtcdClients) => Promise<void>): Promise<void> {
  const bridge = await startBridge({
    endpoint: 'http://store.test',
    listen: '127.0.0.1:0',
    fetch: fetch as typeof globalThis.fetch,
  });
  const client = etcdClients(bridge.port);
  try {
    await run(client);
  } finally {
    client.close();
    await bridge.close();
  }
}

describe('bridge: unary calls and errors', () => {
  it("passes the request's JSON to /v3 and etcd's errors back as the gRPC status; malformed bytes fail the call only", async () => {
    const store = new FakeStore();
    const compacted = 'etcdserver: mvcc: required revision has been compacted';
    store.routes.set('/v3/kv/range', (body) =>
      body.revision === '3'
        ? { status: 400, json: { error: compacted, message: compacted, code: 11 } }
        : { status: 200, json: { header: head(4), kvs: [put('k', 'v', 4).kv], count: '1' } },
    );
    await withBridge(store.fetch, async (client) => {
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
    });
  });

  it("passes a Txn's range op at a revision to /v3 with its revision, and the range's answer back", async () => {
    const store = new FakeStore();
    const old = put('k', 'old', 2).kv;
    store.routes.set('/v3/kv/txn', () => ({
      status: 200,
      json: {
        header: head(5),
        succeeded: true,
        responses: [
          { response_range: { header: head(5), kvs: [old], count: '1' } },
          { response_put: { header: head(5) } },
        ],
      },
    }));
    await withBridge(store.fetch, async (client) => {
      const success = [
        { request_range: { key: btoa('k'), revision: '2' } },
        { request_put: { key: btoa('k'), value: btoa('new') } },
      ];
      const r = await call(client.kv.Txn, { success });
      expect(store.calls[0]).toEqual({ path: '/v3/kv/txn', body: { success }, auth: null });
      expect(r).toMatchObject({
        ok: true,
        m: {
          succeeded: true,
          responses: [{ response_range: { kvs: [{ value: btoa('old'), mod_revision: '2' }] } }, { response_put: {} }],
        },
      });
    });
  });

  it('a store that refuses connections is Unavailable', async () => {
    const refused = async (): Promise<Response> => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      });
    };
    await withBridge(refused, async (client) => {
      const r = await call(client.kv.Put, { key: btoa('k'), value: btoa('v') });
      expect(r).toMatchObject({ ok: false, e: { code: 14 } });
    });
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
