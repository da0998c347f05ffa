/**
 * Key order and key ranges.
 *
 * Keys are JavaScript strings, ordered as their UTF-8 bytes compare
 * (memcmp), which equals Unicode code point order. That is the order a SQLite
 * `BLOB` primary key holding the UTF-8 bytes sorts in, so the memory table and
 * the SQLite table list ranges alike. Plain JS comparison (`a < b`) is UTF-16
 * code unit order and differs for characters above U+FFFF against
 * U+E000..U+FFFF, so never sort keys with it: use `compareKeys`.
 *
 * Every key must be well-formed UTF-16 (no lone surrogate): a lone surrogate
 * has no UTF-8 encoding, and TextEncoder would map two different keys to the
 * same bytes.
 */

/** Orders `a` and `b` as their UTF-8 encodings compare byte by byte: negative, 0 or positive. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/**
 * Maps a UTF-16 code unit to a rank that orders like the code points it
 * belongs to: surrogates (parts of code points >= U+10000) move above
 * U+E000..U+FFFF. Only used at the first unit where two strings differ, whose
 * preceding units are equal, so a surrogate there always starts or ends a
 * pair of the same kind in both strings or stands against a BMP character.
 */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** True if `s` has no lone surrogate, so it has a UTF-8 encoding. */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const next = s.charCodeAt(i + 1);
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** The length of `s` in UTF-8 bytes (`s` well-formed). */
export function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

const MAX_CODE_POINT = 0x10ffff;

/**
 * The smallest key greater than every key that starts with `prefix`, or
 * undefined when no such key exists (the prefix is empty or made only of
 * U+10FFFF), meaning "to the end of the key space". The code point analogue
 * of etcd's `GetPrefixRangeEnd`: drop trailing U+10FFFF, then increment the
 * last code point (skipping the surrogate block, which holds no characters).
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (ch) => ch.codePointAt(0) ?? 0);
  while (cps.length > 0) {
    const last = cps.pop() ?? 0;
    if (last === MAX_CODE_POINT) continue;
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    cps.push(next);
    return String.fromCodePoint(...cps);
  }
  return undefined;
}

/** A half-open key interval [start, end); `end` undefined means unbounded. */
export interface KeyInterval {
  readonly start: string;
  readonly end: string | undefined;
}

/** True if `key` lies in `interval`. */
export function inInterval(key: string, interval: KeyInterval): boolean {
  if (compareKeys(key, interval.start) < 0) return false;
  return interval.end === undefined || compareKeys(key, interval.end) < 0;
}

/**
 * The interval a range query covers: from the larger of `start` and
 * `prefix` to the smaller of `end` and the prefix's end. With neither
 * `start` nor `prefix` it starts at the first key; with neither `end` nor
 * `prefix` it runs to the last.
 */
export function resolveInterval(q: {
  readonly start?: string | undefined;
  readonly end?: string | undefined;
  readonly prefix?: string | undefined;
}): KeyInterval {
  let start = q.start ?? '';
  let end = q.end;
  if (q.prefix !== undefined) {
    if (compareKeys(q.prefix, start) > 0) start = q.prefix;
    const pe = prefixEnd(q.prefix);
    if (pe !== undefined && (end === undefined || compareKeys(pe, end) < 0)) end = pe;
  }
  return { start, end };
}
