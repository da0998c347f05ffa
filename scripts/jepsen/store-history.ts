/**
 * The store's own history of a prefix, read after a run (faults healed) with
 * a watch from revision 1 over Server-Sent Events. The jepsen config keeps the
 * whole history (HISTORY_KEEP_REVISIONS 0), so this replays every change.
 * To know where the history ends, it first writes a sentinel key inside the
 * prefix and reads until the sentinel's revision; a cut stream resumes from
 * the last revision seen + 1 (Last-Event-ID).
 */
import { http, nowS, type Observation } from './common.ts';
import { sleep } from './node-api.ts';

export interface HistKv {
  readonly key: string;
  readonly create_revision?: number;
  readonly mod_revision: number;
  readonly version?: number;
  readonly lease?: string;
  readonly value?: string;
}

export interface HistEvent {
  readonly revision: number;
  readonly type: 'put' | 'delete';
  readonly kv: HistKv;
  readonly prev_kv?: HistKv;
}

export type StoreHistory =
  | { ok: true; events: HistEvent[]; revisions: number; until: number; connections: number }
  | { ok: false; error: string };

/**
 * Reads every change of `prefix` from revision 1, in order, up to (and with)
 * the put of `sentinel` (a key inside the prefix, written `<tag>history-end`)
 * made now; gives up at `deadline` (nowS()).
 */
export async function readStoreHistory(
  base: string,
  prefix: string,
  sentinel: string,
  deadline: number,
  tag = '',
): Promise<StoreHistory> {
  if (!sentinel.startsWith(prefix)) throw new Error(`sentinel ${sentinel} is not under ${prefix}`);
  let until: number | undefined;
  let last = '';
  while (until === undefined && nowS() < deadline) {
    const r = await http(base, 'PUT', `/v1/kv/${encodeURIComponent(sentinel)}`, `${tag}history-end`, 5000);
    if (!('error' in r) && r.status === 200) until = (JSON.parse(r.text) as { revision: number }).revision;
    else {
      last = 'error' in r ? r.error : `${r.status} ${r.text.slice(0, 100)}`;
      await sleep(300);
    }
  }
  if (until === undefined) return { ok: false, error: `the sentinel write never succeeded: ${last}` };
  const events: HistEvent[] = [];
  let revisions = 0;
  let seen = 0;
  let connections = 0;
  while (seen < until && nowS() < deadline) {
    connections++;
    try {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), Math.max(100, (deadline - nowS()) * 1000));
      try {
        const res = await fetch(`${base}/v1/watch?prefix=${encodeURIComponent(prefix)}&start_revision=1&prev_kv=true`, {
          headers: { accept: 'text/event-stream', ...(seen > 0 ? { 'last-event-id': String(seen) } : {}) },
          signal: ctl.signal,
        });
        if (res.status !== 200 || !res.body) {
          last = `watch answered ${res.status}: ${(await res.text()).slice(0, 200)}`;
          await sleep(300);
          continue;
        }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        while (seen < until) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          for (let cut = buf.indexOf('\n\n'); cut >= 0; cut = buf.indexOf('\n\n')) {
            const frame = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            const event = /^event: (.*)$/m.exec(frame)?.[1];
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n');
            if (event === 'canceled') throw new Error(`watch canceled: ${data}`);
            if (event !== 'change' || !data) continue;
            const m = JSON.parse(data) as { revision: number; events: Omit<HistEvent, 'revision'>[] };
            if (m.revision <= seen) throw new Error(`history: revision ${m.revision} after ${seen}`);
            seen = m.revision;
            revisions++;
            for (const e of m.events) events.push({ revision: m.revision, type: e.type, kv: e.kv, prev_kv: e.prev_kv });
          }
        }
        await reader.cancel().catch(() => {});
      } finally {
        clearTimeout(timer);
        ctl.abort();
      }
    } catch (e) {
      const msg = (e as Error).message;
      if (msg.startsWith('history:') || msg.startsWith('watch canceled')) return { ok: false, error: msg };
      last = msg;
      await sleep(300);
    }
  }
  if (seen < until) return { ok: false, error: `the watch reached revision ${seen} of ${until} in time: ${last}` };
  return { ok: true, events, revisions, until, connections };
}

/** The values in a history (puts and prev_kvs), each with the event that holds it, for the cross-group check. */
export function historyValues(events: readonly HistEvent[]): Observation[] {
  const out: Observation[] = [];
  for (const e of events) {
    const at = `store history revision ${e.revision} ${e.type} ${e.kv.key}`;
    if (e.kv.value) out.push({ value: e.kv.value, what: at });
    if (e.prev_kv?.value) out.push({ value: e.prev_kv.value, what: `${at} (prev_kv)` });
  }
  return out;
}

/** One life of a key: created at `create`, deleted at `deleted` (Infinity while it lives). */
export interface KeyLife {
  readonly key: string;
  readonly create: number;
  readonly lease: string | undefined;
  /** The value of each put of this life, with its revision. */
  readonly puts: { revision: number; value: string | undefined; lease: string | undefined }[];
  deleted: number;
}

/** Each key's lives, in order of creation, from a history (problems: anything inconsistent in it). */
export function keyLives(events: readonly HistEvent[]): { lives: KeyLife[]; problems: string[] } {
  const live = new Map<string, KeyLife>();
  const lives: KeyLife[] = [];
  const problems: string[] = [];
  for (const e of events) {
    const cur = live.get(e.kv.key);
    if (e.type === 'put') {
      const create = e.kv.create_revision ?? e.revision;
      const put = { revision: e.revision, value: e.kv.value, lease: e.kv.lease };
      if (cur && cur.create === create) cur.puts.push(put);
      else {
        if (cur) problems.push(`${e.kv.key}: created again at ${create} while its life from ${cur.create} lives`);
        if (create !== e.revision) problems.push(`${e.kv.key}: first put at ${e.revision} says created at ${create}`);
        const l: KeyLife = { key: e.kv.key, create, lease: e.kv.lease, puts: [put], deleted: Number.POSITIVE_INFINITY };
        live.set(e.kv.key, l);
        lives.push(l);
      }
    } else {
      if (!cur) problems.push(`${e.kv.key}: deleted at ${e.revision} but not alive`);
      else {
        if (e.prev_kv && e.prev_kv.create_revision !== cur.create)
          problems.push(
            `${e.kv.key}: deleted at ${e.revision} with prev created ${e.prev_kv.create_revision}, not ${cur.create}`,
          );
        cur.deleted = e.revision;
        live.delete(e.kv.key);
      }
    }
  }
  return { lives, problems };
}
