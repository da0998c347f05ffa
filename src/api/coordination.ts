/**
 * etcd's concurrency recipes (Mutex, Election) served by the store. Each
 * contender for `{name}` puts the key `{name}/{lease id in hex}`, attached to
 * its lease; contenders are ordered by their keys' create revisions (first
 * come, first served). The first holds the lock (or leads); each other one
 * waits for its predecessor's key to be deleted, by a one-shot watch on that
 * key, never by polling. A holder whose lease expires loses its key, and so
 * its turn. The create revision of a holder's key is its fencing token: a
 * later holder always has a larger one.
 */
import { type KeyValue, prefixEnd } from '../kv/index.ts';
import type { ClusterClient } from './cluster.ts';
import { needInterval } from './commands.ts';
import type { C } from './env.ts';
import { ApiError, badRequest } from './errors.ts';
import { checkKey, leaseIdOf, nat } from './input.ts';
import { readFailed, write } from './outcomes.ts';

/** A contender's place: its key and the key's create revision. */
export interface Place {
  readonly key: string;
  readonly revision: number;
  readonly lease: number;
}

/** The longest a lock or campaign request waits for its turn. */
export const MAX_WAIT_MS = 300_000;

/** The prefix of the keys of `name`, once the principal may write under it. */
export function contendersOf(c: C, name: string): string {
  const prefix = `${checkKey(name, 'name')}/`;
  needInterval(c.get('principal'), prefix, prefixEnd(prefix), 'name');
  return prefix;
}

/** These routes make several writes: one Idempotency-Key cannot stand for them all, so it is refused. */
export function refuseIdempotencyKey(c: C): void {
  if (c.req.header('idempotency-key') !== undefined)
    throw badRequest('Idempotency-Key', 'not taken here: a lock or a campaign is several writes');
}

/** `wait_ms` of a body: how long to wait for the turn (default 0: try once). */
export function waitMsOf(v: unknown): number {
  const ms = v === undefined ? 0 : nat(v, 'wait_ms');
  if (ms > MAX_WAIT_MS) throw badRequest('wait_ms', `at most ${MAX_WAIT_MS}`);
  return ms;
}

/** A lease id a body must give. */
export function requiredLease(v: unknown, field: string): number {
  const id = v === undefined ? undefined : leaseIdOf(v, field);
  if (id === undefined) throw badRequest(field, 'a lease id is required');
  return id;
}

/**
 * Joins the queue of `prefix` with lease `lease` (etcd's tryAcquire): puts
 * the contender's key if it is not there, else takes the one there (the same
 * lease contending again). `created` says whether this call put it, `at`
 * is the store revision its txn answered.
 */
export async function enqueue(
  c: C,
  prefix: string,
  lease: number,
  value: Uint8Array,
): Promise<Place & { created: boolean; existing?: KeyValue; at: number }> {
  const key = prefix + lease.toString(16);
  const result = await write(c, {
    type: 'txn',
    compare: [{ key, target: 'createRevision', op: '=', value: 0 }],
    success: [{ type: 'put', key, value, lease }],
    failure: [{ type: 'get', key }],
  });
  if (result.type !== 'txn') throw new Error(`unexpected result ${result.type}`);
  if (result.succeeded) return { key, revision: result.revision, lease, created: true, at: result.revision };
  const got = result.results[0];
  const existing = got?.type === 'get' ? got.kv : undefined;
  if (!existing) throw new Error('txn failure branch lost its get');
  return { key, revision: existing.createRevision, lease, created: false, existing, at: result.revision };
}

/** How a wait ended: our turn (seen at store revision `revision`), our key gone, or out of time. */
export type Turn = { readonly status: 'turn'; readonly revision: number } | { readonly status: 'gone' | 'timeout' };

/**
 * Waits until no key of `prefix` was created before `place`: `turn` then
 * (with the revision of the read that saw it), `gone` if the place's own key
 * went meanwhile (its lease expired, or it was released), `timeout` once
 * `until` (ms) has passed. Each read gets `budgetMs`, the request's usual
 * deadline.
 */
export async function waitTurn(c: C, prefix: string, place: Place, until: number, budgetMs: number): Promise<Turn> {
  for (;;) {
    freshClient(c, budgetMs);
    const client = c.get('client');
    const r = await client.range({ prefix, keysOnly: true }, 'linearizable');
    if (r.kind === 'unavailable') return { status: 'timeout' };
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    const kvs = r.value.kvs;
    if (!kvs.some((kv) => kv.key === place.key && kv.createRevision === place.revision)) return { status: 'gone' };
    let before: KeyValue | undefined;
    for (const kv of kvs)
      if (kv.createRevision < place.revision && (!before || kv.createRevision > before.createRevision)) before = kv;
    if (!before) return { status: 'turn', revision: r.value.revision };
    // Only the predecessor's deletion can make it our turn; watch from just after what we read.
    const filter = { start: before.key, end: `${before.key}\u0000`, prevKv: false, noPut: true, noDelete: false };
    if (Date.now() >= until) return { status: 'timeout' };
    const change = await client.withDeadline(until).nextChange(filter, r.value.revision + 1);
    if (change.status === 'timeout' || change.status === 'unavailable') return { status: 'timeout' };
    // Deleted (or the history moved past us): look again.
  }
}

/** Leaves the queue: deletes the place's key if it is still that place's. */
export async function dequeue(c: C, place: Place): Promise<boolean> {
  const result = await write(c, {
    type: 'txn',
    compare: [{ key: place.key, target: 'createRevision', op: '=', value: place.revision }],
    success: [{ type: 'delete', key: place.key }],
    failure: [],
  });
  return result.type === 'txn' && result.succeeded;
}

/** The first contender of `prefix` (the holder, or the leader), read linearizably, or undefined if none. */
export async function firstOf(c: C, prefix: string): Promise<KeyValue | undefined> {
  const r = await c.get('client').range({ prefix }, 'linearizable');
  if (r.kind !== 'ok') throw readFailed(r, undefined);
  let first: KeyValue | undefined;
  for (const kv of r.value.kvs) if (!first || kv.createRevision < first.createRevision) first = kv;
  return first;
}

/** Gives the request's next step a client with the usual time from now (a wait outlives the first deadline). */
export function freshClient(c: C, budgetMs: number): void {
  c.set('client', c.get('client').withDeadline(Date.now() + budgetMs));
}

export function busy(code: string, message: string): ApiError {
  return new ApiError(409, code, message);
}

/** How an observer's stream writes what it sees (/v1 as Server-Sent Events, /v3 as etcd's lines). */
export interface ObserverFrames {
  /** The leader `kv`, as read at store revision `revision`. */
  leader(kv: KeyValue, revision: number): string;
  /** Sent when nothing changed for OBSERVE_IDLE_MS ('' for nothing). */
  waiting(): string;
  /** Sent when no leader with a quorum answered ('' for nothing); the observer tries again a second later. */
  unavailable(): string;
}

/** How long an observer waits for a change before it sends `waiting` (a comment keeps a connection open). */
const OBSERVE_IDLE_MS = 25_000;

/**
 * Each new leader or value of `prefix` (the first contender, and its
 * proclamations), as `frames` writes them. It reads the leader, then waits
 * for any change under the prefix by a one-shot watch, and reads again; it
 * runs only while the client reads, and stops when the client goes.
 */
export function observeLeaders(
  base: ClusterClient,
  prefix: string,
  budgetMs: number,
  frames: ObserverFrames,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let sent = '';
  let closed = false;
  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, text: string): boolean => {
    if (text === '') return false;
    controller.enqueue(enc.encode(text));
    return true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (!closed) {
        const r = await base.withDeadline(Date.now() + budgetMs).range({ prefix }, 'linearizable');
        if (r.kind !== 'ok') {
          const said = emit(controller, frames.unavailable());
          await new Promise((res) => setTimeout(res, 1000));
          if (said) return;
          continue;
        }
        let first: KeyValue | undefined;
        for (const kv of r.value.kvs) if (!first || kv.createRevision < first.createRevision) first = kv;
        const seen = first ? `${first.key}@${first.modRevision}` : '';
        if (first && seen !== sent) {
          sent = seen;
          if (emit(controller, frames.leader(first, r.value.revision))) return;
        }
        const filter = { start: prefix, end: prefixEnd(prefix), prevKv: false, noPut: false, noDelete: false };
        const change = await base.withDeadline(Date.now() + OBSERVE_IDLE_MS).nextChange(filter, r.value.revision + 1);
        if (change.status !== 'change' && emit(controller, frames.waiting())) return;
      }
    },
    cancel() {
      closed = true;
    },
  });
}
