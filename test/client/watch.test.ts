import { describe, expect, it } from 'vitest';
import { CompactedError, type WatchResponse } from '../../src/client/index.ts';
import { eventually, newClient, type Sent } from './helpers.ts';

/** The watch iterator: changes in order, resumed after a cut with no gap and no duplicate, compaction typed. */

/** A body that passes `source` through until it has passed one change, then breaks like a dropped connection. */
function cutAfterFirstChange(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const text = new TextDecoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      controller.enqueue(value);
      if (text.decode(value).includes('event: change')) {
        await reader.cancel();
        controller.error(new TypeError('network connection lost'));
      }
    },
    cancel: () => reader.cancel(),
  });
}

function sseBody(frames: string): Response {
  return new Response(frames, { headers: { 'content-type': 'text/event-stream', 'x-revision': '0' } });
}

const isWatch = (s: Sent) => s.path.startsWith('/v1/watch');

describe('client: watch', () => {
  it('receives every change; after a cut it resumes from the last revision + 1: no gap, no duplicate', async () => {
    const { client, api, sent, intercept } = await newClient();
    let watches = 0;
    intercept((s) => {
      if (!isWatch(s) || watches++ > 0) return undefined;
      return api
        .fetch(s.path, { headers: s.headers })
        .then((r) => new Response(cutAfterFirstChange(r.body as ReadableStream<Uint8Array>), r));
    });
    const got: WatchResponse[] = [];
    const stop = new AbortController();
    const done = (async () => {
      for await (const w of client.watch({ prefix: 'w/', prevKv: true, signal: stop.signal })) got.push(w);
    })();
    await eventually('the watch to open', () => watches === 1);
    const revisions: number[] = [];
    for (let i = 1; i <= 6; i++) {
      revisions.push((await client.put(`w/${i % 2}`, `v${i}`)).revision);
      if (i === 1) await eventually('the cut and the resume', () => watches === 2);
    }
    await client.put('other', 'not watched');
    await eventually('six changes', () => got.length >= 6);
    stop.abort();
    await done;
    expect(got.map((w) => w.revision)).toEqual(revisions);
    expect(got.map((w) => w.events[0]?.kv.text)).toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6']);
    expect(got[2]?.events[0]?.prevKv?.text).toBe('v1');
    const ws = sent.filter(isWatch);
    expect(ws).toHaveLength(2);
    expect(ws[0]?.headers.get('last-event-id')).toBeNull();
    expect(ws[1]?.headers.get('last-event-id')).toBe(String(revisions[0]));
  });

  it('from a start revision; break ends the stream; deletes arrive as delete events', async () => {
    const { client } = await newClient();
    const r1 = (await client.put('k', 'a')).revision;
    const r2 = (await client.delete('k')).revision;
    const got: WatchResponse[] = [];
    for await (const w of client.watch({ key: 'k', startRevision: r1 })) {
      got.push(w);
      if (got.length === 2) break;
    }
    expect(got.map((w) => [w.revision, w.events[0]?.type])).toEqual([
      [r1, 'put'],
      [r2, 'delete'],
    ]);
  });

  it('a start below the compaction point, or a cancel for compaction, is a CompactedError', async () => {
    const { client, intercept } = await newClient();
    await client.put('c', '1');
    const r2 = (await client.put('c', '2')).revision;
    await client.compact(r2);
    // Any replica serves a watch: one that has not applied the compaction yet still has revision 1.
    let e: unknown;
    await eventually('a replica that applied the compaction', async () => {
      const w = client.watch({ key: 'c', startRevision: 1 });
      e = await w.next().catch((x: unknown) => x);
      await w.return();
      return e instanceof CompactedError;
    });
    expect((e as CompactedError).compactRevision).toBe(r2);

    intercept(() => sseBody('event: canceled\ndata: {"reason":"compacted","compact_revision":9}\n\n'));
    const c = await client
      .watch({ key: 'c' })
      .next()
      .catch((x: unknown) => x);
    expect(c).toBeInstanceOf(CompactedError);
    expect((c as CompactedError).compactRevision).toBe(9);
  });

  it('a cancel for another reason (too slow) resumes after the last revision delivered', async () => {
    const { client, sent, intercept } = await newClient();
    let n = 0;
    intercept((s) => {
      if (!isWatch(s)) return undefined;
      n++;
      if (n === 1)
        return sseBody(
          'id: 5\nevent: change\ndata: {"revision":5,"events":[]}\n\nevent: canceled\ndata: {"reason":"too slow"}\n\n',
        );
      return sseBody(
        'id: 5\nevent: change\ndata: {"revision":5,"events":[]}\n\nid: 6\nevent: change\ndata: {"revision":6,"events":[]}\n\n',
      );
    });
    const got: number[] = [];
    for await (const w of client.watch({ prefix: 'x', startRevision: 3 })) {
      got.push(w.revision);
      if (got.length === 2) break;
    }
    // The replayed revision 5 is not delivered twice.
    expect(got).toEqual([5, 6]);
    const ws = sent.filter(isWatch);
    expect(ws[0]?.headers.get('last-event-id')).toBe('2');
    expect(ws[0]?.path).toContain('start_revision=3');
    expect(ws[1]?.headers.get('last-event-id')).toBe('5');
  });
});
