import { describe, expect, it } from 'vitest';
import type { WatchSpec } from '../../src/node/watch-streams.ts';
import { json, newApi, type TestApi } from './api-helpers.ts';
import { allApplied, crash, leader, member, status, stub } from './cluster-helpers.ts';
import { SseReader } from './sse.ts';

/**
 * GET /v1/watch as Server-Sent Events: every change of the watched keys, in
 * order, from any revision kept, on any replica, resumable by Last-Event-ID.
 */

async function put(api: TestApi, key: string, value: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

async function del(api: TestApi, key: string): Promise<number> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'DELETE' });
  expect(res.status).toBe(200);
  return (await json<{ revision: number }>(res)).revision;
}

async function watch(api: TestApi, query: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const res = await api.fetch(`/v1/watch?${query}`, { headers: { accept: 'text/event-stream', ...headers } });
  expect(res.status, await (res.status === 200 ? Promise.resolve('') : res.clone().text())).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  return new SseReader(res.body as ReadableStream<Uint8Array>);
}

/** The watchers every node serves, summed (GET /metrics). */
async function watchersServed(api: TestApi): Promise<number> {
  const res = await api.fetch('/metrics');
  expect(res.status).toBe(200);
  let n = 0;
  for (const line of (await res.text()).split('\n'))
    if (line.startsWith('durable_raft_mvcc_watchers{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

/** Waits (up to `ms`) until `check` holds. */
async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A watch of every key under `prefix` (a one-byte prefix: the interval ends at its next character) from `from`. */
function prefixSpec(prefix: string, from: number | undefined): WatchSpec {
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  return {
    start: prefix,
    end,
    startRevision: from,
    prevKv: false,
    noPut: false,
    noDelete: false,
    progressNotify: false,
  };
}

const brief = (c: { revision: number; events: Record<string, unknown>[] }) =>
  `${c.revision}: ${c.events
    .map((e) => {
      const kv = e.kv as { key: string; value?: string };
      const prev = e.prev_kv as { value?: string } | undefined;
      return `${e.type} ${kv.key}${kv.value !== undefined ? `=${kv.value}` : ''}${prev ? ` (was ${prev.value})` : ''}`;
    })
    .join(', ')}`;

describe('api: watch (Server-Sent Events)', () => {
  it('streams every change of a prefix, in order, a revision per message, with prev_kv', async () => {
    const api = await newApi();
    const w = await watch(api, 'prefix=w/&prev_kv=true');
    await put(api, 'w/a', '1');
    await put(api, 'other', 'x');
    await put(api, 'w/a', '2');
    const res = await api.fetch('/v1/txn', {
      method: 'POST',
      body: JSON.stringify({ success: [{ put: { key: 'w/b', value: '3' } }, { delete: { key: 'w/a' } }] }),
    });
    expect(res.status).toBe(200);
    expect((await w.changes(3)).map(brief)).toEqual([
      '1: put w/a=1',
      '3: put w/a=2 (was 1)',
      '4: put w/b=3, delete w/a (was 2)',
    ]);
    await w.cancel();
  });

  it('a HEAD of a watch answers its headers and closes the watch it opened at once, as a cancelled GET does', async () => {
    const api = await newApi();
    await put(api, 'h/a', '1');
    for (let i = 0; i < 3; i++) {
      const res = await api.fetch('/v1/watch?prefix=h/', { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(res.body).toBeNull();
    }
    // Left to the runtime, an abandoned stream reached its node 2.4 s later (a watcher each until then).
    await until(async () => (await watchersServed(api)) === 0, 1000);
    const w = await watch(api, 'prefix=h/');
    await until(async () => (await watchersServed(api)) === 1, 1000);
    await w.cancel();
    await until(async () => (await watchersServed(api)) === 0, 1000);
  });

  it('starts at a past revision, and Last-Event-ID resumes right after the last one seen', async () => {
    const api = await newApi();
    for (let i = 1; i <= 4; i++) await put(api, 'k', `v${i}`);
    const w = await watch(api, 'key=k&start_revision=2');
    expect((await w.changes(3)).map(brief)).toEqual(['2: put k=v2', '3: put k=v3', '4: put k=v4']);
    await w.cancel();
    await put(api, 'k', 'v5');
    const resumed = await watch(api, 'key=k&start_revision=1', { 'last-event-id': '3' });
    expect((await resumed.changes(2)).map(brief)).toEqual(['4: put k=v4', '5: put k=v5']);
    await resumed.cancel();
  });

  it('filters exactly: noput, nodelete; key with range_end', async () => {
    const api = await newApi();
    const deletes = await watch(api, 'key=a&range_end=c&filter=noput');
    const puts = await watch(api, 'key=a&range_end=c&filter=nodelete');
    await put(api, 'a', '1');
    await put(api, 'c', 'outside');
    await put(api, 'b', '2');
    await del(api, 'a');
    expect((await deletes.changes(1)).map(brief)).toEqual(['4: delete a']);
    expect((await puts.changes(2)).map(brief)).toEqual(['1: put a=1', '3: put b=2']);
    await deletes.cancel();
    await puts.cancel();
  });

  it('a compacted start is 410 before any stream; bad input is 400', async () => {
    const api = await newApi();
    for (let i = 0; i < 4; i++) await put(api, 'k', `v${i}`);
    const c = await api.fetch('/v1/compact', { method: 'POST', body: '{"revision":3}' });
    expect(c.status).toBe(200);
    // Watches go to any replica: wait until every one has applied the compaction.
    await allApplied(api.names, (await status(await leader(api.names))).applied);
    let res = await api.fetch('/v1/watch?key=k&start_revision=2');
    expect(res.status).toBe(410);
    expect(await json(res)).toMatchObject({ error: { code: 'compacted', compact_revision: 3 } });
    for (const q of [
      '',
      'key=a&prefix=b',
      'prefix=a&range_end=b',
      'key=a&filter=toString',
      'key=a&start_revision=-1',
    ]) {
      res = await api.fetch(`/v1/watch?${q}`);
      expect(res.status, q).toBe(400);
      await res.body?.cancel();
    }
    res = await api.fetch('/v1/watch?key=a', { headers: { 'last-event-id': 'x' } });
    expect(res.status).toBe(400);
    await res.body?.cancel();
  });

  it('a watcher on a follower gets what the leader commits, once the follower applies it', async () => {
    const api = await newApi();
    const lead = await leader(api.names);
    const follower = api.names.find((n) => n !== lead) as string;
    const out = await stub(follower).watchEvents(prefixSpec('f/', undefined));
    if (out.status !== 'ok') throw new Error('watch refused');
    const w = new SseReader(out.stream);
    await put(api, 'f/1', 'a');
    await put(api, 'f/2', 'b');
    expect((await w.changes(2)).map(brief)).toEqual(['1: put f/1=a', '2: put f/2=b']);
    await w.cancel();
  });

  it('a watcher whose node crashes resumes from its last revision on another node, and loses nothing', async () => {
    const api = await newApi();
    const names = api.names;
    const target = names[0] as string;
    const open = async (name: string, from: number | undefined) => {
      const out = await stub(name).watchEvents(prefixSpec('c/', from));
      if (out.status !== 'ok') throw new Error('watch refused');
      return new SseReader(out.stream);
    };
    const w = await open(target, undefined);
    await put(api, 'c/1', 'a');
    const first = await w.changes(1);
    await crash(target);
    await put(api, 'c/2', 'b');
    await put(api, 'c/3', 'c');
    // The stream ends with the crash (or delivers nothing more); resume elsewhere after the last revision seen.
    const last = (first[first.length - 1] as { revision: number }).revision;
    const resumed = await open(names[1] as string, last + 1);
    expect([...first, ...(await resumed.changes(2))].map(brief)).toEqual([
      '1: put c/1=a',
      '2: put c/2=b',
      '3: put c/3=c',
    ]);
    await resumed.cancel();
  });

  it('a watcher keeps its stream across a leader change', async () => {
    const api = await newApi();
    const w = await watch(api, 'prefix=t/');
    await put(api, 't/1', 'a');
    const lead = await leader(api.names);
    const to = api.names.find((n) => n !== lead) as string;
    const res = await api.fetch('/v1/cluster/leader', { method: 'POST', body: JSON.stringify({ to: member(to) }) });
    expect(res.status).toBe(200);
    await put(api, 't/2', 'b');
    expect((await w.changes(2)).map(brief)).toEqual(['1: put t/1=a', '2: put t/2=b']);
    await w.cancel();
  });

  it('a member removed from the cluster cancels its watchers and serves no new watch, so they resume elsewhere (jepsen)', async () => {
    const api = await newApi();
    const lead = await leader(api.names);
    const follower = api.names.find((n) => n !== lead) as string;
    const out = await stub(follower).watchEvents(prefixSpec('r/', undefined));
    if (out.status !== 'ok') throw new Error('watch refused');
    const w = new SseReader(out.stream);
    await put(api, 'r/1', 'a');
    expect((await w.changes(1)).map(brief)).toEqual(['1: put r/1=a']);
    const removed = await api.fetch('/v1/cluster/members', {
      method: 'POST',
      body: JSON.stringify({ action: 'remove', node: member(follower) }),
    });
    expect(removed.status).toBe(200);
    // Before, the stream stayed open and silent for ever: the removed member hears of no later revision.
    let m = await w.next(5000);
    while (m && m.event !== 'canceled') m = await w.next(5000);
    expect(m?.event).toBe('canceled');
    const refused = await stub(follower)
      .watchEvents(prefixSpec('r/', 2))
      .then(
        () => 'served',
        (e: Error) => e.message,
      );
    expect(refused).toMatch(/no longer a member/);
    // Through the API the watch resumes on a member, and loses nothing.
    await put(api, 'r/2', 'b');
    const again = await watch(api, 'prefix=r/&start_revision=2');
    expect((await again.changes(1)).map(brief)).toEqual(['2: put r/2=b']);
    await again.cancel();
  });
});
