/**
 * The bridge's Maintenance.Snapshot against a stand-in store's GET
 * /v1/snapshot: the dump arrives whole in chunks of at most 64 KiB, its
 * size padded to what etcdctl 3.5+ checks (32 modulo 512) with spaces in
 * the trailer line, and is still a dump src/dump reads; the group's path and
 * the token; refusals before the first byte; every way the dump can fail
 * midway (the connection, the store's error line, no trailer, corruption)
 * ends the call with an error status, never OK; a client that stops reading
 * stops the read from the store; a cancel ends the store's request. (The
 * real etcdctl saves one through the live run, scripts/grpc-bridge.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type BridgeHandle, startBridge } from '../../src/bridge/index.ts';
import { paddingBytes, SNAPSHOT_CHUNK_BYTES } from '../../src/bridge/snapshot.ts';
import { DumpReader, DumpWriter, dumpErrorLine, readDump } from '../../src/dump/index.ts';
import { concat } from '../support/bytes.ts';
import { FakeStore } from './fake-store.ts';
import { type EtcdClients, etcdClients, type ServerStream, type Status, tokenMetadata } from './grpc-client.ts';

const utf8 = new TextEncoder();

const kv = (i: number, valueBytes: number) => ({
  key: `k/${String(i).padStart(6, '0')}`,
  value: 'v'.repeat(valueBytes),
  create_revision: i + 2,
  mod_revision: i + 2,
  version: 1,
  ...(i % 10 === 0 ? { lease: '5' } : {}),
});

/** A dump of `n` keys (values of `valueBytes`) at revision 9; `ending` replaces its trailer. */
function dumpOf(n: number, valueBytes = 10, ending?: Uint8Array): Uint8Array {
  const w = new DumpWriter();
  const kvs = Array.from({ length: n }, (_, i) => kv(i, valueBytes));
  return concat([
    w.header({ group: 'default', revision: 9, taken_at: '2026-01-01T00:00:00.000Z' }),
    w.page(n > 0 ? [{ id: '5', ttl: 60, remaining: 40 }] : [], kvs),
    ending ?? w.end(),
  ]);
}

/** `bytes` as a pull stream in pieces of `piece` bytes, then `end`: close (a whole answer) or error (the connection breaks). */
function streamOf(bytes: Uint8Array, piece: number, end: 'close' | 'error' = 'close'): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.byteLength) {
        if (end === 'close') c.close();
        else c.error(new TypeError('terminated', { cause: new Error('other side closed') }));
        return;
      }
      c.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

const ndjson = (body: ReadableStream<Uint8Array>) =>
  new Response(body, { headers: { 'content-type': 'application/x-ndjson', 'x-revision': '9' } });

interface Saved {
  readonly blobs: Uint8Array[];
  readonly remaining: number[];
  /** The call's status: undefined for OK. */
  readonly status: Status | undefined;
  readonly file: Uint8Array;
}

/** Reads a Snapshot call to its end, as etcdctl does. */
function save(stream: ServerStream): Promise<Saved> {
  const blobs: Uint8Array[] = [];
  const remaining: number[] = [];
  return new Promise((resolve) => {
    const done = (status: Status | undefined) => resolve({ blobs, remaining, status, file: concat(blobs) });
    stream.on('data', (m) => {
      blobs.push(new Uint8Array((m.blob as Uint8Array | undefined) ?? []));
      remaining.push(Number(m.remaining_bytes ?? 0));
    });
    stream.on('error', (e) => done(e));
    stream.on('end', () => done(undefined));
  });
}

/** The file without the spaces the bridge put before the trailer's newline. */
function unpadded(file: Uint8Array): Uint8Array {
  let end = file.byteLength - 1;
  while (end > 0 && file[end - 1] === 0x20) end--;
  return concat([file.subarray(0, end), utf8.encode('\n')]);
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('bridge: Snapshot padding', () => {
  it('pads the trailer line so the size is 32 modulo 512, whatever the size before', () => {
    for (let before = 0; before < 3000; before++) {
      const pad = paddingBytes(before);
      expect(pad).toBeGreaterThanOrEqual(0);
      expect(pad).toBeLessThan(512);
      expect((before + pad + 1) % 512).toBe(32);
    }
  });
});

describe('bridge: Maintenance.Snapshot', () => {
  let store: FakeStore;
  let bridge: BridgeHandle;
  let client: EtcdClients;

  const start = async (endpoint = 'http://store.test') => {
    store = new FakeStore();
    bridge = await startBridge({
      endpoint,
      listen: '127.0.0.1:0',
      token: 'bridge-token',
      fetch: store.fetch as typeof fetch,
      webSocket: store.openSocket,
    });
    client = etcdClients(bridge.port);
  };

  afterEach(async () => {
    client.close();
    await bridge.close();
  });

  it("streams the store's dump whole, in chunks, a size etcdctl 3.5+ takes, still a dump src/dump reads", async () => {
    await start();
    // Sizes from under one chunk to many, each ending at a different place modulo 512.
    for (const [n, valueBytes, piece] of [
      [0, 1, 17],
      [1, 3, 17],
      [3, 10, 1000],
      [40, 77, 1000],
      [300, 500, 4096],
      [1000, 131, 100_000],
    ] as const) {
      const dump = dumpOf(n, valueBytes);
      store.gets.set('/v1/snapshot', () => ndjson(streamOf(dump, piece)));
      const s = await save(client.maintenance.Snapshot({}));
      expect(s.status).toBeUndefined();
      expect(s.file.byteLength % 512).toBe(32);
      expect(s.file.byteLength - dump.byteLength).toBeLessThan(512);
      expect(unpadded(s.file)).toEqual(dump);
      const reader = new DumpReader();
      let keys = 0;
      for await (const line of readDump(streamOf(s.file, 4096), reader)) if (line.kind === 'kv') keys++;
      expect(keys).toBe(n);
      // Chunks of at most 64 KiB; remaining_bytes a lower bound of what follows, 0 only on the last.
      for (const b of s.blobs) expect(b.byteLength).toBeLessThanOrEqual(SNAPSHOT_CHUNK_BYTES);
      let after = s.file.byteLength;
      s.remaining.forEach((r, i) => {
        after -= (s.blobs[i] as Uint8Array).byteLength;
        expect(r).toBeLessThanOrEqual(after);
        if (i < s.remaining.length - 1) expect(r).toBeGreaterThan(0);
        else expect(r).toBe(0);
      });
    }
  });

  it("dumps the bridge's group, with the client's token or else the bridge's", async () => {
    await start('http://store.test/groups/acme');
    const dump = dumpOf(3);
    store.gets.set('/groups/acme/v1/snapshot', () => ndjson(streamOf(dump, 64)));
    expect((await save(client.maintenance.Snapshot({}))).status).toBeUndefined();
    expect((await save(client.maintenance.Snapshot({}, tokenMetadata('mine')))).status).toBeUndefined();
    expect(store.calls.map((c) => `${c.path} ${c.auth}`)).toEqual([
      '/groups/acme/v1/snapshot Bearer bridge-token',
      '/groups/acme/v1/snapshot Bearer mine',
    ]);
  });

  it("answers a refusal before the first byte with its status: the store's, or unavailable", async () => {
    await start();
    const refuse = (status: number, code: string, message: string) =>
      store.gets.set('/v1/snapshot', () => Response.json({ error: { code, message } }, { status }));
    refuse(403, 'forbidden', 'a dump holds every key: it needs a token that is not limited to key prefixes');
    const forbidden = await save(client.maintenance.Snapshot({}));
    expect(forbidden.status).toMatchObject({
      code: 7,
      details: 'durable-raft: a dump holds every key: it needs a token that is not limited to key prefixes',
    });
    expect(forbidden.blobs).toEqual([]);
    refuse(404, 'group_not_found', 'no group "acme"');
    expect((await save(client.maintenance.Snapshot({}))).status).toMatchObject({
      code: 5,
      details: 'durable-raft: no group "acme"',
    });
    refuse(404, 'not_found', 'no such route');
    expect((await save(client.maintenance.Snapshot({}))).status?.code).toBe(12);
    refuse(503, 'unavailable', 'no leader');
    expect((await save(client.maintenance.Snapshot({}))).status).toMatchObject({
      code: 14,
      details: 'durable-raft: no leader',
    });
    store.gets.set('/v1/snapshot', () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }) });
    });
    const down = await save(client.maintenance.Snapshot({}));
    expect(down.status?.code).toBe(14);
    expect(down.status?.details).toMatch(/^durable-raft bridge: store unreachable: fetch failed/);
  });

  it('ends a dump that fails midway with an error status, never OK, after sending what it had', async () => {
    await start();
    const big = dumpOf(2000, 200);
    const w = new DumpWriter();
    const cases: [string, () => Response, number, RegExp][] = [
      [
        'the connection breaks',
        () => ndjson(streamOf(big.subarray(0, 300_000), 8192, 'error')),
        14,
        /^durable-raft bridge: the dump broke off after \d+ bytes \(terminated: other side closed\); nothing was saved$/,
      ],
      [
        "the store's error line",
        () =>
          ndjson(
            streamOf(
              dumpOf(2000, 200, dumpErrorLine('unavailable', 'no leader in time; the dump is incomplete')),
              8192,
            ),
          ),
        14,
        /^durable-raft: the store could not finish the dump \(unavailable: no leader in time; the dump is incomplete\)$/,
      ],
      [
        'it ends without its trailer',
        () => ndjson(streamOf(big.subarray(0, big.lastIndexOf(0x0a, big.byteLength - 2) + 1), 8192)),
        14,
        /^durable-raft bridge: the dump broke off: truncated: no trailer after line 2002 \(the dump was cut short\)$/,
      ],
      [
        'it ends inside a line',
        () => ndjson(streamOf(big.subarray(0, 200_001), 8192)),
        14,
        /^durable-raft bridge: the dump broke off: truncated: line \d+ is cut short/,
      ],
      [
        'a corrupted byte',
        () => ndjson(streamOf(utf8.encode(new TextDecoder().decode(big).replace('k/001000', 'k/001001')), 8192)),
        15,
        /^durable-raft bridge: the store's dump is not sound: line 2003: trailer: the checksum does not match/,
      ],
      [
        'a line after the trailer',
        () => ndjson(streamOf(concat([dumpOf(1), utf8.encode('{"kv":{}}\n')]), 8192)),
        15,
        /more lines after the trailer/,
      ],
      [
        'not a dump at all',
        () => ndjson(streamOf(utf8.encode('<html>a proxy page</html>\n'), 8192)),
        15,
        /line 1: not JSON: not a durable-raft dump/,
      ],
      [
        'a header alone',
        () => ndjson(streamOf(w.header({ group: 'g', revision: 1, taken_at: 't' }), 8)),
        14,
        /no trailer/,
      ],
    ];
    for (const [name, answer, code, details] of cases) {
      store.gets.set('/v1/snapshot', answer);
      const s = await save(client.maintenance.Snapshot({}));
      expect(s.status?.code, name).toBe(code);
      expect(s.status?.details, name).toMatch(details);
    }
    // The first case had sent chunks before it failed: a client that kept them still got an error.
    store.gets.set('/v1/snapshot', cases[0]?.[1] as () => Response);
    const broken = await save(client.maintenance.Snapshot({}));
    expect(broken.blobs.length).toBeGreaterThan(0);
    expect(broken.status?.code).toBe(14);
    // And the bridge serves on.
    store.gets.set('/v1/snapshot', () => ndjson(streamOf(dumpOf(3), 100)));
    expect((await save(client.maintenance.Snapshot({}))).status).toBeUndefined();
  });

  it('reads the store only as fast as the client reads: a client that stops holds the dump back', async () => {
    await start();
    // 24 pages of about 1 MiB, made as the bridge pulls them.
    const PAGES = 24;
    const w = new DumpWriter();
    let page = -1;
    let pulled = 0;
    store.gets.set('/v1/snapshot', () =>
      ndjson(
        new ReadableStream<Uint8Array>({
          pull(c) {
            const bytes =
              page < 0
                ? w.header({ group: 'default', revision: 9, taken_at: 't' })
                : page < PAGES
                  ? w.page(
                      [],
                      Array.from({ length: 1000 }, (_, i) => kv(page * 1000 + i, 1000)),
                    )
                  : w.end();
            page++;
            pulled += bytes.byteLength;
            c.enqueue(bytes);
            if (page > PAGES) c.close();
          },
        }),
      ),
    );
    const stream = client.maintenance.Snapshot({});
    let got = 0;
    stream.on('data', (m) => {
      got += (m.blob as Uint8Array).byteLength;
    });
    const ended = new Promise<Status | undefined>((resolve) => {
      stream.on('error', (e) => resolve(e));
      stream.on('end', () => resolve(undefined));
    });
    await until(() => got > 0);
    stream.pause();
    // Until the buffers on the way are full and the bridge stops pulling (it never would without backpressure).
    let settled = -1;
    const deadline = Date.now() + 10_000;
    while (pulled !== settled && Date.now() < deadline) {
      settled = pulled;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(pulled).toBe(settled);
    expect(pulled).toBeLessThan(8 * 1024 * 1024);
    stream.resume();
    expect(await ended).toBeUndefined();
    expect(page).toBe(PAGES + 1);
    expect(got).toBeGreaterThan(24 * 1000 * 1000);
    expect(got % 512).toBe(32);
  });

  it("a client that cancels ends the store's request; the bridge serves on", async () => {
    await start();
    let signal: AbortSignal | undefined;
    let canceled = false;
    const big = dumpOf(3000, 200);
    store.gets.set('/v1/snapshot', (s) => {
      signal = s;
      // A store that sends 100 KiB and then waits for ever (its body does not heed the signal).
      let sent = false;
      return ndjson(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent) return new Promise<void>(() => {});
            sent = true;
            c.enqueue(big.slice(0, 100_000));
          },
          cancel() {
            canceled = true;
          },
        }),
      );
    });
    const stream = client.maintenance.Snapshot({});
    const s = save(stream);
    await until(() => signal !== undefined);
    await new Promise((r) => setTimeout(r, 50));
    stream.cancel();
    expect((await s).status?.code).toBe(1);
    await until(() => signal?.aborted === true && canceled);
    store.gets.set('/v1/snapshot', () => ndjson(streamOf(dumpOf(3), 100)));
    expect((await save(client.maintenance.Snapshot({}))).status).toBeUndefined();
  });
});
