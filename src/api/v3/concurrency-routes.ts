/**
 * etcd's Lock and Election services on the gateway (v3lockpb, v3electionpb),
 * served by the same recipes as /v1/locks and /v1/elections
 * (coordination.ts): keys `{name}/{lease in hex}` ordered by create
 * revision, each contender waiting for its predecessor's delete by watch.
 * A lock or campaign waits until it is its turn (up to MAX_WAIT_MS, then
 * etcd's deadline error), as etcd's blocking calls do.
 */

import { compareBytes } from '../../kv/index.ts';
import { needRole } from '../commands.ts';
import {
  contendersOf,
  dequeue,
  enqueue,
  firstOf,
  freshClient,
  MAX_WAIT_MS,
  type ObserverFrames,
  observeLeaders,
  type Place,
  waitTurn,
} from '../coordination.ts';
import type { App, C } from '../env.ts';
import { ApiError } from '../errors.ts';
import { write } from '../outcomes.ts';
import { ETCD, EtcdError, GRPC } from './etcd-errors.ts';
import {
  bytesField,
  intField,
  keyOf,
  kvJson,
  messageField,
  showKey,
  showRevision,
  storeRevision,
} from './etcd-json.ts';
import { header, readMessage, streamed } from './gateway.ts';
import { NEVER } from './txn.ts';

/** A header from the leader this Worker last reached (the recipes' reads and writes went there). */
function here(c: C, revision: number | undefined): Record<string, string> {
  const client = c.get('client');
  return header(c, client.knownLeader() ?? '', client.knownTerm(), revision);
}

// etcd's lock and election servers pass their recipes' errors on as Unknown (HTTP 500), word for word.
const noLeader = () => new EtcdError(GRPC.unknown, 'election: no leader');
const notLeader = () => new EtcdError(GRPC.unknown, 'election: not leader');
const noLease = () => new EtcdError(GRPC.unknown, 'etcdserver: requested lease not found');

export function v3ConcurrencyRoutes(app: App): void {
  app.post('/v3/lock/lock', async (c) => {
    needRole(c.get('principal'), 'write');
    const m = await readMessage(c);
    const prefix = contendersOf(c, nameOf(m));
    const place = await join(c, prefix, leaseOf(m), new Uint8Array(0));
    const revision = await awaitTurn(c, prefix, place);
    return c.json({ header: here(c, revision), key: showKey(place.key) });
  });

  app.post('/v3/lock/unlock', async (c) => {
    needRole(c.get('principal'), 'write');
    const key = keyOf(bytesField(await readMessage(c), 'key'), 'key');
    const cut = key.lastIndexOf('/');
    contendersOf(c, key.slice(0, Math.max(0, cut)) || key);
    const r = await write(c, { type: 'delete', key });
    return c.json({ header: here(c, r.revision) });
  });

  app.post('/v3/election/campaign', async (c) => {
    needRole(c.get('principal'), 'write');
    const m = await readMessage(c);
    const name = nameOf(m);
    const prefix = contendersOf(c, name);
    const value = bytesField(m, 'value');
    const place = await join(c, prefix, leaseOf(m), value);
    // As etcd's Election.Campaign: the same lease campaigning again with another value proclaims it,
    // and the header is the one of the first txn, before that proclamation and the wait.
    if (place.existing && compareBytes(place.existing.value, value) !== 0) await proclaim(c, place, value);
    await awaitTurn(c, prefix, place);
    return c.json({ header: here(c, place.at), leader: leaderKey(name, place) });
  });

  app.post('/v3/election/proclaim', async (c) => {
    needRole(c.get('principal'), 'write');
    const m = await readMessage(c);
    const { name, place } = leaderOf(messageField(m, 'leader'));
    contendersOf(c, name);
    // etcd checks only that the key still has its create revision, not that it leads.
    const revision = await proclaim(c, place, bytesField(m, 'value'));
    return c.json({ header: here(c, revision) });
  });

  app.post('/v3/election/leader', async (c) => {
    needRole(c.get('principal'), 'read');
    const prefix = contendersOf(c, nameOf(await readMessage(c)));
    const first = await firstOf(c, prefix);
    if (!first) throw noLeader();
    const r = await c.get('client').range({ countOnly: true }, 'linearizable');
    return c.json({ header: here(c, r.kind === 'ok' ? r.value.revision : undefined), kv: kvJson(first) });
  });

  app.post('/v3/election/observe', async (c) => {
    needRole(c.get('principal'), 'read');
    const prefix = contendersOf(c, nameOf(await readMessage(c)));
    const client = c.get('client');
    // etcd's gateway streams one `{"result":{header, kv}}` line per leader and value, and nothing while it waits.
    const frames: ObserverFrames = {
      leader: (kv, revision) => `${JSON.stringify({ result: { header: here(c, revision), kv: kvJson(kv) } })}\n`,
      waiting: () => '',
      unavailable: () => '',
    };
    return streamed(observeLeaders(client, prefix, client.remaining(), frames));
  });

  app.post('/v3/election/resign', async (c) => {
    needRole(c.get('principal'), 'write');
    const { name, place } = leaderOf(messageField(await readMessage(c), 'leader'));
    contendersOf(c, name);
    await dequeue(c, place);
    const r = await c.get('client').range({ countOnly: true }, 'linearizable');
    return c.json({ header: here(c, r.kind === 'ok' ? r.value.revision : undefined) });
  });
}

/** Joins the queue of `prefix` (etcd's tryAcquire), with etcd's error for a lease that is not there. */
function join(c: C, prefix: string, lease: number, value: Uint8Array): ReturnType<typeof enqueue> {
  return enqueue(c, prefix, lease, value).catch((e: unknown) => {
    throw e instanceof ApiError && e.code === 'lease_not_found' ? noLease() : e;
  });
}

/**
 * Waits for the turn and answers the revision that saw it; if it does not
 * come, etcd's deadline error (the key taken back first, if this call put it).
 */
async function awaitTurn(c: C, prefix: string, place: Place & { created: boolean }): Promise<number> {
  const budget = c.get('client').remaining();
  const turn = await waitTurn(c, prefix, place, Date.now() + MAX_WAIT_MS, budget);
  if (turn.status === 'turn') return turn.revision;
  freshClient(c, budget);
  if (turn.status === 'timeout' && place.created) await dequeue(c, place);
  if (turn.status === 'gone') throw noLease();
  throw ETCD.unknownOutcome();
}

/** etcd's Proclaim: puts `value` with the place's lease if its key still has the place's create revision. */
async function proclaim(c: C, place: Place, value: Uint8Array): Promise<number> {
  const r = await write(c, {
    type: 'txn',
    compare: [{ key: place.key, target: 'createRevision', op: '=', value: place.revision }],
    success: [{ type: 'put', key: place.key, value, lease: place.lease }],
    failure: [],
  }).catch((e: unknown) => {
    throw e instanceof ApiError && e.code === 'lease_not_found' ? noLease() : e;
  });
  if (r.type !== 'txn' || !r.succeeded) throw notLeader();
  return r.revision;
}

function nameOf(m: Record<string, unknown>): string {
  const name = keyOf(bytesField(m, 'name'), 'name');
  if (name === '') throw ETCD.emptyKey();
  return name;
}

function leaseOf(m: Record<string, unknown>): number {
  const lease = intField(m, 'lease');
  if (lease <= 0) throw noLease();
  return lease;
}

/** etcd's LeaderKey: name, key, rev (its create revision) and lease. */
function leaderKey(name: string, p: Place): Record<string, string> {
  return { name: showKey(name), key: showKey(p.key), rev: showRevision(p.revision), lease: String(p.lease) };
}

function leaderOf(l: Record<string, unknown>): { name: string; place: Place } {
  const name = keyOf(bytesField(l, 'name'), 'name');
  const key = keyOf(bytesField(l, 'key'), 'key');
  if (name === '' || key === '') throw notLeader();
  // The create revision compared: etcd's 0 is a missing key's; 1 (an empty store) and below are no key's.
  const rev = intField(l, 'rev');
  const revision = rev === 0 ? 0 : rev <= 1 ? NEVER : storeRevision(rev);
  return { name, place: { key, revision, lease: intField(l, 'lease') } };
}
