/**
 * Leases (etcd's Lease API): POST /v1/leases grants, POST
 * /v1/leases/{id}/keepalive renews, GET /v1/leases/{id} tells the time
 * left, DELETE /v1/leases/{id} revokes, GET /v1/leases lists. Ids travel as
 * decimal strings. Grants and revocations go through the log; renewals and
 * the time left are answered by the leader's clock (src/node/lessor.ts).
 */

import { MAX_LEASE_TTL } from '../../kv/index.ts';
import { needKeys, needRole } from '../commands.ts';
import type { App, C } from '../env.ts';
import { badRequest } from '../errors.ts';
import { leaseIdOf, nat, obj, queryBool, queryInt, readJson } from '../input.ts';
import { leaseNotFound, readFailed, write } from '../outcomes.ts';
import { queryOf } from '../request.ts';

const LIST_LIMIT = 1000;

export function leaseRoutes(app: App): void {
  app.get('/v1/leases', async (c) => {
    needRole(c.get('principal'), 'read');
    const q = queryOf(c.get('input'), ['after', 'limit']);
    const after = q.has('after') ? (leaseIdOf(q.get('after'), 'after') ?? 0) : 0;
    const limit = queryInt(q, 'limit', 1, LIST_LIMIT) ?? LIST_LIMIT;
    const r = await c.get('client').leaseList(after, limit + 1);
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    const page = r.value.slice(0, limit);
    const more = r.value.length > limit;
    return c.json({
      leases: page.map((l) => ({ id: String(l.id), ttl: l.ttl })),
      more,
      ...(more ? { after: String((page[page.length - 1] as { id: number }).id) } : {}),
      revision: r.revision,
    });
  });

  app.post('/v1/leases', async (c) => {
    needRole(c.get('principal'), 'write');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['ttl', 'id']);
    const asked = nat(body.ttl, 'ttl');
    if (asked < 1 || asked > MAX_LEASE_TTL) throw badRequest('ttl', `expected 1 to ${MAX_LEASE_TTL} seconds`);
    // As etcd: a TTL too short to outlive a failover is raised to the minimum, and the answer says so.
    const ttl = Math.max(asked, c.get('config').minLeaseTtl);
    const id = body.id === undefined ? 0 : (leaseIdOf(body.id, 'id') ?? 0);
    const result = await write(c, { type: 'leaseGrant', id, ttl });
    if (result.type !== 'leaseGrant') throw new Error(`unexpected result ${result.type}`);
    return c.json({ id: String(result.id), ttl: result.ttl, revision: result.revision }, 200, {
      'X-Revision': String(result.revision),
    });
  });

  app.post('/v1/leases/:id/keepalive', async (c) => {
    needRole(c.get('principal'), 'write');
    queryOf(c.get('input'), []);
    const id = pathLease(c);
    const r = await c.get('client').leaseKeepAlive(id);
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    if (r.value === undefined) throw leaseNotFound(id);
    return c.json({ id: String(id), ttl: r.value.ttl });
  });

  app.get('/v1/leases/:id', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    const q = queryOf(c.get('input'), ['keys']);
    const id = pathLease(c);
    const withKeys = queryBool(q, 'keys');
    const r = await c.get('client').leaseStatus(id, withKeys);
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    const s = r.value;
    if (s === undefined) throw leaseNotFound(id);
    if (s.keys) needKeys(p, s.keys);
    return c.json(
      {
        id: String(id),
        granted_ttl: s.grantedTtl,
        ttl: s.ttl,
        ...(s.keys ? { keys: s.keys } : {}),
        revision: r.revision,
      },
      200,
      { 'X-Revision': String(r.revision) },
    );
  });

  app.delete('/v1/leases/:id', async (c) => {
    const p = c.get('principal');
    needRole(p, 'write');
    queryOf(c.get('input'), []);
    const id = pathLease(c);
    if (p.prefixes !== undefined) {
      // As etcd's auth: revoking deletes the lease's keys, so the principal must be allowed to write them all.
      const r = await c.get('client').leaseStatus(id, true);
      if (r.kind !== 'ok') throw readFailed(r, undefined);
      if (r.value === undefined) throw leaseNotFound(id);
      needKeys(p, r.value.keys ?? []);
    }
    const result = await write(c, { type: 'leaseRevoke', id });
    if (result.type !== 'leaseRevoke') throw new Error(`unexpected result ${result.type}`);
    return c.json({ id: String(id), deleted: result.deleted, revision: result.revision }, 200, {
      'X-Revision': String(result.revision),
    });
  });
}

/** The `{id}` of the path: a decimal lease id (0 names no lease: not found). */
function pathLease(c: C): number {
  const raw = c.req.param('id') ?? '';
  if (!/^\d{1,16}$/.test(raw)) throw badRequest('id', 'expected a decimal lease id');
  const id = leaseIdOf(raw, 'id');
  if (id === undefined) throw leaseNotFound(0);
  return id;
}
