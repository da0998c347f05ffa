/**
 * etcd's Lease service on its JSON gateway: /v3/lease/grant, revoke (also
 * the older /v3/kv/lease/revoke), keepalive (one streamed result per call,
 * as the gateway streams it), timetolive and leases.
 */
import { MAX_LEASE_TTL } from '../../kv/index.ts';
import { needKeys, needRole } from '../commands.ts';
import type { App, C } from '../env.ts';
import { ETCD, EtcdError } from './etcd-errors.ts';
import { boolField, intField, showKey } from './etcd-json.ts';
import { header, propose, readMessage } from './gateway.ts';
import { settled } from './kv-routes.ts';

export function v3LeaseRoutes(app: App): void {
  app.post('/v3/lease/grant', async (c) => {
    needRole(c.get('principal'), 'write');
    const m = await readMessage(c);
    const asked = intField(m, 'TTL');
    if (asked > MAX_LEASE_TTL) throw ETCD.leaseTtlTooLarge();
    const ttl = Math.max(asked, c.get('config').minLeaseTtl);
    const { result, term, member } = await propose(c, { type: 'leaseGrant', id: leaseId(m, true), ttl });
    const r = settled(result, 'leaseGrant');
    return c.json({ header: header(c, member, term, r.revision), ID: String(r.id), TTL: String(r.ttl) });
  });

  const revoke = async (c: C) => {
    const p = c.get('principal');
    needRole(p, 'write');
    const id = leaseId(await readMessage(c), false);
    if (p.prefixes !== undefined) {
      // As etcd's auth: revoking deletes the lease's keys, so the principal must be allowed to write them all.
      const s = await c.get('client').leaseStatus(id, true);
      if (s.kind === 'ok' && s.value) needKeys(p, s.value.keys ?? []);
    }
    const { result, term, member } = await propose(c, { type: 'leaseRevoke', id });
    const r = settled(result, 'leaseRevoke');
    return c.json({ header: header(c, member, term, r.revision) });
  };
  app.post('/v3/lease/revoke', revoke);
  app.post('/v3/kv/lease/revoke', revoke);

  app.post('/v3/lease/keepalive', async (c) => {
    needRole(c.get('principal'), 'write');
    const id = intField(await readMessage(c), 'ID');
    // No lease has an id of 0 or below here: such a keepalive finds nothing, as one of a revoked lease.
    const r = await c.get('client').leaseKeepAlive(id > 0 ? id : Number.MAX_SAFE_INTEGER);
    if (r.kind !== 'ok') throw ETCD.noLeader();
    // A lease that is gone answers without a TTL (0, left out), as etcd does; the gateway streams each result.
    const result = {
      header: header(c, r.member, r.term, r.revision),
      ID: String(id),
      ...(r.value ? { TTL: String(r.value.ttl) } : {}),
    };
    return c.body(`${JSON.stringify({ result })}\n`, 200, { 'Content-Type': 'application/json' });
  });

  app.post('/v3/lease/timetolive', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    const m = await readMessage(c);
    const id = intField(m, 'ID');
    const withKeys = boolField(m, 'keys');
    const r = await c.get('client').leaseStatus(id > 0 ? id : Number.MAX_SAFE_INTEGER, withKeys);
    if (r.kind !== 'ok') throw ETCD.noLeader();
    const h = header(c, r.member, r.term, r.revision);
    const s = id > 0 ? r.value : undefined;
    // A missing lease: TTL -1, and its ID left out when 0 (a zero field, as etcd writes it).
    if (!s) return c.json({ header: h, ...(id === 0 ? {} : { ID: String(id) }), TTL: '-1' });
    needKeys(p, s.keys ?? []);
    const keys = (s.keys ?? []).map(showKey);
    return c.json({
      header: h,
      ID: String(id),
      ...(s.ttl !== 0 ? { TTL: String(s.ttl) } : {}),
      grantedTTL: String(s.grantedTtl),
      ...(keys.length > 0 ? { keys } : {}),
    });
  });

  app.post('/v3/lease/leases', async (c) => {
    needRole(c.get('principal'), 'read');
    await readMessage(c);
    const r = await c.get('client').leaseList(0, Number.MAX_SAFE_INTEGER);
    if (r.kind !== 'ok') throw ETCD.noLeader();
    const leases = r.value.map((l) => ({ ID: String(l.id) }));
    return c.json({ header: header(c, r.member, r.term, r.revision), ...(leases.length > 0 ? { leases } : {}) });
  });
}

/** The `ID` of a lease request: positive here (etcd also takes negative ids); 0 lets a grant choose. */
function leaseId(m: Record<string, unknown>, grant: boolean): number {
  const id = intField(m, 'ID');
  if (id < 0) throw EtcdError.invalid('durable-raft: lease ids are positive');
  if (id === 0 && !grant) throw ETCD.leaseNotFound();
  return id;
}
