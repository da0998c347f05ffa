/**
 * Watchers for the fault runner. Each follows every change of the keys the
 * clients use (the interval ['!', '~') holds them and the recovery probe),
 * over Server-Sent Events or a WebSocket, through whatever replica the Worker
 * gives it. When a fault cuts its connection it resumes from its last
 * revision + 1 (SSE by Last-Event-ID, WebSocket by start_revision).
 * Afterwards `checkWatchers` compares what each saw with the history read
 * once more from the healed cluster (same events, same order, no gap, no
 * duplicate, prev_kv right), and that history with the acknowledged writes.
 * Plain Node 22 (global fetch and WebSocket), no TS-only syntax.
 */
import type { Observation } from './common.ts';
import type { JRecord } from './history.ts';
import { sleep } from './node-api.ts';

export interface SeenEvent {
  readonly type: string;
  readonly key: string;
  /** A put's value; null for a delete. */
  readonly value: string | null;
  /** The prev record's value; null if there was none. */
  readonly prev: string | null;
}

export interface SeenRevision {
  readonly revision: number;
  readonly events: readonly SeenEvent[];
}

export interface Watcher {
  readonly id: number;
  readonly kind: 'sse' | 'ws';
  readonly start: number;
  readonly seen: SeenRevision[];
  /** Revisions that arrived at or below the last one seen (duplicates or reordering). */
  readonly disorder: string[];
  connections: number;
  /** Stop once a revision at or past this has been seen (set after the run). */
  until: number;
  stopped: boolean;
}

const RANGE = 'key=!&range_end=~&prev_kv=true';

export function newWatcher(id: number): Watcher {
  return {
    id,
    kind: id % 2 === 0 ? 'sse' : 'ws',
    start: 1,
    seen: [],
    disorder: [],
    connections: 0,
    until: Number.POSITIVE_INFINITY,
    stopped: false,
  };
}

function last(w: Watcher): number {
  return w.seen[w.seen.length - 1]?.revision ?? w.start - 1;
}

function done(w: Watcher, deadline: number): boolean {
  return w.stopped || last(w) >= w.until || Date.now() > deadline;
}

function record(w: Watcher, data: { revision: number; events: Record<string, unknown>[] }): void {
  if (data.revision <= last(w)) w.disorder.push(`revision ${data.revision} after ${last(w)}`);
  w.seen.push({ revision: data.revision, events: data.events.map(seenEvent) });
}

function seenEvent(e: Record<string, unknown>): SeenEvent {
  const kv = e.kv as { key: string; value?: string };
  const prev = e.prev_kv as { value?: string } | undefined;
  return { type: String(e.type), key: kv.key, value: kv.value ?? null, prev: prev?.value ?? null };
}

/** Follows the range until `w.until` is reached or `deadlineMs` (epoch ms) passes, reconnecting after each cut. */
export async function runWatcher(w: Watcher, base: string, deadlineMs: () => number): Promise<void> {
  while (!done(w, deadlineMs())) {
    w.connections++;
    try {
      if (w.kind === 'sse') await followSse(w, base, deadlineMs);
      else await followSocket(w, base, deadlineMs);
    } catch {
      // A cut connection (crash, restart, partition of the Worker's route): resume below.
    }
    if (!done(w, deadlineMs())) await sleep(100 + Math.floor(Math.random() * 200));
  }
}

async function followSse(w: Watcher, base: string, deadlineMs: () => number): Promise<void> {
  const ctl = new AbortController();
  const res = await fetch(`${base}/v1/watch?${RANGE}&start_revision=${w.start}`, {
    headers: { accept: 'text/event-stream', 'last-event-id': String(last(w)) },
    signal: ctl.signal,
  });
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  // Check the deadline even while nothing arrives.
  const timer = setInterval(() => {
    if (done(w, deadlineMs())) ctl.abort();
  }, 200);
  try {
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) return;
      buf += decoder.decode(value, { stream: true });
      for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event === 'change' && data) record(w, JSON.parse(data));
        if (event === 'canceled') return;
      }
      if (done(w, deadlineMs())) return;
    }
  } finally {
    clearInterval(timer);
    ctl.abort();
  }
}

function followSocket(w: Watcher, base: string, deadlineMs: () => number): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/watch`);
    const timer = setInterval(() => {
      if (done(w, deadlineMs())) ws.close();
    }, 200);
    const end = () => {
      clearInterval(timer);
      resolve();
    };
    ws.addEventListener('open', () => {
      const [key, rangeEnd] = ['!', '~'];
      ws.send(JSON.stringify({ create: { key, range_end: rangeEnd, prev_kv: true, start_revision: last(w) + 1 } }));
    });
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data)) as Record<string, unknown>;
      if (Array.isArray(m.events)) record(w, m as { revision: number; events: Record<string, unknown>[] });
      if (m.canceled || m.error) ws.close();
      if (done(w, deadlineMs())) ws.close();
    });
    ws.addEventListener('close', end);
    ws.addEventListener('error', end);
  });
}

export interface WatchCheck {
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * Checks every watcher against `reference` (the whole history from revision
 * 1, read after healing), and the reference against itself (each prev is
 * the key's previous value) and against the acknowledged writes.
 */
export function checkWatchers(
  watchers: readonly Watcher[],
  reference: readonly SeenRevision[],
  until: number,
  records: readonly JRecord[],
): WatchCheck {
  const problems: string[] = [];
  const byRevision = new Map(reference.map((r) => [r.revision, r]));
  // The reference is consistent: revisions increase, each prev is the key's value before.
  const current = new Map<string, string>();
  let prevRev = 0;
  for (const r of reference) {
    if (r.revision <= prevRev) problems.push(`reference: revision ${r.revision} after ${prevRev}`);
    prevRev = r.revision;
    for (const e of r.events) {
      const before = current.get(e.key) ?? null;
      if (e.prev !== before) problems.push(`reference: ${r.revision} ${e.key} prev ${e.prev}, expected ${before}`);
      if (e.type === 'put' && e.value !== null) current.set(e.key, e.value);
      else current.delete(e.key);
    }
  }
  if ((reference[reference.length - 1]?.revision ?? 0) < until)
    problems.push(`reference: ends at ${prevRev}, the store is at ${until}`);
  // Every acknowledged write is in it, at the revision it was acknowledged with.
  for (const rec of records) {
    if (rec.ok !== true || rec.revision === undefined || rec.op === 'get') continue;
    const at = byRevision.get(rec.revision);
    const e = at?.events.find((x) => x.key === rec.key);
    const want = rec.op === 'delete' ? 'delete' : `put ${rec.value}`;
    const got = e ? (e.type === 'delete' ? 'delete' : `put ${e.value}`) : 'nothing';
    if (got !== want) problems.push(`acked ${rec.op} of ${rec.key} at ${rec.revision}: history has ${got}`);
  }
  // Each watcher saw exactly the reference, from its start to the end.
  for (const w of watchers) {
    const name = `watcher ${w.id} (${w.kind})`;
    for (const d of w.disorder) problems.push(`${name}: ${d}`);
    const want = reference.filter((r) => r.revision >= w.start);
    const seen = JSON.stringify(w.seen);
    if (seen !== JSON.stringify(want)) {
      const i = want.findIndex((r, j) => JSON.stringify(r) !== JSON.stringify(w.seen[j]));
      problems.push(
        `${name}: differs at revision ${want[i]?.revision ?? 'end'}: saw ${JSON.stringify(w.seen[i] ?? null)}, history ${JSON.stringify(want[i] ?? null)} (saw ${w.seen.length}, history ${want.length})`,
      );
    }
  }
  const events = watchers.reduce((n, w) => n + w.seen.reduce((m, r) => m + r.events.length, 0), 0);
  const connections = watchers.reduce((n, w) => n + w.connections, 0);
  return problems.length === 0
    ? {
        ok: true,
        detail: `${watchers.length} watchers, ${events} events to revision ${until}, ${connections} connections (${connections - watchers.length} resumes)`,
      }
    : { ok: false, detail: problems.slice(0, 10).join('\n      ') };
}

/** Every value the watchers and the reference saw (puts and prev_kvs), for the cross-group check. */
export function watchedValues(watchers: readonly Watcher[], reference: readonly SeenRevision[]): Observation[] {
  const out: Observation[] = [];
  const add = (who: string, seen: readonly SeenRevision[]) => {
    for (const r of seen)
      for (const e of r.events) {
        const at = `${who} revision ${r.revision} ${e.type} ${e.key}`;
        if (e.value) out.push({ value: e.value, what: at });
        if (e.prev) out.push({ value: e.prev, what: `${at} (prev_kv)` });
      }
  };
  for (const w of watchers) add(`watcher ${w.id} (${w.kind})`, w.seen);
  add('the history read again by a fresh watcher,', reference);
  return out;
}
