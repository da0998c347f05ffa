import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/raft/index.ts';
import { type Segment, segmentOf } from '../../src/storage/log-segment.ts';
import { SegmentCache } from '../../src/storage/segment-cache.ts';

/** A segment of entries lo..hi, each with `size` bytes of data (the cache counts 64 more per entry). */
function seg(lo: number, hi: number, size = 0, term = 1): Segment {
  const entries: Entry[] = [];
  for (let i = lo; i <= hi; i++) entries.push({ index: i, term, type: 'normal', data: new Uint8Array(size) });
  return segmentOf(entries);
}

const span = (s: Segment | undefined) => (s ? `${s.start}..${s.start + s.entries.length - 1}` : '-');

describe('SegmentCache', () => {
  it('finds the segment holding an index, and nothing in a hole or past the end', () => {
    const c = new SegmentCache(1 << 20, 10);
    c.add(seg(5, 8));
    c.add(seg(1, 2));
    c.add(seg(9, 9));
    expect([1, 2, 3, 5, 8, 9, 10].map((i) => span(c.find(i)))).toEqual([
      '1..2',
      '1..2',
      '-',
      '5..8',
      '5..8',
      '9..9',
      '-',
    ]);
  });

  it('a segment added over others replaces every one it overlaps', () => {
    const c = new SegmentCache(1 << 20, 10);
    c.add(seg(1, 4));
    c.add(seg(5, 8));
    c.add(seg(9, 12));
    c.add(seg(7, 9, 0, 2));
    expect([4, 5, 7, 9, 10].map((i) => span(c.find(i)))).toEqual(['1..4', '-', '7..9', '7..9', '-']);
    expect(c.find(9)?.entries[2]?.term).toBe(2);
  });

  it('a wide segment replaces every held one it spans, not only its neighbours', () => {
    const c = new SegmentCache(1 << 20, 10);
    for (const s of [seg(1, 4), seg(5, 8), seg(9, 12), seg(13, 14), seg(20, 21)]) c.add(s);
    c.add(seg(2, 13, 0, 3));
    expect([1, 2, 8, 13, 14, 20].map((i) => span(c.find(i)))).toEqual(['-', '2..13', '2..13', '2..13', '-', '20..21']);
  });

  it('dropFrom forgets segments reaching an index; dropThrough those ending at or before one', () => {
    const c = new SegmentCache(1 << 20, 10);
    for (const s of [seg(1, 4), seg(5, 8), seg(9, 12)]) c.add(s);
    c.dropFrom(6);
    expect([1, 5, 9].map((i) => span(c.find(i)))).toEqual(['1..4', '-', '-']);
    c.add(seg(5, 8));
    c.dropThrough(5);
    expect([1, 5].map((i) => span(c.find(i)))).toEqual(['-', '5..8']);
    c.clear();
    expect(span(c.find(5))).toBe('-');
  });

  it('stays within its byte and count bounds, dropping the least recently used first', () => {
    // Each segment below counts 2 * (1000 + 64) bytes: three fit in 7000.
    const c = new SegmentCache(7000, 10);
    c.add(seg(1, 2, 1000));
    c.add(seg(3, 4, 1000));
    c.add(seg(5, 6, 1000));
    c.find(1); // 1..2 is now more recent than 3..4
    c.add(seg(7, 8, 1000));
    expect([1, 3, 5, 7].map((i) => span(c.find(i)))).toEqual(['1..2', '-', '5..6', '7..8']);
    // Larger than the whole budget: not held at all.
    c.add(seg(9, 20, 1000));
    expect(span(c.find(9))).toBe('-');
    const few = new SegmentCache(1 << 20, 2);
    for (let i = 1; i <= 5; i++) few.add(seg(i, i));
    expect([1, 2, 3, 4, 5].map((i) => span(few.find(i)))).toEqual(['-', '-', '-', '4..4', '5..5']);
  });
});
