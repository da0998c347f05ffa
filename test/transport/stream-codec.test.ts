import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  type ChunkMsg,
  decodeStreamMsg,
  EnvelopeError,
  encodeStreamMsg,
  MAX_STREAM_BYTES,
  STREAM_VERSION,
} from '../../src/transport/index.ts';
import { refusedOrRoundTrips } from '../support/damage.ts';

const chunk: ChunkMsg = {
  kind: 'chunk',
  from: 'a',
  to: 'b',
  term: 3,
  session: 'a.3.xyz',
  seq: 2,
  // A row without a lease (five fields) and one with (six).
  kv: [
    [new Uint8Array([107]), new Uint8Array([1, 2]), 1, 4, 2],
    [new Uint8Array([108]), new Uint8Array(0), 3, 3, 1, 2 ** 52 + 1],
  ],
  req: [['r1', 7, 4, 123, new Uint8Array([9])]],
  hist: [
    [3, 0, 0, 4, new Uint8Array([0x93, 1, 2, 3])],
    [5, 2, 1, 5, new Uint8Array(2 * 1024 * 1024)],
  ],
  lease: [
    [7, 60, 0],
    [2 ** 52 + 1, 9_000_000_000, 12],
  ],
  point: { index: 40, term: 3, meta: new Uint8Array([5]) },
};

describe('snapshot stream codec', () => {
  it('round-trips a chunk and an ack', () => {
    expect(decodeStreamMsg(encodeStreamMsg(chunk))).toEqual(chunk);
    // A chunk from a leader older than the history has no `hist`: it stages none.
    const { hist: _, lease: __, ...old } = chunk;
    expect(decodeStreamMsg(encode({ v: STREAM_VERSION, ...old }))).toEqual({ ...chunk, hist: [], lease: [] });
    // One from a leader older than leases has no `lease`: it stages none.
    const { lease: ___, ...noLeases } = chunk;
    expect(decodeStreamMsg(encode({ v: STREAM_VERSION, ...noLeases }))).toEqual({ ...chunk, lease: [] });
    const ack = { kind: 'ack', from: 'b', to: 'a', session: 's', seq: 0, ok: false } as const;
    expect(decodeStreamMsg(encodeStreamMsg(ack))).toEqual(ack);
  });

  const bad: [string, Uint8Array][] = [
    ['not msgpack', new Uint8Array([0xc1])],
    ['truncated', encodeStreamMsg(chunk).slice(0, 20)],
    ['another version', encode({ ...chunk, v: STREAM_VERSION + 1 })],
    ['an unknown kind', encode({ ...chunk, v: STREAM_VERSION, kind: 'install' })],
    ['a kv row of the wrong arity', encode({ ...chunk, v: STREAM_VERSION, kv: [[new Uint8Array(1), 1]] })],
    ['a key that is not bytes', encode({ ...chunk, v: STREAM_VERSION, kv: [['k', new Uint8Array(1), 1, 1, 1]] })],
    ['a negative seq', encode({ ...chunk, v: STREAM_VERSION, seq: -1 })],
    ['a history row of the wrong arity', encode({ ...chunk, v: STREAM_VERSION, hist: [[1, 0, 0, new Uint8Array(1)]] })],
    ['history that is not a list', encode({ ...chunk, v: STREAM_VERSION, hist: { a: 1 } })],
    [
      'a history row with a negative part',
      encode({ ...chunk, v: STREAM_VERSION, hist: [[1, 0, -1, 1, new Uint8Array(1)]] }),
    ],
    [
      'a history row ending before it starts',
      encode({ ...chunk, v: STREAM_VERSION, hist: [[5, 0, 0, 4, new Uint8Array(1)]] }),
    ],
    ['a history row with empty data', encode({ ...chunk, v: STREAM_VERSION, hist: [[5, 0, 0, 5, new Uint8Array(0)]] })],
    ['history data that is not bytes', encode({ ...chunk, v: STREAM_VERSION, hist: [[5, 0, 0, 5, 'data']] })],
    [
      'history data past the row limit',
      encode({ ...chunk, v: STREAM_VERSION, hist: [[5, 0, 0, 5, new Uint8Array(2 * 1024 * 1024 + 1)]] }),
    ],
    [
      'a kv row with a lease of 0',
      encode({ ...chunk, v: STREAM_VERSION, kv: [[new Uint8Array(1), new Uint8Array(1), 1, 1, 1, 0]] }),
    ],
    [
      'a kv row with a lease past the safe integers',
      encode({ ...chunk, v: STREAM_VERSION, kv: [[new Uint8Array(1), new Uint8Array(1), 1, 1, 1, 2 ** 53]] }),
    ],
    [
      'a kv row of seven fields',
      encode({ ...chunk, v: STREAM_VERSION, kv: [[new Uint8Array(1), new Uint8Array(1), 1, 1, 1, 1, 1]] }),
    ],
    ['leases that are not a list', encode({ ...chunk, v: STREAM_VERSION, lease: { a: 1 } })],
    ['a lease row of the wrong arity', encode({ ...chunk, v: STREAM_VERSION, lease: [[1, 60]] })],
    ['a lease with id 0', encode({ ...chunk, v: STREAM_VERSION, lease: [[0, 60, 0]] })],
    ['a lease with ttl 0', encode({ ...chunk, v: STREAM_VERSION, lease: [[1, 0, 0]] })],
    ['a lease with more remaining than its ttl', encode({ ...chunk, v: STREAM_VERSION, lease: [[1, 60, 61]] })],
    ['an ack without ok', encode({ v: STREAM_VERSION, kind: 'ack', from: 'b', to: 'a', session: 's', seq: 0 })],
    ['an oversized body', new Uint8Array(MAX_STREAM_BYTES + 1)],
  ];
  for (const [what, body] of bad) {
    it(`rejects ${what} with an EnvelopeError`, () => {
      expect(() => decodeStreamMsg(body)).toThrow(EnvelopeError);
    });
  }
});

describe('snapshot stream codec: damaged messages (property)', () => {
  // A chunk small enough to damage many times over (no 2 MiB history row).
  const sound = encodeStreamMsg({ ...chunk, hist: [[3, 0, 0, 4, new Uint8Array([0x93, 1, 2, 3])]] });

  it('decodes a damaged message to one that round-trips, or refuses it with an EnvelopeError', () => {
    const refused = refusedOrRoundTrips(
      sound,
      decodeStreamMsg,
      (m) => decodeStreamMsg(encodeStreamMsg(m)),
      EnvelopeError,
    );
    expect(refused).toBeGreaterThan(1500);
  });
});
