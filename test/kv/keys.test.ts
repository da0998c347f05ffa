import { describe, expect, it } from 'vitest';
import { compareKeys, inInterval, isWellFormed, prefixEnd, resolveInterval, utf8Length } from '../../src/kv/index.ts';

/** A small seeded generator, so failures reproduce. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

/** Code points drawn from the ranges where UTF-16 and UTF-8 orders disagree, plus their neighbours. */
const POOL = [
  0x00, 0x2f, 0x30, 0x61, 0x7f, 0x80, 0xe9, 0x7ff, 0x800, 0x4e2d, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x1f600,
  0x10fffe, 0x10ffff,
];

function randomKey(next: (n: number) => number): string {
  const len = next(5);
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCodePoint(POOL[next(POOL.length)] as number);
  return s;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('compareKeys', () => {
  it('orders as UTF-8 bytes compare (checked against Buffer.compare on 20,000 random pairs)', () => {
    const next = rng(7);
    for (let i = 0; i < 20_000; i++) {
      const a = randomKey(next);
      const b = randomKey(next);
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(
        Buffer.compare(utf8(a), utf8(b)),
      );
    }
  });

  it('puts a supplementary character after U+FFFF, where UTF-16 order puts it before', () => {
    expect('\u{1f600}' < '\uffff').toBe(true);
    expect(compareKeys('\u{1f600}', '\uffff')).toBeGreaterThan(0);
    expect(compareKeys('\ue000', '\u{10000}')).toBeLessThan(0);
    expect(compareKeys('a', 'a\u0000')).toBeLessThan(0);
    expect(compareKeys('\u00e9', '\u00e9')).toBe(0);
  });
});

describe('isWellFormed and utf8Length', () => {
  it('rejects lone surrogates and measures UTF-8 bytes', () => {
    expect(isWellFormed('a\u{1f600}b')).toBe(true);
    expect(isWellFormed('a\ud83d')).toBe(false);
    expect(isWellFormed('\ude00a')).toBe(false);
    expect(isWellFormed('\ud83d\ud83d\ude00')).toBe(false);
    const next = rng(3);
    for (let i = 0; i < 2000; i++) {
      const k = randomKey(next);
      expect(utf8Length(k)).toBe(utf8(k).length);
    }
  });
});

describe('prefixEnd', () => {
  it('bounds exactly the keys that start with the prefix (random keys against startsWith)', () => {
    const next = rng(11);
    const keys = Array.from({ length: 400 }, () => randomKey(next));
    for (let i = 0; i < 300; i++) {
      const prefix = randomKey(next);
      const end = prefixEnd(prefix);
      for (const k of keys) {
        const inside = inInterval(k, { start: prefix, end });
        expect(inside, `${JSON.stringify(k)} under ${JSON.stringify(prefix)}`).toBe(k.startsWith(prefix));
      }
    }
  });

  it('increments the last code point, skips surrogates, and drops trailing U+10FFFF', () => {
    expect(prefixEnd('a/')).toBe('a0');
    expect(prefixEnd('a\ud7ff')).toBe('a\ue000');
    expect(prefixEnd('a\uffff')).toBe('a\u{10000}');
    expect(prefixEnd('a\u{10ffff}\u{10ffff}')).toBe('b');
    expect(prefixEnd('\u{10ffff}')).toBeUndefined();
    expect(prefixEnd('')).toBeUndefined();
  });

  it('resolveInterval intersects [start, end) with the prefix', () => {
    expect(resolveInterval({})).toEqual({ start: '', end: undefined });
    expect(resolveInterval({ prefix: 'a/' })).toEqual({ start: 'a/', end: 'a0' });
    expect(resolveInterval({ prefix: 'a/', start: 'a/m' })).toEqual({ start: 'a/m', end: 'a0' });
    expect(resolveInterval({ prefix: 'a/', start: 'A', end: 'a/q' })).toEqual({ start: 'a/', end: 'a/q' });
    expect(resolveInterval({ start: 'c', end: 'f' })).toEqual({ start: 'c', end: 'f' });
  });
});
