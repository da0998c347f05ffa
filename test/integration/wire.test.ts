import { exports } from 'cloudflare:workers';
import { encode } from '@msgpack/msgpack';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import { decodeEnvelope, ENVELOPE_VERSION, encodeEnvelope, MAX_ENVELOPE_BYTES } from '../../src/transport/index.ts';
import {
  allApplied,
  leader,
  localValue,
  member,
  type NodeStatus,
  newCluster,
  put,
  status,
  stub,
  waitFor,
} from './cluster-helpers.ts';

/**
 * The internal Raft route (`POST /internal/raft`) facing malformed or
 * misdirected input: a body the codec refuses gets a 400 JSON error and never
 * reaches the core; one it accepts but that is not for this node (or comes from
 * outside the cluster) is ignored. Either way the node's Raft state is
 * unchanged and the cluster still commits. The public Worker never routes there.
 */

const enc = new TextEncoder();

async function postRaft(name: string, body: Uint8Array): Promise<Response> {
  return stub(name).fetch('https://node/internal/raft', {
    method: 'POST',
    headers: { 'x-raft-node': name, 'content-type': 'application/msgpack' },
    body,
  });
}

/** The part of a node's status a message could change. */
function raftState(s: NodeStatus) {
  return { term: s.term, vote: s.vote, commit: s.commit, lastIndex: s.lastIndex, role: s.role };
}

/** The nodes' Raft state once the cluster is settled: every node has the leader's log and commit index. */
async function snapshot(names: string[]) {
  const l = await leader(names);
  const { commit, lastIndex } = await status(l);
  await waitFor('every node to catch up', async () => {
    for (const n of names) {
      const s = await status(n);
      if (s.commit < commit || s.lastIndex < lastIndex) return undefined;
    }
    return true;
  });
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, raftState(await status(n))] as const)));
}

async function expect400(res: Response, mentions?: RegExp): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof body.error?.code).toBe('string');
  expect(body.error?.code).not.toBe('');
  expect(typeof body.error?.message).toBe('string');
  if (mentions) expect(body.error?.message).toMatch(mentions);
}

/** A well-formed AppendEntries from `from` to `to` (as the leader would send). */
function app(from: string, to: string, term: number, extra: Partial<Message> = {}): Message {
  return {
    type: 'app',
    from,
    to,
    term,
    prevIndex: 0,
    prevTerm: 0,
    commit: 0,
    entries: [{ index: 1, term, type: 'normal', data: enc.encode('x') }],
    ...extra,
  } as Message;
}

let putSeq = 0;
/** The cluster still commits a write, and every node applies it. */
async function stillCommits(names: string[]): Promise<void> {
  const key = `after-${++putSeq}`;
  expect(await put(names, key, 'ok', 5000)).toBe('applied');
  const l = await leader(names);
  await allApplied(names, (await status(l)).commit);
  for (const n of names) expect(await localValue(n, key)).toBe('ok');
}

describe('the internal Raft route refuses malformed bodies with a 400 and changes nothing', () => {
  let names: string[];
  let targets: string[];

  beforeAll(async () => {
    names = await newCluster();
    expect(await put(names, 'before', '1')).toBe('applied');
    const l = await leader(names);
    // The leader and one follower receive each body.
    targets = [l, names.find((n) => n !== l) as string];
  });

  const cases: [string, () => Uint8Array, RegExp?][] = [
    [
      'random bytes',
      () => {
        const b = new Uint8Array(1024);
        crypto.getRandomValues(b);
        b[0] = 0xc1; // never a valid msgpack type byte, so the bytes cannot decode by chance
        return b;
      },
    ],
    ['more random bytes (any first byte)', () => crypto.getRandomValues(new Uint8Array(97))],
    ['an empty body', () => new Uint8Array(0)],
    [
      'a truncated valid envelope',
      () => {
        const full = encodeEnvelope('node-1', [app('node-1', 'node-0', 1)]);
        return full.slice(0, full.byteLength - 5);
      },
      /not msgpack/,
    ],
    ['msgpack that is not a map', () => encode([1, 'node-1', []]), /expected a map/],
    ['an envelope whose msgs is not an array', () => encode({ v: ENVELOPE_VERSION, from: 'node-1', msgs: 'x' })],
    [
      'a message with a field of the wrong type',
      () =>
        encode({
          v: ENVELOPE_VERSION,
          from: 'node-1',
          msgs: [{ type: 'heartbeat', from: 'node-1', to: 'node-0', term: '999', commit: 0, ctx: '' }],
        }),
      /term/,
    ],
    [
      'a message of an unknown type',
      () =>
        encode({
          v: ENVELOPE_VERSION,
          from: 'node-1',
          msgs: [{ type: 'takeover', from: 'node-1', to: 'node-0', term: 1 }],
        }),
      /unknown message type/,
    ],
    [
      'a message whose sender differs from the envelope',
      () =>
        encode({
          v: ENVELOPE_VERSION,
          from: 'node-1',
          msgs: [{ type: 'timeoutNow', from: 'node-2', to: 'node-0', term: 1 }],
        }),
    ],
    [
      'an unknown envelope version',
      () => encode({ v: ENVELOPE_VERSION + 1, from: 'node-1', msgs: [], quiet: false }),
      /version/,
    ],
    ['an envelope with no version', () => encode({ from: 'node-1', msgs: [] }), /version/],
  ];

  for (const [what, body, mentions] of cases) {
    it(`${what}: 400`, async () => {
      const before = await snapshot(names);
      for (const t of targets) await expect400(await postRaft(t, body()), mentions);
      expect(await snapshot(names)).toEqual(before);
      await stillCommits(names);
    });
  }

  it(`an oversized body (a well-formed envelope over ${MAX_ENVELOPE_BYTES} bytes): 400 before decoding`, async () => {
    const l = await leader(names);
    const s = await status(l);
    const follower = targets[1] as string;
    // Well-formed, from the real leader at its real term, consistent with the follower's log: only its size is wrong.
    const big = encodeEnvelope(member(l), [
      app(member(l), member(follower), s.term, {
        prevIndex: s.lastIndex,
        prevTerm: s.term,
        commit: s.commit,
        entries: [{ index: s.lastIndex + 1, term: s.term, type: 'normal', data: new Uint8Array(MAX_ENVELOPE_BYTES) }],
      } as Partial<Message>),
    ]);
    expect(big.byteLength).toBeGreaterThan(MAX_ENVELOPE_BYTES);
    const before = await snapshot(names);
    await expect400(await postRaft(follower, big), /exceeds/);
    await expect400(await postRaft(follower, new Uint8Array(MAX_ENVELOPE_BYTES + 1)), /exceeds/);
    expect(await snapshot(names)).toEqual(before);
    await stillCommits(names);
  });

  it('a well-formed message addressed to another node is ignored', async () => {
    const [l, follower] = targets as [string, string];
    const other = member(names.find((n) => !targets.includes(n)) as string);
    const st = await status(l);
    // Each would change the receiver's state if it were stepped: a higher term, a vote, a log to replace.
    const msgs: Message[] = [
      app(other, member(l), st.term + 5),
      {
        type: 'vote',
        from: other,
        to: member(l),
        term: st.term + 5,
        preVote: false,
        transfer: true,
        lastIndex: 10 ** 6,
        lastTerm: st.term + 4,
      } as Message,
      { type: 'timeoutNow', from: other, to: member(l), term: st.term } as Message,
    ];
    const before = await snapshot(names);
    for (const m of msgs) {
      // Delivered to a node that is not `to` (the follower for the ones addressed to the leader).
      const res = await postRaft(follower, encodeEnvelope(other, [m]));
      expect(res.status).toBeLessThan(300);
      await res.body?.cancel();
    }
    expect(await snapshot(names)).toEqual(before);
    await stillCommits(names);
  });
});

// Raft adopts any higher term it hears (§5.1), whoever sends it: the core, like etcd's, does not
// filter senders by membership, since a follower whose configuration lags must still follow a
// leader added after it. The internal route is reachable only from inside this Worker (see the
// public-route tests below). What the node does guarantee: a term past 2^48 is refused, so no
// single message can push a cluster to the end of exact integers; and whatever term it adopts,
// it stays safe and goes on committing.
describe('the internal Raft route and terms from a node outside the cluster', () => {
  const HUGE = Number.MAX_SAFE_INTEGER - 1;

  const kinds: [string, (to: string, term: number) => Message][] = [
    [
      'a vote request',
      (to, term) =>
        ({
          type: 'vote',
          from: 'intruder',
          to,
          term,
          preVote: false,
          transfer: false,
          lastIndex: 10 ** 9,
          lastTerm: term,
        }) as Message,
    ],
    ['an AppendEntries', (to, term) => app('intruder', to, term)],
    ['a heartbeat', (to, term) => ({ type: 'heartbeat', from: 'intruder', to, term, commit: 0, ctx: '' }) as Message],
    [
      'an AppendEntries reply',
      (to, term) =>
        ({ type: 'appResp', from: 'intruder', to, term, index: 0, reject: true, hintIndex: 0, hintTerm: 0 }) as Message,
    ],
  ];

  for (const [what, make] of kinds)
    for (const term of [1_000_000, HUGE]) {
      const refused = term > 2 ** 48;
      it(`${what} at term ${term} from a non-member: ${refused ? 'refused (400), nothing changes' : 'the cluster stays safe and commits'}`, async () => {
        const names = await newCluster();
        expect(await put(names, 'before', '1')).toBe('applied');
        const before = await snapshot(names);
        for (const n of names) {
          const res = await postRaft(n, encodeEnvelope('intruder', [make(member(n), term)]));
          if (refused || res.status !== 200) {
            expect(res.status).toBe(refused ? 400 : 204);
            await res.body?.cancel();
            continue;
          }
          // The node's answer rides back in the response body (FetchTransport): only to the sender.
          const reply = decodeEnvelope(new Uint8Array(await res.arrayBuffer()));
          expect(reply.from).toBe(member(n));
          expect(reply.msgs.every((m) => m.to === 'intruder')).toBe(true);
        }
        if (refused) expect(await snapshot(names)).toEqual(before);
        await stillCommits(names);
        expect(await localValue(names[0] as string, 'before')).toBe('1');
      });
    }
});

describe('the public Worker does not route to internal node routes', () => {
  it('POSTing a valid envelope to /internal/raft (and variants) on the Worker gets a 404 JSON error', async () => {
    const body = encodeEnvelope('node-1', [app('node-1', 'node-0', 5)]);
    for (const path of [
      '/internal/raft',
      '/internal/raft/',
      '//internal/raft',
      '/internal/../internal/raft',
      '/internal%2Fraft',
      '/INTERNAL/RAFT',
      '/internal/status',
      '/internal/faults',
    ]) {
      for (const method of ['POST', 'GET', 'PUT']) {
        const res = await exports.default.fetch(`https://example.com${path}`, {
          method,
          headers: { 'x-raft-node': 'node-0', 'content-type': 'application/msgpack' },
          body: method === 'GET' ? undefined : body,
        });
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const err = (await res.json()) as { error: { code: string } };
        expect(err.error.code).toBe('not_found');
      }
    }
  });
});
