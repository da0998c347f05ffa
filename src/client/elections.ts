/**
 * Leader election (etcd's Election, served by the store): campaign, proclaim,
 * resign, leader, and observe (Server-Sent Events, resumed by the client).
 * The POST routes refuse an Idempotency-Key (a campaign is several writes):
 * they are retried only on a 503, and a lost answer is an OutcomeUnknownError.
 */
import { backoffMs, sleep } from './backoff.ts';
import { DurableRaftError, errorOf } from './errors.ts';
import type { Transport } from './http.ts';
import { sseMessages } from './sse.ts';
import { kvOf, type Value, valueJson } from './types.ts';

/** A contender that won: what proclaim and resign need. */
export interface Leadership {
  readonly name: string;
  /** The contender's key, `{name}/{lease in hex}`. */
  readonly key: string;
  /** The key's create revision. */
  readonly revision: number;
  readonly lease: string;
}

/** The leader as GET /v1/elections/{name} and observe tell it. */
export interface ElectionLeader {
  readonly key: string;
  /** The leader key's create revision. */
  readonly revision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease?: string;
  readonly value: Uint8Array;
  readonly text: string;
}

function electionPath(name: string, action?: string): string {
  return `/v1/elections/${encodeURIComponent(name)}${action === undefined ? '' : `/${action}`}`;
}

/** Waits up to `waitMs` (default 0: try once) to lead; not elected in time is a ConflictError `not_elected`. */
export async function campaign(
  t: Transport,
  name: string,
  o: { readonly lease: string; readonly value: Value; readonly waitMs?: number },
): Promise<Leadership> {
  const a = await t.request({
    method: 'POST',
    path: electionPath(name, 'campaign'),
    json: { lease: o.lease, ...valueJson(o.value), ...(o.waitMs !== undefined ? { wait_ms: o.waitMs } : {}) },
    retry: 'unkeyed',
    timeoutMs: (o.waitMs ?? 0) + t.timeoutMs,
  });
  return a.body as Leadership;
}

/** Sets the leader's value; a PreconditionFailedError `not_leader` if `leader` no longer leads. */
export async function proclaim(t: Transport, name: string, leader: Leadership, value: Value): Promise<Leadership> {
  const a = await t.request({
    method: 'POST',
    path: electionPath(name, 'proclaim'),
    json: { key: leader.key, revision: leader.revision, lease: leader.lease, ...valueJson(value) },
    retry: 'unkeyed',
  });
  return a.body as Leadership;
}

/** Steps down (deletes the leader's key if it is still that leadership's). */
export async function resign(t: Transport, name: string, leader: Leadership): Promise<{ resigned: boolean }> {
  const a = await t.request({
    method: 'POST',
    path: electionPath(name, 'resign'),
    json: { key: leader.key, revision: leader.revision },
    retry: 'unkeyed',
  });
  return a.body as { resigned: boolean };
}

/** The leader, or undefined when there is none. */
export async function electionLeader(t: Transport, name: string): Promise<ElectionLeader | undefined> {
  const a = await t.request({ method: 'GET', path: electionPath(name), retry: 'read', answers: [404] });
  if (a.status === 404) {
    const code = (a.body as { error?: { code?: string } } | undefined)?.error?.code;
    if (code === 'no_leader') return undefined;
    throw errorOf(404, a.body);
  }
  return leaderOf(a.body as LeaderJson);
}

/**
 * Each new leader or value of `name`, as the store tells them; it reconnects
 * by itself when the stream breaks and skips the leader it last delivered.
 */
export async function* observe(
  t: Transport,
  name: string,
  o: { readonly signal?: AbortSignal } = {},
): AsyncGenerator<ElectionLeader, void, undefined> {
  let last = '';
  for (let attempt = 0; !o.signal?.aborted; attempt++) {
    const conn = new AbortController();
    const stop = (): void => conn.abort(o.signal?.reason);
    o.signal?.addEventListener('abort', stop, { once: true });
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const res = await t.open(
        { method: 'GET', path: electionPath(name, 'observe'), headers: { Accept: 'text/event-stream' }, retry: 'read' },
        conn.signal,
      );
      if (!res.body) continue;
      const r = res.body.getReader();
      reader = r;
      conn.signal.addEventListener('abort', () => void r.cancel().catch(() => {}), { once: true });
      for await (const m of sseMessages(r)) {
        attempt = 0;
        if (m.event !== 'leader') continue;
        const l = leaderOf(JSON.parse(m.data) as LeaderJson);
        const seen = `${l.key}@${l.modRevision}`;
        if (seen === last) continue;
        last = seen;
        yield l;
      }
    } catch (e) {
      if (o.signal?.aborted) return;
      if (e instanceof DurableRaftError && e.status !== 0 && e.status < 500) throw e;
    } finally {
      o.signal?.removeEventListener('abort', stop);
      conn.abort();
      await reader?.cancel().catch(() => {});
    }
    await sleep(backoffMs(attempt));
  }
}

interface LeaderJson {
  key: string;
  revision: number;
  mod_revision: number;
  version: number;
  lease?: string;
  value?: string;
  value_base64?: string;
}

function leaderOf(j: LeaderJson): ElectionLeader {
  const kv = kvOf({ ...j, create_revision: j.revision });
  return {
    key: kv.key,
    revision: j.revision,
    modRevision: kv.modRevision,
    version: kv.version,
    ...(kv.lease !== undefined ? { lease: kv.lease } : {}),
    value: kv.value,
    text: kv.text,
  };
}
