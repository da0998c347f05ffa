import { describe, expect, it } from 'vitest';
import { WatchHub } from '../../src/node/watch-hub.ts';
import { WatchSockets } from '../../src/node/watch-sockets.ts';
import { SOCKET_FULL_REASON } from '../../src/node/watch-sockets-v3.ts';
import { Harness } from '../kv/harness.ts';

/**
 * etcd's gateway protocol on a watch socket (GET /v3/watch), against a
 * state machine and a stand-in socket: what each WatchRequest answers, the
 * compact attachment, and the watches back after hibernation.
 */

class FakeSocket {
  readonly sent: Record<string, unknown>[] = [];
  private attachment: unknown = null;
  bufferedAmount = 0;
  send(m: string): void {
    this.sent.push(JSON.parse(m) as Record<string, unknown>);
  }
  serializeAttachment(a: unknown): void {
    this.attachment = JSON.parse(JSON.stringify(a));
  }
  deserializeAttachment(): unknown {
    return this.attachment;
  }
}

type Result = {
  header: Record<string, string>;
  watch_id?: string;
  canceled?: boolean;
  events?: { type?: string; kv: { key: string; value?: string }; prev_kv?: unknown }[];
};

const IDS = { clusterId: '111', memberId: '222' };
const b64 = (s: string) => btoa(s);
const head = (revision?: number, term = 2) => ({
  cluster_id: '111',
  member_id: '222',
  ...(revision === undefined ? {} : { revision: String(revision) }),
  raft_term: String(term),
});
const result = (m: Record<string, unknown> | undefined): Result => (m?.result ?? {}) as Result;

/** A node's sockets over a fresh state machine; `catchUp` false: watches behind stay behind until the test feeds them. */
function setup(
  principal: { role: 'read'; id: string; prefixes?: string[] } = { role: 'read', id: 'r' },
  catchUp = true,
) {
  const h = new Harness();
  const hub = new WatchHub(h.sm);
  h.sm.onEvents = (es) => hub.onEvents(es);
  const sockets = new WatchSockets(
    hub,
    { revision: () => h.sm.revision(), compacted: () => h.sm.compacted(), term: () => 2 },
    () => {
      while (catchUp && hub.catchUp(100));
    },
  );
  const ws = new FakeSocket();
  ws.serializeAttachment(WatchSockets.attachment(principal, IDS));
  const send = (m: unknown) =>
    sockets.onMessage(ws as unknown as WebSocket, typeof m === 'string' ? m : JSON.stringify(m));
  return { h, hub, sockets, ws, send };
}

describe('WatchSockets: etcd gateway protocol (v3)', () => {
  it('creates watches with assigned and chosen ids, streams their events, cancels, answers progress', () => {
    const { h, ws, send } = setup();
    send({ create_request: { key: b64('a/'), range_end: b64('a0') } });
    send({ create_request: { key: b64('b'), watch_id: '7', prev_kv: true } });
    send({ create_request: { key: b64('c') } });
    expect(ws.sent).toEqual([
      { result: { header: head(1), created: true } },
      { result: { header: head(1), watch_id: '7', created: true } },
      { result: { header: head(1), watch_id: '1', created: true } },
    ]);
    h.put('a/1', 'x');
    h.put('b', 'y');
    h.put('b', 'z');
    const kv = (key: string, value: string, create: number, mod: number, version: number) => ({
      key: b64(key),
      create_revision: String(create),
      mod_revision: String(mod),
      version: String(version),
      value: b64(value),
    });
    expect(ws.sent.slice(3)).toEqual([
      { result: { header: head(2), events: [{ kv: kv('a/1', 'x', 2, 2, 1) }] } },
      { result: { header: head(3), watch_id: '7', events: [{ kv: kv('b', 'y', 3, 3, 1) }] } },
      {
        result: {
          header: head(4),
          watch_id: '7',
          events: [{ kv: kv('b', 'z', 3, 4, 2), prev_kv: kv('b', 'y', 3, 3, 1) }],
        },
      },
    ]);
    send({ cancel_request: { watch_id: '7' } });
    send({ cancel_request: { watch_id: '42' } });
    expect(ws.sent.slice(6)).toEqual([{ result: { header: head(4), watch_id: '7', canceled: true } }]);
    h.put('b', 'gone');
    send({ progress_request: {} });
    expect(ws.sent.slice(7)).toEqual([{ result: { header: head(5), watch_id: '-1' } }]);
    // Ids are assigned upward and never reused on the socket (as etcd's): 0 and 1 were given, 2 is next.
    send({ cancel_request: { watch_id: '1' } });
    send({ create_request: { key: b64('d') } });
    expect(ws.sent.at(-1)).toEqual({ result: { header: head(5), watch_id: '2', created: true } });
  });

  it('a start in the past catches up; a compacted one is created then canceled; a duplicate id is refused', () => {
    const { h, ws, send } = setup();
    for (let i = 1; i <= 4; i++) h.put('k', `v${i}`);
    h.run({ type: 'compact', revision: 2 });
    // etcd's revision 4 is the store's 3.
    send({ create_request: { key: b64('k'), start_revision: '4', watch_id: '1' } });
    expect(ws.sent.map((m) => result(m).events?.map((e) => atob(e.kv.value ?? '')))).toEqual([
      undefined,
      ['v3'],
      ['v4'],
    ]);
    send({ create_request: { key: b64('k'), start_revision: '2', watch_id: '2' } });
    expect(ws.sent.slice(3)).toEqual([
      { result: { header: head(5), watch_id: '2', created: true } },
      { result: { header: head(), watch_id: '2', canceled: true, compact_revision: '3' } },
    ]);
    send({ create_request: { key: b64('x'), watch_id: '1' } });
    expect(ws.sent.at(-1)).toEqual({
      result: {
        header: head(5),
        watch_id: '-1',
        created: true,
        canceled: true,
        cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream',
      },
    });
    // The compacted watch left nothing behind: its id is free again.
    send({ create_request: { key: b64('x'), watch_id: '2' } });
    expect(ws.sent.at(-1)).toEqual({ result: { header: head(5), watch_id: '2', created: true } });
  });

  it("etcd's revision 1 is the empty store: compacted once any compaction happened", () => {
    const { h, ws, send } = setup();
    send({ create_request: { key: b64('k'), start_revision: '1', watch_id: '1' } });
    h.put('k', 'a');
    expect(ws.sent.map((m) => Object.keys(result(m)))).toEqual([
      ['header', 'watch_id', 'created'],
      ['header', 'watch_id', 'events'],
    ]);
    h.run({ type: 'compact', revision: 1 });
    send({ create_request: { key: b64('k'), start_revision: '1', watch_id: '3' } });
    expect(ws.sent.slice(2)).toEqual([
      { result: { header: head(2), watch_id: '3', created: true } },
      { result: { header: head(), watch_id: '3', canceled: true, compact_revision: '2' } },
    ]);
  });

  it('NOPUT and NODELETE; a progress answer never names a revision a watch has not been sent', () => {
    const { h, ws, send } = setup();
    send({ create_request: { key: b64('f'), filters: ['NOPUT'], watch_id: '1' } });
    send({ create_request: { key: b64('f'), filters: [1], watch_id: '2' } });
    h.put('f', '1');
    h.run({ type: 'delete', key: 'f' });
    expect(ws.sent.slice(2).map((m) => [result(m).watch_id, result(m).events?.[0]?.type ?? 'PUT'])).toEqual([
      ['2', 'PUT'],
      ['1', 'DELETE'],
    ]);
    // A watch that is behind (not yet read from history) holds the progress answer back to what it was sent.
    const behind = setup(undefined, false);
    behind.h.put('g', '0');
    behind.h.put('g', '1');
    behind.send({ create_request: { key: b64('g'), start_revision: '2', watch_id: '5' } });
    behind.send({ progress_request: {} });
    expect(behind.ws.sent.at(-1)).toEqual({ result: { header: head(1), watch_id: '-1' } });
    while (behind.hub.catchUp(100));
    behind.send({ progress_request: {} });
    expect(behind.ws.sent.at(-1)).toEqual({ result: { header: head(3), watch_id: '-1' } });
  });

  it('bad messages answer an error in the gateway stream shape and change nothing; an empty one is ignored', () => {
    const { ws, send } = setup({ role: 'read', id: 'r', prefixes: ['mine/'] });
    const bad: unknown[] = [
      'not json',
      '[]',
      '5',
      { create_request: { key: b64('mine/a') }, cancel_request: { watch_id: '0' } },
      { create_request: { key: 5 } },
      { create_request: { key: b64('mine/a'), start_revision: 1.5 } },
      '{"create_request":{"key":"bWluZS9h","start_revision":1.0}}',
      { create_request: { key: b64('mine/a'), filters: ['NOTHING'] } },
      { create_request: { key: '' } },
      { create_request: 'x' },
      { cancel_request: { watch_id: 'x' } },
    ];
    for (const m of bad) send(m);
    expect(ws.sent).toHaveLength(bad.length);
    for (const m of ws.sent) {
      expect(m.error).toMatchObject({ grpc_code: 3, http_code: 400, http_status: 'Bad Request' });
      expect(typeof (m.error as { message: unknown }).message).toBe('string');
    }
    expect(ws.sent[8]?.error).toMatchObject({ message: 'etcdserver: key is not provided' });
    send({});
    send('null');
    expect(ws.sent).toHaveLength(bad.length);
    // Keys outside the token's prefixes: created and canceled, as etcd refuses a watch it does not permit.
    send({ create_request: { key: b64('theirs/a'), watch_id: '4' } });
    expect(ws.sent.at(-1)).toEqual({
      result: {
        header: head(1),
        watch_id: '4',
        created: true,
        canceled: true,
        cancel_reason: 'etcdserver: permission denied',
      },
    });
    send({ create_request: { key: b64('mine/a') } });
    expect(ws.sent.at(-1)).toEqual({ result: { header: head(1), created: true } });
    expect((ws.deserializeAttachment() as { w: unknown[] }).w).toEqual([[0, 'mine/a', 0]]);
  });

  it('keeps each watch in a few bytes, refuses one that does not fit with SOCKET_FULL_REASON, frees room on cancel', () => {
    const { ws, send } = setup();
    let n = 0;
    for (; n < 200; n++) {
      send({ create_request: { key: b64(`app/service-${n}/`), range_end: b64(`app/service-${n}0`), prev_kv: true } });
      if (result(ws.sent.at(-1)).canceled) break;
    }
    expect(n).toBeGreaterThan(40);
    expect(ws.sent.at(-1)).toEqual({
      result: {
        header: head(1),
        watch_id: String(n),
        created: true,
        canceled: true,
        cancel_reason: SOCKET_FULL_REASON,
      },
    });
    expect(new TextEncoder().encode(JSON.stringify(ws.deserializeAttachment())).byteLength).toBeLessThanOrEqual(2000);
    send({ cancel_request: { watch_id: '3' } });
    send({ create_request: { key: b64('z') } });
    expect(ws.sent.at(-1)).toEqual({ result: { header: head(1), watch_id: String(n), created: true } });
  });

  it('watches come back from the compact attachment after hibernation, with their filters', () => {
    const { h, ws, send } = setup();
    send({ create_request: { key: b64('p/'), range_end: b64('p0'), prev_kv: true, filters: ['NODELETE'] } });
    send({ create_request: { key: b64('q'), range_end: b64('qz'), watch_id: '9' } });
    send({ create_request: { key: b64('s'), range_end: 'AA==' } });
    expect((ws.deserializeAttachment() as { w: unknown[] }).w).toEqual([
      [0, 'p/', 1, 5],
      [9, 'q', 'qz'],
      [1, 's', null],
    ]);
    // The object hibernates (nothing applies while it sleeps), then wakes: a new hub, the same socket.
    h.sm.onEvents = undefined;
    const hub = new WatchHub(h.sm);
    h.sm.onEvents = (es) => hub.onEvents(es);
    const after = new WatchSockets(
      hub,
      { revision: () => h.sm.revision(), compacted: () => h.sm.compacted(), term: () => 3 },
      () => {},
    );
    after.restore([ws as unknown as WebSocket]);
    h.put('p/1', 'a');
    h.run({ type: 'delete', key: 'p/1' });
    h.put('q1', 'b');
    h.put('zz', 'c');
    // The delete is filtered out (NODELETE); 's' and on sees 'zz' only.
    expect(
      ws.sent.slice(3).map((m) => [result(m).watch_id ?? '0', result(m).events?.map((e) => atob(e.kv.key))]),
    ).toEqual([
      ['0', ['p/1']],
      ['9', ['q1']],
      ['1', ['zz']],
    ]);
    expect(result(ws.sent[3]).header).toEqual(head(2, 3));
    expect(result(ws.sent[3]).events?.[0]?.prev_kv).toBeUndefined();
  });

  it('a /v1 socket beside it speaks /v1 still', () => {
    const { h, sockets } = setup();
    const v1 = new FakeSocket();
    v1.serializeAttachment(WatchSockets.attachment({ role: 'read', id: 'r' }));
    sockets.onMessage(v1 as unknown as WebSocket, JSON.stringify({ create: { key: 'k' } }));
    h.put('k', 'v');
    expect(v1.sent.map((m) => [m.watch_id, m.created ?? m.revision])).toEqual([
      [0, true],
      [0, 1],
    ]);
  });
});
