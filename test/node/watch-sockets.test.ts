import { describe, expect, it } from 'vitest';
import { WatchHub } from '../../src/node/watch-hub.ts';
import { WatchSockets } from '../../src/node/watch-sockets.ts';
import { Harness } from '../kv/harness.ts';

/**
 * WebSocket watches across hibernation: the socket's attachment is all that
 * survives the object's memory, and a woken object gives every socket its
 * watches back before it applies anything.
 */

/** A stand-in for a hibernatable server socket: what it was sent, and its attachment. */
class FakeSocket {
  readonly sent: Record<string, unknown>[] = [];
  private attachment: unknown = null;
  readonly bufferedAmount = 0;
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

const anyone = { role: 'read' as const, id: 'reader' };

function node(h: Harness) {
  const hub = new WatchHub(h.sm);
  h.sm.onEvents = (es) => hub.onEvents(es);
  return new WatchSockets(
    hub,
    { revision: () => h.sm.revision(), compacted: () => h.sm.compacted(), term: () => 2 },
    () => {
      while (hub.catchUp(100));
    },
  );
}

describe('WatchSockets', () => {
  it('watches come back from the attachment after the object forgot them, and miss nothing applied after', () => {
    const h = new Harness();
    const ws = new FakeSocket();
    ws.serializeAttachment(WatchSockets.attachment(anyone));
    const before = node(h);
    before.onMessage(ws as unknown as WebSocket, JSON.stringify({ create: { prefix: 'a/', watch_id: 3 } }));
    h.put('a/1', 'x');
    expect(ws.sent.map((m) => m.revision)).toEqual([0, 1]);
    // The object hibernates (nothing applies while it sleeps), then wakes: a new hub, the same socket.
    h.sm.onEvents = undefined;
    const after = node(h);
    after.restore([ws as unknown as WebSocket]);
    h.put('a/2', 'y');
    h.put('b/1', 'not watched');
    expect(ws.sent.slice(2)).toEqual([
      {
        watch_id: 3,
        revision: 2,
        events: [{ type: 'put', kv: { key: 'a/2', create_revision: 2, mod_revision: 2, version: 1, value: 'y' } }],
      },
    ]);
  });

  it('a canceled watch leaves the attachment, so it does not come back', () => {
    const h = new Harness();
    const ws = new FakeSocket();
    ws.serializeAttachment(WatchSockets.attachment(anyone));
    const s = node(h);
    s.onMessage(ws as unknown as WebSocket, JSON.stringify({ create: { key: 'k', watch_id: 1 } }));
    s.onMessage(ws as unknown as WebSocket, JSON.stringify({ create: { key: 'j', watch_id: 2 } }));
    s.onMessage(ws as unknown as WebSocket, JSON.stringify({ cancel: { watch_id: 1 } }));
    expect((ws.deserializeAttachment() as { watches: { id: number }[] }).watches.map((w) => w.id)).toEqual([2]);
    const again = node(h);
    again.restore([ws as unknown as WebSocket]);
    h.put('k', 'x');
    h.put('j', 'y');
    expect(ws.sent.at(-1)).toMatchObject({ watch_id: 2, revision: 2 });
    expect(ws.sent.filter((m) => m.watch_id === 1 && m.revision !== undefined && !m.created)).toEqual([]);
  });

  it('too many watches for one attachment are refused with an error, not dropped later', () => {
    const h = new Harness();
    const ws = new FakeSocket();
    ws.serializeAttachment(WatchSockets.attachment(anyone));
    const s = node(h);
    const long = 'x'.repeat(300); // two such watches fit in 2,000 bytes, a third does not
    for (let i = 0; i < 4; i++)
      s.onMessage(ws as unknown as WebSocket, JSON.stringify({ create: { key: `${long}${i}` } }));
    const errors = ws.sent.filter((m) => m.error !== undefined);
    expect(errors).toHaveLength(2);
    expect((ws.deserializeAttachment() as { watches: unknown[] }).watches).toHaveLength(2);
  });
});
