import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { json, newApi, type TestApi } from './api-helpers.ts';
import { fuzzKnob, INHERITED, weird, withField } from './fuzz-helpers.ts';
import { openSocket } from './ws-client.ts';

/**
 * A property-based probe of the watch sockets' messages, /v1/watch's and
 * etcd's /v3/watch, which the node holding the socket reads (a message that
 * threw there would break the socket, or the node): messages mutated field by
 * field from valid ones, JSON of other shapes, names that objects inherit,
 * binary frames and frames over the size limit.
 *
 * Each probe opens a socket and sends one to four such messages, each once
 * the one before was answered, then a progress request. Each message gets
 * an answer, an error at least (but for what etcd ignores, and /v3/watch
 * with it: a request that sets none of create, cancel and progress, and a
 * cancel of a watch the stream does not have); every frame is JSON; the
 * progress answer comes; the socket stays open. A last create and a put
 * show the node still watches. Without its catch of a message's error the
 * node answers nothing to a bad message, and both probes fail.
 */

const RUNS = Math.max(1, Math.floor(fuzzKnob('FUZZ_RUNS', 1000) / 10));
const SEED = fuzzKnob('FUZZ_SEED', 20_261_206);

const b64 = (s: string) => btoa(s);

/** Per protocol: its route, valid messages to mutate, and its progress request and answer. */
interface Protocol {
  readonly route: string;
  readonly valid: Record<string, unknown>[];
  /** The request names its messages may hold, one each. */
  readonly names: string[];
  readonly fields: string[];
  readonly progress: unknown;
  isProgress(m: Record<string, unknown>): boolean;
  /** Whether the node may leave `m` unanswered (etcd ignores a request with none of its requests set). */
  mayIgnore(m: string | Uint8Array): boolean;
}

const V1: Protocol = {
  route: '/v1/watch',
  valid: [
    { create: { key: 'w/a' } },
    { create: { prefix: 'w/', start_revision: 1, prev_kv: true } },
    { create: { key: 'w/a', range_end: 'w/z', filter: 'noput', watch_id: 7 } },
    { cancel: { watch_id: 0 } },
    { progress: {} },
  ],
  names: ['create', 'cancel', 'progress'],
  fields: ['key', 'prefix', 'range_end', 'filter', 'start_revision', 'watch_id', 'prev_kv', 'progress_notify'],
  progress: { progress: {} },
  isProgress: (m) => Object.hasOwn(m, 'progress'),
  mayIgnore: () => false,
};

const V3: Protocol = {
  route: '/v3/watch',
  valid: [
    { create_request: { key: b64('w/a') } },
    { create_request: { key: b64('w/'), range_end: b64('w0'), start_revision: '1', prev_kv: true } },
    { create_request: { key: b64('w/a'), filters: ['NOPUT'], watch_id: '7', fragment: true } },
    { cancel_request: { watch_id: '0' } },
    { progress_request: {} },
  ],
  names: ['create_request', 'cancel_request', 'progress_request'],
  fields: ['key', 'range_end', 'start_revision', 'filters', 'watch_id', 'prev_kv', 'progress_notify', 'fragment'],
  progress: { progress_request: {} },
  isProgress: (m) => (m.result as { watch_id?: unknown } | undefined)?.watch_id === '-1',
  mayIgnore: (m) => {
    try {
      const o: unknown = JSON.parse(
        typeof m === 'string' ? m : new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(m),
      );
      if (o === null) return true; // the empty request
      if (typeof o !== 'object' || Array.isArray(o)) return false;
      const r = o as Record<string, unknown>;
      const set = V3.names.filter((n) => Object.hasOwn(r, n) && r[n] !== null);
      // etcd also answers nothing to a cancel of a watch the stream does not have.
      return set.length === 0 || (set.length === 1 && set[0] === 'cancel_request');
    } catch {
      return false;
    }
  },
};

/** One message of `p`: mutated at the top level or inside its request, or something else altogether. */
function message(p: Protocol): fc.Arbitrary<string | Uint8Array> {
  const inner = fc
    .tuple(
      fc.constantFrom(...p.valid),
      fc.array(fc.tuple(fc.constantFrom(...p.fields, ...INHERITED), weird), { minLength: 1, maxLength: 3 }),
    )
    .map(([m, edits]) => {
      const [name, body] = Object.entries(m)[0] as [string, Record<string, unknown>];
      return JSON.stringify({ [name]: edits.reduce((o, [k, v]) => withField(o, k, v), body) });
    });
  const outer = fc
    .tuple(fc.constantFrom(...p.valid), fc.constantFrom(...V1.names, ...V3.names, ...INHERITED), weird)
    .map(([m, k, v]) => JSON.stringify(withField(m, k, v)));
  return fc.oneof(
    { weight: 4, arbitrary: inner },
    { weight: 2, arbitrary: outer },
    { weight: 1, arbitrary: fc.constantFrom(...p.valid).map((m) => JSON.stringify(m)) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        '{',
        'null',
        '{"__proto__":{"key":"w/a"}}',
        '{"constructor":{"prototype":{}}}',
        'x'.repeat(70_000),
        `{"create":{"key":"${'k'.repeat(70_000)}"}}`,
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
  );
}

/** A socket's client side: every frame received (parsed; a frame that is not JSON fails the probe), and whether it closed. */
class Probe {
  readonly got: Record<string, unknown>[] = [];
  readonly notJson: string[] = [];
  closed = false;
  private wake: (() => void) | undefined;
  readonly ws: WebSocket;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      try {
        this.got.push(JSON.parse(e.data as string) as Record<string, unknown>);
      } catch {
        this.notJson.push(String(e.data).slice(0, 200));
      }
      this.wake?.();
    });
    ws.addEventListener('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** Waits until a received frame satisfies `done` (false if none did within `ms`, or the socket closed). */
  async until(done: (m: Record<string, unknown>) => boolean, ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.got.some(done)) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return false;
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, Math.min(left, 100));
      });
    }
    return true;
  }
}

/**
 * A put, sent again while the store answers 503 (nothing written, no leader in time).
 * A long run's sockets leave this workerd busy for seconds once its test goes idle
 * (1.9 s after 500 sockets, 7.7 s after 2,000, in the test's own isolate, with every
 * socket's close already handled by its node): the next test's new cluster then
 * elects its first leader only after it.
 */
async function put(api: TestApi, key: string, value: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
    if (res.status === 503 && Date.now() < deadline) {
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    expect(res.status, await res.clone().text()).toBe(200);
    await json(res);
    return;
  }
}

describe('watch sockets: property-based probe of their messages', () => {
  for (const p of [V1, V3]) {
    it(`${p.route}: ${RUNS} sockets of random and mutated messages: each answered in JSON, none closed`, async () => {
      const api = await newApi();
      await put(api, 'w/a', 'seed');
      const frames = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fc.array(message(p), { minLength: 1, maxLength: 4 }), async (msgs) => {
          const probe = new Probe(await openSocket(api, p.route));
          const what = msgs
            .map((m) => (typeof m === 'string' ? m.slice(0, 120) : `<${m.byteLength} bytes>`))
            .join(' | ');
          // One at a time: each is answered (an error at least) before the next goes.
          for (const [i, m] of msgs.entries()) {
            const before = probe.got.length;
            probe.ws.send(m);
            if (p.mayIgnore(m)) continue;
            const answered = await probe.until(() => probe.got.length > before, 2000);
            const got = JSON.stringify(probe.got).slice(0, 400);
            expect(answered, `${what}: message ${i} got no answer; got ${got}`).toBe(true);
          }
          probe.ws.send(JSON.stringify(p.progress));
          const progressed = await probe.until((m) => p.isProgress(m));
          expect(probe.notJson, what).toEqual([]);
          expect(probe.closed, `${what}: the socket closed`).toBe(false);
          expect(progressed, `${what}: no progress answer; got ${JSON.stringify(probe.got).slice(0, 400)}`).toBe(true);
          for (const m of probe.got) {
            const kind = Object.keys(m)[0] ?? '';
            frames.set(kind, (frames.get(kind) ?? 0) + 1);
          }
          probe.ws.close();
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
      // The node still watches: a new socket's create, then a put, and its event.
      const probe = new Probe(await openSocket(api, p.route));
      probe.ws.send(JSON.stringify(p.valid[0]));
      expect(await probe.until((m) => JSON.stringify(m).includes('"created":true'))).toBe(true);
      await put(api, 'w/a', 'after');
      expect(await probe.until((m) => JSON.stringify(m).includes(p === V1 ? '"after"' : `"${b64('after')}"`))).toBe(
        true,
      );
      probe.ws.close();
      console.log(
        `${p.route} socket fuzz: ${RUNS} sockets (seed ${SEED}), frames ${JSON.stringify(Object.fromEntries(frames))}`,
      );
    }, 180_000);
  }
});
