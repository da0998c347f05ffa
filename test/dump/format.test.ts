import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DumpError,
  DumpReader,
  DumpWriter,
  dumpErrorLine,
  LineSplitter,
  readDump,
  Sha256,
} from '../../src/dump/index.ts';
import { concat } from '../support/bytes.ts';

/**
 * The dump format (src/dump): a streaming SHA-256 that agrees with Node's,
 * a line splitter that holds one line at most, and a reader that refuses a
 * dump cut short, corrupted, miscounted or of another format, naming the line.
 */

const utf8 = new TextEncoder();

/** node:crypto's hash (the project compiles against the Workers types, so it is typed here). */
const { createHash } = (
  process as unknown as {
    getBuiltinModule(n: 'node:crypto'): {
      createHash(a: 'sha256'): { update(d: Uint8Array): { digest(e: 'hex'): string } };
    };
  }
).getBuiltinModule('node:crypto');

/** A small sound dump: two leases, three keys (one value not UTF-8). */
function sampleDump(): Uint8Array {
  const w = new DumpWriter();
  return concat([
    w.header({ group: 'default', revision: 42, taken_at: '2026-01-01T00:00:00.000Z' }),
    w.page(
      [{ id: '7', ttl: 30, remaining: 12 }],
      [
        { key: 'a', value: 'one', create_revision: 2, mod_revision: 5, version: 3, lease: '7' },
        { key: 'b', value_base64: 'AP8=', create_revision: 3, mod_revision: 3, version: 1 },
      ],
    ),
    w.page(
      [{ id: '9', ttl: 0, remaining: 0 }],
      [{ key: 'c', value: '', create_revision: 4, mod_revision: 4, version: 1, lease: '9' }],
    ),
    w.end(),
  ]);
}

/** Feeds `bytes` to readDump in chunks of `size` bytes; the lines read, or the error. */
async function readAll(bytes: Uint8Array, size = 7): Promise<{ lines: string[]; reader: DumpReader }> {
  async function* chunks() {
    for (let i = 0; i < bytes.byteLength; i += size) yield bytes.slice(i, i + size);
  }
  const reader = new DumpReader();
  const lines: string[] = [];
  for await (const line of readDump(chunks(), reader)) lines.push(line.kind);
  return { lines, reader };
}

async function refusal(bytes: Uint8Array): Promise<string> {
  try {
    await readAll(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(DumpError);
    return (e as Error).message;
  }
  throw new Error('the dump was accepted');
}

function lines(bytes: Uint8Array): string[] {
  return new TextDecoder().decode(bytes).split('\n');
}

describe('Sha256', () => {
  it("agrees with node:crypto at every length around a block's edges, however the input is cut", () => {
    for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4099]) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      const want = createHash('sha256').update(data).digest('hex');
      expect(new Sha256().update(data).hex(), `${n} bytes whole`).toBe(want);
      const h = new Sha256();
      for (let i = 0; i < n; i += 13) h.update(data.subarray(i, i + 13));
      expect(h.hex(), `${n} bytes in pieces of 13`).toBe(want);
    }
    expect(new Sha256().update(utf8.encode('abc')).hex()).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('LineSplitter', () => {
  it('cuts lines across chunks, keeps what follows the last newline, and refuses a line too long', () => {
    const s = new LineSplitter(10);
    expect(s.push(utf8.encode('ab\ncd')).map((l) => new TextDecoder().decode(l))).toEqual(['ab']);
    expect(s.push(utf8.encode('e\n\nf')).map((l) => new TextDecoder().decode(l))).toEqual(['cde', '']);
    expect(new TextDecoder().decode(s.end())).toBe('f');
    expect(() => new LineSplitter(4).push(utf8.encode('abcdefg'))).toThrow(/longer than 4 bytes/);
    expect(() => new LineSplitter(4).push(utf8.encode('abcde\n'))).toThrow(/line 1 is longer/);
  });
});

describe('a dump', () => {
  it('reads back what the writer wrote: header, leases before their keys, keys, trailer', async () => {
    const { lines: kinds, reader } = await readAll(sampleDump());
    expect(kinds).toEqual(['header', 'lease', 'kv', 'kv', 'lease', 'kv', 'end']);
    expect(reader.header).toMatchObject({ format: 'durable-raft-dump', version: 1, group: 'default', revision: 42 });
    expect(reader.end).toMatchObject({ keys: 3, leases: 2 });
    // Any chunking reads the same.
    for (const size of [1, 64, 1 << 20]) expect((await readAll(sampleDump(), size)).lines).toHaveLength(7);
  });

  it('refuses a dump cut short: the trailer gone, a line cut, nothing at all', async () => {
    const whole = sampleDump();
    const text = new TextDecoder().decode(whole);
    const withoutTrailer = utf8.encode(text.slice(0, text.lastIndexOf('{"end"')));
    expect(await refusal(withoutTrailer)).toMatch(/^truncated: no trailer after line 6/);
    expect(await refusal(whole.slice(0, whole.byteLength - 10))).toMatch(/^truncated: line 7 is cut short/);
    expect(await refusal(whole.slice(0, 30))).toMatch(/^truncated: line 1 is cut short/);
    expect(await refusal(new Uint8Array(0))).toMatch(/^empty/);
  });

  it('refuses a corrupted dump: a flipped byte, a count changed, a broken line, a line after the trailer', async () => {
    const l = lines(sampleDump());
    const flipped = l.map((s) => s.replace('"one"', '"onf"')).join('\n');
    expect(await refusal(utf8.encode(flipped))).toMatch(/^line 7: trailer: the checksum does not match/);
    const recount = l.map((s) => s.replace('"keys":3', '"keys":4')).join('\n');
    expect(await refusal(utf8.encode(recount))).toMatch(/^line 7: trailer: it counts 4 keys, the dump holds 3/);
    const broken = l.map((s, i) => (i === 3 ? s.slice(0, 20) : s)).join('\n');
    expect(await refusal(utf8.encode(broken))).toMatch(/^line 4: not a line of JSON/);
    const after = `${l.join('\n')}{"kv":{"key":"z","value":""}}\n`;
    expect(await refusal(utf8.encode(after))).toMatch(/^line 8: more lines after the trailer/);
    const invalidUtf8 = concat([utf8.encode(`${l[0]}\n{"kv":{"key":"`), new Uint8Array([0xff]), utf8.encode('"}}\n')]);
    expect(await refusal(invalidUtf8)).toMatch(/^line 2: not a line of JSON/);
  });

  it('refuses another format or version, and names the store error a dump ends with', async () => {
    const l = lines(sampleDump());
    const other = l.map((s, i) => (i === 0 ? s.replace('durable-raft-dump', 'etcd-snapshot') : s)).join('\n');
    expect(await refusal(utf8.encode(other))).toMatch(/^line 1: not a durable-raft dump/);
    const v2 = l.map((s, i) => (i === 0 ? s.replace('"version":1', '"version":2') : s)).join('\n');
    expect(await refusal(utf8.encode(v2))).toMatch(/^line 1: dump version 2: this store reads version 1/);
    expect(await refusal(utf8.encode('PK\u0003\u0004 not json\n'))).toMatch(/^line 1: not JSON/);

    const w = new DumpWriter();
    const ended = concat([
      w.header({ group: 'g', revision: 3, taken_at: 'now' }),
      dumpErrorLine('compacted', 'revision 3 has been compacted'),
    ]);
    const e = await readAll(ended).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DumpError);
    expect((e as DumpError).storeError).toEqual({ code: 'compacted', message: 'revision 3 has been compacted' });
    expect((e as DumpError).message).toMatch(/ends with the store's error \(compacted: /);
  });
});

/** Everything a reader takes from a dump: each line's kind and content, in order. */
async function contentOf(bytes: Uint8Array, size: number): Promise<unknown[]> {
  async function* chunks() {
    for (let i = 0; i < bytes.byteLength; i += size) yield bytes.slice(i, i + size);
  }
  const out: unknown[] = [];
  for await (const line of readDump(chunks(), new DumpReader())) out.push(line);
  return out;
}

/** One change to a dump's bytes: a byte flipped, dropped or added, the end cut off, a line doubled or two swapped. */
const damage = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('add' as const),
    at: fc.nat(),
    byte: fc.constantFrom(0x20, 0x0a, 0x22, 0x7b, 0x30, 0xff),
  }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('double' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
);
type Damage = typeof damage extends fc.Arbitrary<infer T> ? T : never;

function damaged(bytes: Uint8Array, d: Damage): Uint8Array {
  const at = d.at % bytes.byteLength;
  const b = [...bytes];
  const ls = new TextDecoder().decode(bytes).split('\n');
  switch (d.kind) {
    case 'flip':
      b[at] = (b[at] as number) ^ (1 << d.bit);
      return Uint8Array.from(b);
    case 'drop':
      b.splice(at, 1);
      return Uint8Array.from(b);
    case 'add':
      b.splice(at, 0, d.byte);
      return Uint8Array.from(b);
    case 'cut':
      return bytes.slice(0, at);
    case 'double': {
      const i = d.at % (ls.length - 1);
      ls.splice(i, 0, ls[i] as string);
      return utf8.encode(ls.join('\n'));
    }
    case 'swap': {
      const [i, j] = [d.at % (ls.length - 1), d.with % (ls.length - 1)];
      [ls[i], ls[j]] = [ls[j] as string, ls[i] as string];
      return utf8.encode(ls.join('\n'));
    }
  }
}

describe('a damaged dump (property)', () => {
  it('is refused with a DumpError, or reads exactly as the sound one did: nothing else gets through', async () => {
    const sound = sampleDump();
    const want = await contentOf(sound, 1 << 20);
    const seen = { refused: 0, same: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(damage, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 64 }),
        async (ds, size) => {
          const bytes = ds.reduce(damaged, sound);
          let got: unknown[];
          try {
            got = await contentOf(bytes, size);
          } catch (e) {
            expect(e, `${JSON.stringify(ds)}: ${String(e)}`).toBeInstanceOf(DumpError);
            seen.refused++;
            return;
          }
          // Taken: only a change that leaves every line's meaning as it was (a space in the trailer, say).
          expect(got, JSON.stringify(ds)).toEqual(want);
          seen.same++;
        },
      ),
      { numRuns: 2000, seed: 20_261_207 },
    );
    expect(seen.refused).toBeGreaterThan(1000);
  });
});
