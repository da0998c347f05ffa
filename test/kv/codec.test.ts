import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  type CommandEnvelope,
  decodeCommand,
  encodeCommand,
  fingerprint,
  KvDecodeError,
  MAX_KEY_BYTES,
  MAX_TXN_OPS,
  MAX_VALUE_BYTES,
  validateCommand,
  validateRangeQuery,
} from '../../src/kv/index.ts';

const b = (s: string) => new TextEncoder().encode(s);
/** Encodes a raw envelope without validation, as a buggy or hostile proposer might. */
const raw = (cmd: unknown, extra: Record<string, unknown> = {}) => encode({ v: 1, cmd, ...extra });

describe('command codec', () => {
  it('round-trips every command kind', () => {
    const envs: CommandEnvelope[] = [
      { requestId: 'r1', cmd: { type: 'put', key: 'k', value: b('v'), prevKv: true } },
      { cmd: { type: 'delete', key: 'k' } },
      { cmd: { type: 'deletePrefix', prefix: 'a/', prevKv: true } },
      { cmd: { type: 'deleteRange', start: 'a', end: 'c' } },
      { cmd: { type: 'cas', key: 'k', expect: { modRevision: 0 }, value: b('') } },
      { cmd: { type: 'cas', key: 'k', expect: { value: b('x') }, value: b('y') } },
      { cmd: { type: 'cas', key: 'k', expect: { absent: true }, value: b('y') } },
      {
        cmd: {
          type: 'txn',
          compare: [
            { key: 'k', target: 'version', op: '>', value: 2 },
            { key: 'k', target: 'value', op: '!=', value: b('x') },
          ],
          success: [
            { type: 'get', key: 'k' },
            { type: 'range', prefix: 'p/', limit: 3, keysOnly: true },
            { type: 'range', start: 'a', end: 'b', revision: 7 },
            { type: 'put', key: 'q', value: b('1') },
          ],
          failure: [{ type: 'deletePrefix', prefix: 'z' }],
        },
      },
    ];
    for (const env of envs) expect(decodeCommand(encodeCommand(env))).toEqual(env);
  });

  it('is canonical: field order and false flags do not change the bytes or the fingerprint', () => {
    const a = encodeCommand({ cmd: { type: 'put', key: 'k', value: b('v') } });
    const c = encodeCommand({ cmd: { value: b('v'), prevKv: false, key: 'k', type: 'put' } as never });
    expect(c).toEqual(a);
    expect(fingerprint(validateCommand({ value: b('v'), key: 'k', type: 'put' }))).toBe(
      fingerprint(validateCommand({ type: 'put', key: 'k', value: b('v') })),
    );
    expect(fingerprint(validateCommand({ type: 'put', key: 'k', value: b('w') }))).not.toBe(
      fingerprint(validateCommand({ type: 'put', key: 'k', value: b('v') })),
    );
  });

  it('decoded values own their bytes (not views of the entry)', () => {
    const data = encodeCommand({ cmd: { type: 'put', key: 'k', value: b('abc') } });
    const env = decodeCommand(data);
    data.fill(0);
    expect(env.cmd.type === 'put' && new TextDecoder().decode(env.cmd.value)).toBe('abc');
  });

  const bad: [string, Uint8Array][] = [
    ['not msgpack', new Uint8Array([0xc1])],
    ['truncated', encodeCommand({ cmd: { type: 'put', key: 'k', value: b('v') } }).subarray(0, 8)],
    ['a bare number', encode(5)],
    ['no version', encode({ cmd: { type: 'delete', key: 'k' } })],
    ['a future version', encode({ v: 2, cmd: { type: 'delete', key: 'k' } })],
    ['an unknown envelope field', raw({ type: 'delete', key: 'k' }, { extra: 1 })],
    ['an unknown command', raw({ type: 'increment', key: 'k' })],
    ['no type', raw({ key: 'k' })],
    ['an empty key', raw({ type: 'delete', key: '' })],
    ['a numeric key', raw({ type: 'delete', key: 7 })],
    ['a lone surrogate in a key', raw({ type: 'delete', key: 'a\ud800' })],
    ['a key over the limit', raw({ type: 'delete', key: 'k'.repeat(MAX_KEY_BYTES + 1) })],
    ['a string value', raw({ type: 'put', key: 'k', value: 'v' })],
    ['a value over the limit', raw({ type: 'put', key: 'k', value: new Uint8Array(MAX_VALUE_BYTES + 1) })],
    ['a non-boolean prevKv', raw({ type: 'put', key: 'k', value: b('v'), prevKv: 1 })],
    ['an unknown command field', raw({ type: 'put', key: 'k', value: b('v'), ttl: 5 })],
    ['an empty requestId', raw({ type: 'delete', key: 'k' }, { requestId: '' })],
    ['a numeric requestId', raw({ type: 'delete', key: 'k' }, { requestId: 5 })],
    ['an empty deletePrefix', raw({ type: 'deletePrefix', prefix: '' })],
    ['a deleteRange with a numeric end', raw({ type: 'deleteRange', start: 'a', end: 5 })],
    ['cas expecting two things', raw({ type: 'cas', key: 'k', expect: { version: 1, modRevision: 1 }, value: b('v') })],
    ['cas expecting nothing', raw({ type: 'cas', key: 'k', expect: {}, value: b('v') })],
    ['cas expecting absent: false', raw({ type: 'cas', key: 'k', expect: { absent: false }, value: b('v') })],
    ['cas with a negative version', raw({ type: 'cas', key: 'k', expect: { version: -1 }, value: b('v') })],
    ['cas with a fractional revision', raw({ type: 'cas', key: 'k', expect: { modRevision: 1.5 }, value: b('v') })],
    ['cas with an unsafe integer', raw({ type: 'cas', key: 'k', expect: { modRevision: 2 ** 60 }, value: b('v') })],
    [
      'a compare with an unknown op',
      raw({ type: 'txn', compare: [{ key: 'k', target: 'version', op: '>=', value: 1 }], success: [], failure: [] }),
    ],
    [
      'a value compare with a number',
      raw({ type: 'txn', compare: [{ key: 'k', target: 'value', op: '=', value: 1 }], success: [], failure: [] }),
    ],
    [
      'a version compare with bytes',
      raw({
        type: 'txn',
        compare: [{ key: 'k', target: 'version', op: '=', value: b('1') }],
        success: [],
        failure: [],
      }),
    ],
    [
      'a txn op that is a cas',
      raw({
        type: 'txn',
        compare: [],
        success: [{ type: 'cas', key: 'k', expect: { absent: true }, value: b('v') }],
        failure: [],
      }),
    ],
    [
      'a nested txn with an unknown field',
      raw({ type: 'txn', compare: [], success: [{ type: 'txn', compare: [], success: [], x: 1 }], failure: [] }),
    ],
    [
      'a branch that is not an array',
      raw({ type: 'txn', compare: [], success: { type: 'get', key: 'k' }, failure: [] }),
    ],
    [
      'too many ops',
      raw({
        type: 'txn',
        compare: [],
        success: Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => ({ type: 'get', key: `k${i}` })),
        failure: [],
      }),
    ],
    [
      'a key put twice in a branch',
      raw({
        type: 'txn',
        compare: [],
        success: [
          { type: 'put', key: 'k', value: b('1') },
          { type: 'put', key: 'k', value: b('2') },
        ],
        failure: [],
      }),
    ],
    [
      'a put inside a deleted prefix',
      raw({
        type: 'txn',
        compare: [],
        success: [
          { type: 'deletePrefix', prefix: 'a/' },
          { type: 'put', key: 'a/x', value: b('1') },
        ],
        failure: [],
      }),
    ],
    [
      'a put of a deleted key',
      raw({
        type: 'txn',
        compare: [],
        success: [],
        failure: [
          { type: 'put', key: 'k', value: b('1') },
          { type: 'delete', key: 'k' },
        ],
      }),
    ],
    [
      'a range with a negative limit',
      raw({ type: 'txn', compare: [], success: [{ type: 'range', prefix: 'a', limit: -1 }], failure: [] }),
    ],
    [
      'a range at a negative revision',
      raw({ type: 'txn', compare: [], success: [{ type: 'range', prefix: 'a', revision: -1 }], failure: [] }),
    ],
    [
      'a range at a revision that is not an integer',
      raw({ type: 'txn', compare: [], success: [{ type: 'range', prefix: 'a', revision: 1.5 }], failure: [] }),
    ],
    [
      'a range with an unknown field',
      raw({ type: 'txn', compare: [], success: [{ type: 'range', prefix: 'a', reverse: true }], failure: [] }),
    ],
  ];
  for (const [what, data] of bad) {
    it(`refuses ${what}`, () => {
      expect(() => decodeCommand(data)).toThrow(KvDecodeError);
    });
  }

  it('allows a put and a delete of different keys in one branch, and the same key in different branches', () => {
    const cmd = validateCommand({
      type: 'txn',
      compare: [],
      success: [
        { type: 'delete', key: 'a' },
        { type: 'put', key: 'a0', value: b('') },
        { type: 'deletePrefix', prefix: 'b/' },
        { type: 'put', key: 'b', value: b('') },
      ],
      failure: [{ type: 'put', key: 'a', value: b('') }],
    });
    expect(cmd.type).toBe('txn');
  });

  it('encodeCommand refuses what decodeCommand would refuse, so nothing malformed is proposed', () => {
    expect(() => encodeCommand({ cmd: { type: 'put', key: '', value: b('v') } })).toThrow(KvDecodeError);
    expect(() => encodeCommand({ cmd: { type: 'nope' } as never })).toThrow(KvDecodeError);
  });

  it('validateRangeQuery drops limit 0 and false flags and refuses junk', () => {
    expect(validateRangeQuery({ prefix: 'a', limit: 0, keysOnly: false })).toEqual({ prefix: 'a' });
    expect(() => validateRangeQuery({ prefix: 5 })).toThrow(KvDecodeError);
    expect(() => validateRangeQuery({ type: 'range' })).toThrow(KvDecodeError);
    // A revision belongs to a txn's range op; a plain query reads at one through rangeAt.
    expect(() => validateRangeQuery({ prefix: 'a', revision: 3 })).toThrow(KvDecodeError);
    expect(() => validateRangeQuery(null)).toThrow(KvDecodeError);
  });
});
