import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { paddingBytes } from '../../src/bridge/snapshot.ts';
import { EXIT } from '../../src/cli/command.ts';
import { main } from '../../src/cli/main.ts';
import { DumpWriter, dumpErrorLine } from '../../src/dump/index.ts';
import { concat } from '../support/bytes.ts';
import { fakeIo } from './fake-io.ts';

/**
 * durable-raft snapshot save / restore against a fake store (fetch stubbed):
 * save writes FILE only once the dump is whole; restore checks FILE before
 * it sends anything, then streams it to POST /v1/groups/{NEW}/restore. A
 * file etcdctl saved through the gRPC bridge restores as it is; an etcd
 * (bbolt) snapshot is refused with what to do instead.
 */

interface NodeFs {
  mkdtempSync(prefix: string): string;
  readFileSync(path: string): Uint8Array;
  writeFileSync(path: string, data: Uint8Array | string): void;
  existsSync(path: string): boolean;
  readdirSync(path: string): string[];
  rmSync(path: string, o: { recursive: boolean; force: boolean }): void;
}
const builtins = process as unknown as { getBuiltinModule(n: string): unknown };
const fs = builtins.getBuiltinModule('node:fs') as NodeFs;
const os = builtins.getBuiltinModule('node:os') as { tmpdir(): string };

/** A dump of `n` keys at revision 9, with one lease; `ending` replaces its trailer. */
function dumpOf(n: number, ending?: Uint8Array): Uint8Array {
  const w = new DumpWriter();
  const kvs = Array.from({ length: n }, (_, i) => ({
    key: `k/${i}`,
    value: `v${i}`,
    create_revision: 2,
    mod_revision: 2,
    version: 1,
    ...(i === 0 ? { lease: '5' } : {}),
  }));
  return concat([
    w.header({ group: 'default', revision: 9, taken_at: '2026-01-01T00:00:00.000Z' }),
    w.page([{ id: '5', ttl: 60, remaining: 40 }], kvs),
    ending ?? w.end(),
  ]);
}

/** A body streamed in small chunks, as a store sends a dump. */
function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.byteLength) return c.close();
      c.enqueue(bytes.slice(at, at + 17));
      at += 17;
    },
  });
}

interface Seen {
  readonly method: string;
  readonly url: URL;
  readonly body: Uint8Array | undefined;
}

let dir = '';
let seen: Seen[] = [];
let dump: Uint8Array = new Uint8Array(0);

beforeEach(() => {
  dir = fs.mkdtempSync(`${os.tmpdir()}/durable-raft-snapshot-`);
  seen = [];
  dump = dumpOf(3);
  vi.stubGlobal('fetch', async (input: string, init: RequestInit = {}) => {
    const url = new URL(input);
    const body = init.body ? new Uint8Array(await new Response(init.body).arrayBuffer()) : undefined;
    seen.push({ method: init.method ?? 'GET', url, body });
    if (url.pathname.endsWith('/v1/snapshot'))
      return new Response(streamOf(dump), { headers: { 'content-type': 'application/x-ndjson', 'x-revision': '9' } });
    if (url.pathname.endsWith('/restore'))
      return Response.json(
        {
          name: 'new',
          size: 3,
          state: 'active',
          incarnation: 12,
          restored: {
            keys: 3,
            leases: 1,
            revision: 1,
            source: { group: 'default', revision: 9, taken_at: 't', keys: 3, sha256: 'x' },
            expired_leases: 0,
            expired_keys: 0,
          },
        },
        { status: 201 },
      );
    return Response.json({ error: { code: 'not_found', message: 'no route' } }, { status: 404 });
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  fs.rmSync(dir, { recursive: true, force: true });
});

const endpoint = ['--endpoint', 'http://store'];

describe('snapshot save', () => {
  it('writes the whole dump to FILE and says what it holds', async () => {
    const file = `${dir}/backup.ndjson`;
    const io = fakeIo();
    expect(await main(['snapshot', 'save', file, '--revision', '9', ...endpoint], io)).toBe(EXIT.ok);
    expect(fs.readFileSync(file)).toEqual(Buffer.from(dump));
    expect(io.out).toEqual([`Snapshot saved at ${file}: revision 9, 3 keys, 1 lease`]);
    expect(seen.map((s) => `${s.method} ${s.url.pathname}${s.url.search}`)).toEqual(['GET /v1/snapshot?revision=9']);
    expect(fs.readdirSync(dir)).toEqual(['backup.ndjson']);

    const group = fakeIo();
    expect(
      await main(['snapshot', 'save', `${dir}/g.ndjson`, '--group', 'acme', '-w', 'json', ...endpoint], group),
    ).toBe(EXIT.ok);
    expect(seen[1]?.url.pathname).toBe('/groups/acme/v1/snapshot');
    expect(JSON.parse(group.out[0] ?? '{}')).toMatchObject({ revision: 9, keys: 3, leases: 1 });
  });

  it('leaves FILE as it was when the dump ends with an error or breaks off', async () => {
    const file = `${dir}/backup.ndjson`;
    fs.writeFileSync(file, 'the previous backup\n');
    dump = dumpOf(3, dumpErrorLine('compacted', 'revision 9 has been compacted; the dump is incomplete'));
    const io = fakeIo();
    expect(await main(['snapshot', 'save', file, ...endpoint], io)).toBe(EXIT.refused);
    expect(io.err).toEqual(['Error: compacted: revision 9 has been compacted; the dump is incomplete']);

    dump = dumpOf(3).slice(0, -20);
    const cut = fakeIo();
    expect(await main(['snapshot', 'save', file, ...endpoint], cut)).toBe(EXIT.unavailable);
    expect(cut.err[0]).toMatch(/^Error: truncated: the dump broke off: truncated: line 6 is cut short/);
    expect(new TextDecoder().decode(fs.readFileSync(file))).toBe('the previous backup\n');
    expect(fs.readdirSync(dir)).toEqual(['backup.ndjson']);
  });
});

describe('snapshot restore', () => {
  it('streams FILE to the restore of the new group, on the store API whatever the group', async () => {
    const file = `${dir}/backup.ndjson`;
    fs.writeFileSync(file, dump);
    const io = fakeIo();
    expect(await main(['snapshot', 'restore', file, '--group', 'new', '--size', '5', ...endpoint], io)).toBe(EXIT.ok);
    expect(seen).toHaveLength(1);
    expect(`${seen[0]?.method} ${seen[0]?.url.pathname}${seen[0]?.url.search}`).toBe(
      'POST /v1/groups/new/restore?size=5',
    );
    expect(seen[0]?.body).toEqual(dump);
    expect(io.out[0]).toBe(`Restored group new from ${file}: 3 keys, 1 lease, at revision 1 (default at revision 9)`);
  });

  it('takes a file etcdctl saved through the bridge (trailer padded to 32 modulo 512) and sends it as it is', async () => {
    // As the bridge streams it (src/bridge/snapshot.ts): spaces before the trailer's newline.
    const before = dump.byteLength - 1;
    const saved = concat([
      dump.subarray(0, before),
      new Uint8Array(paddingBytes(before)).fill(0x20),
      dump.subarray(before),
    ]);
    expect(saved.byteLength % 512).toBe(32);
    const file = `${dir}/etcdctl.db`;
    fs.writeFileSync(file, saved);
    const io = fakeIo();
    expect(await main(['snapshot', 'restore', file, '--group', 'new', ...endpoint], io)).toBe(EXIT.ok);
    expect(seen.map((s) => `${s.method} ${s.url.pathname}`)).toEqual(['POST /v1/groups/new/restore']);
    expect(seen[0]?.body).toEqual(saved);
    expect(io.out[0]).toBe(`Restored group new from ${file}: 3 keys, 1 lease, at revision 1 (default at revision 9)`);
  });

  it('refuses an etcd snapshot (bbolt) with what to do instead, before sending anything', async () => {
    // bbolt's first page: a 16-byte page header, then the meta page's magic, little-endian; etcd appends a SHA-256.
    const bolt = new Uint8Array(20_512);
    bolt.set([0x04, 0x00], 8);
    bolt.set([0xed, 0xda, 0x0c, 0xed, 0x02], 16);
    const file = `${dir}/etcd.db`;
    fs.writeFileSync(file, bolt);
    const io = fakeIo();
    expect(await main(['snapshot', 'restore', file, '--group', 'new', ...endpoint], io)).toBe(EXIT.refused);
    expect(io.err).toEqual([
      `Error: bad_dump: ${file}: an etcd snapshot (a bbolt file), not a durable-raft dump: etcd restores it ` +
        "(etcdutl snapshot restore; etcdctl before 3.5); to bring etcd's keys here, run etcdctl make-mirror " +
        "through 'durable-raft grpc-proxy'",
    ]);
    expect(seen).toEqual([]);
  });

  it('refuses a dump cut short or corrupted before sending anything (exit 3), and a missing --group or file (exit 2)', async () => {
    const file = `${dir}/backup.ndjson`;
    for (const [bytes, why] of [
      [dump.slice(0, -1), /truncated: line 6 is cut short/],
      [dump.slice(0, dump.lastIndexOf(0x0a, dump.byteLength - 2) + 1), /truncated: no trailer after line 5/],
      [new TextEncoder().encode(new TextDecoder().decode(dump).replace('"v1"', '"v2"')), /checksum/],
    ] as const) {
      fs.writeFileSync(file, bytes);
      const io = fakeIo();
      expect(await main(['snapshot', 'restore', file, '--group', 'new', ...endpoint], io)).toBe(EXIT.refused);
      expect(io.err[0]).toMatch(new RegExp(`^Error: bad_dump: ${file}: `));
      expect(io.err[0]).toMatch(why);
    }
    expect(seen).toEqual([]);
    const noGroup = fakeIo();
    expect(await main(['snapshot', 'restore', file, ...endpoint], noGroup)).toBe(EXIT.usage);
    const noFile = fakeIo();
    expect(await main(['snapshot', 'restore', `${dir}/missing`, '--group', 'new', ...endpoint], noFile)).toBe(
      EXIT.usage,
    );
    expect(noFile.err[0]).toMatch(/^Error: cannot read /);
    expect(await main(['snapshot', 'restore', file, '--group', 'new', '--size', '4', ...endpoint], fakeIo())).toBe(
      EXIT.usage,
    );
    expect(seen).toEqual([]);
  });
});
