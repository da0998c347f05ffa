/**
 * Locks (etcd's Mutex, served by the store; see coordination.ts):
 * POST /v1/locks/{name} acquires, fairly, waiting up to `wait_ms`;
 * DELETE /v1/locks/{name}?key=K releases.
 */
import { MAX_LEASE_TTL } from '../../kv/index.ts';
import { needRole } from '../commands.ts';
import {
  busy,
  contendersOf,
  dequeue,
  enqueue,
  freshClient,
  refuseIdempotencyKey,
  waitMsOf,
  waitTurn,
} from '../coordination.ts';
import type { App, C } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { checkKey, leaseIdOf, nat, obj, readJson } from '../input.ts';
import { errorBody, write } from '../outcomes.ts';
import { pathTail, queryOf } from '../request.ts';

/** The TTL of the lease a lock grants when the request brings none (etcd's session default). */
const DEFAULT_LOCK_TTL = 60;
const NO_VALUE = new Uint8Array(0);

export function lockRoutes(app: App): void {
  app.post('/v1/locks/*', async (c) => {
    needRole(c.get('principal'), 'write');
    queryOf(c.get('input'), []);
    refuseIdempotencyKey(c);
    const prefix = contendersOf(c, lockName(c));
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['lease', 'ttl', 'wait_ms']);
    const waitMs = waitMsOf(body.wait_ms);
    const given = body.lease === undefined ? undefined : leaseIdOf(body.lease, 'lease');
    if (given !== undefined && body.ttl !== undefined) throw badRequest('ttl', 'give a lease or a ttl, not both');
    const budget = c.get('client').remaining();
    const until = Date.now() + waitMs;
    let lease = given;
    if (lease === undefined) lease = await grantFor(c, body.ttl);
    const place = await enqueue(c, prefix, lease, NO_VALUE);
    const turn = await waitTurn(c, prefix, place, until, budget);
    if (turn.status === 'turn') {
      // `revision` is the fencing token; X-Revision the store revision at which the lock was seen free.
      return c.json({ key: place.key, revision: place.revision, lease: String(lease) }, 200, {
        'X-Revision': String(turn.revision),
      });
    }
    // Not ours in time: leave nothing behind (the key we put, the lease we granted).
    freshClient(c, budget);
    if (place.created && turn.status === 'timeout') await dequeue(c, place);
    if (given === undefined) await write(c, { type: 'leaseRevoke', id: lease }).catch(ignoreLeaseGone);
    throw turn.status === 'gone'
      ? busy('lock_busy', `the lease ${lease} ended while waiting for ${JSON.stringify(prefix.slice(0, -1))}`)
      : busy('lock_busy', `${JSON.stringify(prefix.slice(0, -1))} was not free within ${waitMs} ms`);
  });

  app.delete('/v1/locks/*', async (c) => {
    needRole(c.get('principal'), 'write');
    const q = queryOf(c.get('input'), ['key']);
    const prefix = contendersOf(c, lockName(c));
    const key = checkKey(q.get('key'), 'key');
    if (!key.startsWith(prefix) || key === prefix) throw badRequest('key', `not a key of this lock (${prefix}...)`);
    const result = await write(c, { type: 'delete', key });
    if (result.type !== 'delete') throw new Error(`unexpected result ${result.type}`);
    if (result.deleted === 0)
      return c.json(
        { ...errorBody('key_not_found', `no lock key ${JSON.stringify(key)}`), revision: result.revision },
        404,
      );
    return c.json({ deleted: 1, revision: result.revision }, 200, { 'X-Revision': String(result.revision) });
  });
}

function lockName(c: C): string {
  return pathTail(c.get('input'), '/v1/locks/');
}

/** Grants the lock's own lease: `ttl` seconds (default 60), raised to the minimum TTL. */
async function grantFor(c: C, ttlField: unknown): Promise<number> {
  const asked = ttlField === undefined ? DEFAULT_LOCK_TTL : nat(ttlField, 'ttl');
  if (asked < 1 || asked > MAX_LEASE_TTL) throw badRequest('ttl', `expected 1 to ${MAX_LEASE_TTL} seconds`);
  const result = await write(c, { type: 'leaseGrant', id: 0, ttl: Math.max(asked, c.get('config').minLeaseTtl) });
  if (result.type !== 'leaseGrant') throw new Error(`unexpected result ${result.type}`);
  return result.id;
}

/** A lease that is gone already needs no revoking. */
function ignoreLeaseGone(e: unknown): void {
  if (!(e instanceof ApiError && e.status === 404)) throw e;
}
