import { describe, expect, it } from 'vitest';
import type { Message, NodeId } from '../../src/raft/index.ts';
import { decodeEnvelope, encodeEnvelope, FaultLayer, FetchTransport, type Peer } from '../../src/transport/index.ts';

const hb = (from: NodeId, to: NodeId): Message => ({ type: 'heartbeat', from, to, term: 1, commit: 0, ctx: '' });
const hbResp = (from: NodeId, to: NodeId): Message => ({ type: 'heartbeatResp', from, to, term: 1, ctx: '' });

/** Peers that record what they were sent and answer with `answer(to)` (default: 204, no body). */
function world(answer: (to: NodeId) => Response = () => new Response(null, { status: 204 })) {
  const posted: { to: NodeId; from: NodeId; msgs: Message[] }[] = [];
  const replies: { from: NodeId; msgs: Message[] }[] = [];
  const unreachable: NodeId[] = [];
  const faults = new FaultLayer(() => 0.5);
  const transport = new FetchTransport({
    self: 'a',
    peer: (to): Peer => ({
      fetch: async (_url, init) => {
        const env = decodeEnvelope(init.body as Uint8Array);
        posted.push({ to, from: env.from, msgs: [...env.msgs] });
        return answer(to);
      },
    }),
    timeoutMs: 1000,
    onUnreachable: (to) => unreachable.push(to),
    onReply: (from, body) => replies.push({ from, msgs: [...decodeEnvelope(body).msgs] }),
    faults,
  });
  const settle = () => new Promise((r) => setTimeout(r, 10));
  return { transport, posted, replies, unreachable, faults, settle };
}

describe('FetchTransport: replies ride in the response body', () => {
  it('messages for the peer being answered come back from flush; the others are posted', async () => {
    const w = world();
    w.transport.send([hbResp('a', 'b'), hb('a', 'c'), hbResp('a', 'b')]);
    const reply = w.transport.flush(false, 'b');
    expect(reply && decodeEnvelope(reply)).toMatchObject({ from: 'a', msgs: [hbResp('a', 'b'), hbResp('a', 'b')] });
    await w.settle();
    expect(w.posted.map((p) => p.to)).toEqual(['c']);
  });

  it('without a peer to answer, or with nothing for it, everything is posted and flush returns nothing', async () => {
    const w = world();
    w.transport.send([hb('a', 'b')]);
    expect(w.transport.flush()).toBeUndefined();
    w.transport.send([hb('a', 'c')]);
    expect(w.transport.flush(false, 'b')).toBeUndefined();
    await w.settle();
    expect(w.posted.map((p) => p.to)).toEqual(['b', 'c']);
  });

  it('a fault rule on the link decides as for a post: blocked means dropped, delayed means posted later', async () => {
    const w = world();
    w.faults.set({ blocked: ['a>b'], dropRate: 0, duplicateRate: 0, delayMs: 0 });
    w.transport.send([hbResp('a', 'b')]);
    expect(w.transport.flush(false, 'b')).toBeUndefined();
    w.faults.set({ blocked: [], dropRate: 0, duplicateRate: 0, delayMs: 5 });
    w.transport.send([hbResp('a', 'b')]);
    expect(w.transport.flush(false, 'b')).toBeUndefined();
    await w.settle();
    expect(w.posted.map((p) => p.to)).toEqual(['b']);
  });

  it("a peer's answer in a 200 body is handed to onReply; a 204 hands nothing; an error status is a failure", async () => {
    const answers: Record<NodeId, () => Response> = {
      b: () => new Response(encodeEnvelope('b', [hbResp('b', 'a')]), { status: 200 }),
      c: () => new Response(null, { status: 204 }),
      d: () => new Response('{}', { status: 500 }),
    };
    const w = world((to) => (answers[to] as () => Response)());
    w.transport.send([hb('a', 'b'), hb('a', 'c'), hb('a', 'd')]);
    w.transport.flush();
    await w.settle();
    expect(w.replies).toEqual([{ from: 'b', msgs: [hbResp('b', 'a')] }]);
    expect(w.unreachable).toEqual(['d']);
  });
});
