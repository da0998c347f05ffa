import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { Message } from '../../src/raft/index.ts';
import {
  decodeEnvelope,
  ENVELOPE_VERSION,
  EnvelopeError,
  encodeEnvelope,
  MAX_ENVELOPE_BYTES,
} from '../../src/transport/index.ts';
import { refusedOrRoundTrips } from '../support/damage.ts';

const app: Message = {
  type: 'app',
  from: 'a',
  to: 'b',
  term: 3,
  prevIndex: 4,
  prevTerm: 2,
  commit: 4,
  entries: [{ index: 5, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3]) }],
};

const every: Message[] = [
  app,
  { type: 'vote', from: 'a', to: 'b', term: 1, preVote: true, transfer: false, lastIndex: 0, lastTerm: 0 },
  { type: 'voteResp', from: 'a', to: 'b', term: 1, preVote: false, reject: true },
  { type: 'appResp', from: 'a', to: 'b', term: 1, index: 3, reject: true, hintIndex: 2, hintTerm: 1 },
  { type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 2, ctx: '' },
  { type: 'heartbeatResp', from: 'a', to: 'b', term: 1, ctx: 'r1' },
  {
    type: 'snapshot',
    from: 'a',
    to: 'b',
    term: 1,
    snapshot: { meta: { index: 9, term: 1, conf: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array(0) },
  },
  { type: 'timeoutNow', from: 'a', to: 'b', term: 1 },
  { type: 'readIndex', from: 'a', to: 'b', term: 1, ctx: 'x' },
  { type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'x', index: 7, reject: false },
  { type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'y', index: 0, reject: true },
];

describe('transport envelope codec', () => {
  it('round-trips every message type', () => {
    const env = decodeEnvelope(encodeEnvelope('a', every, true));
    expect(env.from).toBe('a');
    expect(env.quiet).toBe(true);
    expect(env.msgs).toEqual(every);
  });

  const bad: [string, Uint8Array][] = [
    ['empty body', new Uint8Array(0)],
    ['not msgpack', new TextEncoder().encode('{"v":1}')],
    ['truncated', encodeEnvelope('a', [app]).slice(0, 20)],
    ['wrong version', encode({ v: ENVELOPE_VERSION + 1, from: 'a', msgs: [] })],
    ['the previous version', encode({ v: ENVELOPE_VERSION - 1, from: 'a', msgs: [] })],
    ['msgs not an array', encode({ v: ENVELOPE_VERSION, from: 'a', msgs: {} })],
    ['unknown type', encode({ v: ENVELOPE_VERSION, from: 'a', msgs: [{ ...app, type: 'nope' }] })],
    ['negative term', encode({ v: ENVELOPE_VERSION, from: 'a', msgs: [{ ...app, term: -1 }] })],
    ['fractional index', encode({ v: ENVELOPE_VERSION, from: 'a', msgs: [{ ...app, prevIndex: 1.5 }] })],
    [
      'string where bytes',
      encode({
        v: ENVELOPE_VERSION,
        from: 'a',
        msgs: [{ ...app, entries: [{ index: 5, term: 3, type: 'normal', data: 'x' }] }],
      }),
    ],
    [
      'entry index 0',
      encode({
        v: ENVELOPE_VERSION,
        from: 'a',
        msgs: [{ ...app, entries: [{ index: 0, term: 3, type: 'normal', data: new Uint8Array() }] }],
      }),
    ],
    [
      'missing field',
      encode({
        v: ENVELOPE_VERSION,
        from: 'a',
        msgs: [{ type: 'voteResp', from: 'a', to: 'b', term: 1, preVote: false }],
      }),
    ],
    [
      'a read answer without reject',
      encode({
        v: ENVELOPE_VERSION,
        from: 'a',
        msgs: [{ type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'x', index: 7 }],
      }),
    ],
    [
      'a read answer whose reject is not a boolean',
      encode({
        v: ENVELOPE_VERSION,
        from: 'a',
        msgs: [{ type: 'readIndexResp', from: 'a', to: 'b', term: 1, ctx: 'x', index: 0, reject: 1 }],
      }),
    ],
    ['spoofed sender', encode({ v: ENVELOPE_VERSION, from: 'c', msgs: [app] })],
    ['a map at the top is required', encode([1, 2, 3])],
  ];
  for (const [name, body] of bad) {
    it(`rejects ${name} with an EnvelopeError`, () => {
      expect(() => decodeEnvelope(body)).toThrow(EnvelopeError);
    });
  }

  it('rejects an oversized body before decoding it', () => {
    expect(() => decodeEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES + 1))).toThrow(/exceeds/);
  });
});

describe('envelope codec: term and index bounds', () => {
  const hb = (term: number) =>
    encodeEnvelope('a', [{ type: 'heartbeat', from: 'a', to: 'b', term, commit: 0, ctx: '' }] as Message[]);
  it('accepts a term up to 2^48 and refuses one beyond, so no peer can push a cluster to the end of exact integers', () => {
    expect(decodeEnvelope(hb(2 ** 48)).msgs[0]?.term).toBe(2 ** 48);
    expect(() => decodeEnvelope(hb(2 ** 48 + 1))).toThrow(EnvelopeError);
    expect(() => decodeEnvelope(hb(Number.MAX_SAFE_INTEGER - 1))).toThrow(EnvelopeError);
  });
});

describe('envelope codec: damaged envelopes (property)', () => {
  // A peer's body is decoded before anything is stepped; an error other than an EnvelopeError
  // there would reset the node (NodeRuntime.receiveReply drops only EnvelopeErrors).
  const sound = encodeEnvelope('a', every, true);

  it('decodes a damaged body to an envelope of the right shape, or refuses it with an EnvelopeError', () => {
    // What got through is what a peer could have sent: it encodes and decodes to itself.
    const refused = refusedOrRoundTrips(
      sound,
      decodeEnvelope,
      (env) => decodeEnvelope(encodeEnvelope(env.from, env.msgs, env.quiet, env.notMemberAt)),
      EnvelopeError,
    );
    expect(refused).toBeGreaterThan(1500);
  });
});
