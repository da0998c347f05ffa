/**
 * etcd's Cluster and Maintenance services on the gateway: the member list
 * and the status, from the Raft leader's view; every other call of those
 * services (and of Auth) answers etcd's Unimplemented error, since this
 * store is administered through /v1/cluster and its tokens.
 */
import { needRole } from '../commands.ts';
import type { App } from '../env.ts';
import { ETCD, unimplemented } from './etcd-errors.ts';
import { header, readMessage } from './gateway.ts';
import { memberId } from './ids.ts';

/** The etcd API version this gateway answers as. */
export const ETCD_API_VERSION = '3.4.0';

const UNIMPLEMENTED = [
  '/v3/cluster/member/add',
  '/v3/cluster/member/remove',
  '/v3/cluster/member/update',
  '/v3/cluster/member/promote',
  '/v3/maintenance/alarm',
  '/v3/maintenance/defragment',
  '/v3/maintenance/hash',
  '/v3/maintenance/hashkv',
  '/v3/maintenance/snapshot',
  '/v3/maintenance/transfer-leadership',
  '/v3/maintenance/downgrade',
  '/v3/auth/enable',
  '/v3/auth/disable',
  '/v3/auth/status',
  '/v3/auth/authenticate',
];

export function v3ClusterRoutes(app: App): void {
  app.post('/v3/cluster/member/list', async (c) => {
    needRole(c.get('principal'), 'read');
    await readMessage(c);
    const lead = await c.get('client').findLeader();
    if (!lead) throw ETCD.noLeader();
    const prefix = c.get('config').clusterPrefix;
    const member = (name: string, learner: boolean) => ({
      ID: memberId(prefix, name),
      name,
      ...(learner ? { isLearner: true } : {}),
    });
    const h = header(c, lead.id, lead.term);
    return c.json({
      header: h,
      members: [...lead.conf.voters.map((v) => member(v, false)), ...lead.conf.learners.map((l) => member(l, true))],
    });
  });

  app.post('/v3/maintenance/status', async (c) => {
    needRole(c.get('principal'), 'read');
    await readMessage(c);
    const client = c.get('client');
    const lead = await client.findLeader();
    if (!lead) throw ETCD.noLeader();
    const prefix = c.get('config').clusterPrefix;
    const r = await client.range({ countOnly: true }, 'serializable');
    const revision = r.kind === 'ok' ? r.value.revision : undefined;
    return c.json({
      header: header(c, lead.id, lead.term, revision),
      version: ETCD_API_VERSION,
      leader: memberId(prefix, lead.id),
      raftIndex: String(lead.commit),
      raftTerm: String(lead.term),
      raftAppliedIndex: String(lead.applied),
    });
  });

  for (const path of UNIMPLEMENTED)
    app.post(path, () => {
      throw unimplemented(path);
    });
}
