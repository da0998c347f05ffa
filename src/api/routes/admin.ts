/**
 * Cluster administration (admin role): GET /v1/cluster (and its event
 * stream, for the status page), POST /v1/cluster/members and /v1/cluster/leader.
 */
import type { ClusterClient } from '../cluster.ts';
import { needRole } from '../commands.ts';
import type { ApiConfig } from '../config.ts';
import type { App } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { DEFAULT_GROUP } from '../groups/names.ts';
import { obj, readJson } from '../input.ts';
import { settle, unavailable } from '../outcomes.ts';
import { queryOf } from '../request.ts';

const MEMBER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The actions of POST /v1/cluster/members, by name (a Map: inherited names like toString are not actions). */
const MEMBER_ACTIONS = new Map<string, 'addLearner' | 'addVoter' | 'promote' | 'remove'>([
  ['add_learner', 'addLearner'],
  ['promote', 'promote'],
  ['remove', 'remove'],
]);

export function adminRoutes(app: App): void {
  // ---- cluster administration ----

  app.get('/v1/cluster', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    return c.json(await clusterView(c.get('config'), c.get('client')));
  });

  // The same view every STATUS_EVERY_MS, as Server-Sent Events, while the client reads (the status page).
  app.get('/v1/cluster/events', (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const { config, client } = { config: c.get('config'), client: c.get('client') };
    return c.body(clusterEvents(config, client), 200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'Content-Encoding': 'identity',
    });
  });

  app.post('/v1/cluster/members', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['action', 'node']);
    const type = typeof body.action === 'string' ? MEMBER_ACTIONS.get(body.action) : undefined;
    if (type === undefined) throw badRequest('action', `expected one of ${[...MEMBER_ACTIONS.keys()].join(', ')}`);
    if (typeof body.node !== 'string' || !MEMBER_NAME.test(body.node))
      throw badRequest('node', 'expected 1-64 of [A-Za-z0-9_-]');
    // Promote is for a learner only (as etcd's MemberPromote): a voter cannot be promoted, and
    // promoting a name that is no member would add a voter that does not exist. Checked here
    // for a clear answer, and again by the entry as it applies (ConfChange 'promote').
    if (type === 'promote') {
      const lead = await c.get('client').findLeader();
      if (!lead) throw unavailable('no leader to check the membership with');
      if (!lead.conf.learners.includes(body.node))
        throw new ApiError(409, 'not_a_learner', `${body.node} is not a learner: add it with add_learner first`);
    }
    // A group's node exists only once bootstrapped (node-object.ts isGroupObject): make the new one, with the
    // voters it will hear from, before its leader sends it anything. The default group's nodes make themselves.
    if (type === 'addLearner' && c.get('config').group !== DEFAULT_GROUP) {
      const client = c.get('client');
      const lead = await client.findLeader();
      if (!lead) throw unavailable('no leader to add the member with');
      const name = c.get('config').clusterPrefix + body.node;
      const made = await client.stub(body.node).bootstrap(name, [...lead.conf.voters]);
      if (!made.ok && made.error !== 'node already bootstrapped' && made.error !== 'node already started')
        throw new Error(`bootstrap ${name}: ${made.error}`);
    }
    const out = await c.get('client').changeMembership({ type, node: body.node });
    settle(out);
    const lead = await c.get('client').findLeader();
    return c.json({ ok: true, conf: lead ? { voters: lead.conf.voters, learners: lead.conf.learners } : null });
  });

  app.post('/v1/cluster/leader', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['to']);
    if (typeof body.to !== 'string' || !MEMBER_NAME.test(body.to)) throw badRequest('to', 'expected a member name');
    const to = body.to;
    const client = c.get('client');
    const lead = await client.findLeader();
    if (!lead) throw unavailable('no leader to transfer from');
    if (!lead.conf.voters.includes(to)) throw new ApiError(409, 'not_a_voter', `${to} is not a voter`);
    if (lead.id !== to) await client.transferLeadership(lead.id, to);
    for (let attempt = 0; ; attempt++) {
      const st = await client.status(to);
      if (st?.role === 'leader') return c.json({ leader: to, term: st.term });
      if (!(await client.pause(attempt))) break;
    }
    throw new ApiError(
      503,
      'transfer_incomplete',
      `leadership did not move to ${to} in time`,
      {},
      { 'Retry-After': '1' },
    );
  });
}

/** How often the cluster's event stream sends the view. */
const STATUS_EVERY_MS = 1000;

/**
 * GET /v1/cluster's answer: every member (configured, or in the leader's
 * configuration) with its role and indexes as it reports them, and what the
 * leader knows of it; a member that does not answer is `reachable: false`.
 * `revision` is the store's, as one replica has applied it.
 */
export async function clusterView(config: ApiConfig, client: ClusterClient): Promise<Record<string, unknown>> {
  const lead = await client.findLeader();
  const ids = new Set(config.members.map((m) => m.id));
  for (const id of [...(lead?.conf.voters ?? []), ...(lead?.conf.learners ?? [])]) ids.add(id);
  const statuses = await Promise.all([...ids].map(async (id) => [id, await client.status(id)] as const));
  const members = statuses.map(([id, st]) => {
    const pr = lead?.progress[id];
    const hint = config.members.find((m) => m.id === id)?.locationHint;
    return {
      name: id,
      membership: lead
        ? lead.conf.voters.includes(id)
          ? 'voter'
          : lead.conf.learners.includes(id)
            ? 'learner'
            : 'none'
        : 'unknown',
      location_hint: hint ?? null,
      reachable: st !== undefined,
      role: st?.role ?? null,
      term: st?.term ?? null,
      commit_index: st?.commit ?? null,
      applied_index: st?.applied ?? null,
      last_index: st?.lastIndex ?? null,
      match_index: pr?.match ?? null,
      recent_active: id === lead?.id ? true : (pr?.recentActive ?? null),
      // When the leader last heard from this member (ISO time), as the leader's clock says.
      last_contact:
        id === lead?.id ? null : lead?.lastContact[id] ? new Date(lead.lastContact[id]).toISOString() : null,
      quiet: st?.quiet ?? null,
    };
  });
  const counted = await client.range({ countOnly: true }, 'serializable');
  return {
    leader: lead?.id ?? null,
    term: lead?.term ?? null,
    commit_index: lead?.commit ?? null,
    revision: counted.kind === 'ok' ? counted.value.revision : null,
    members,
  };
}

/** The view as an event each STATUS_EVERY_MS, each with a fresh deadline, until the reader goes. */
function clusterEvents(config: ApiConfig, base: ClusterClient): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let closed = false;
  let first = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!first) await new Promise((r) => setTimeout(r, STATUS_EVERY_MS));
      first = false;
      if (closed) return;
      const view = await clusterView(config, base.withDeadline(Date.now() + Math.max(STATUS_EVERY_MS, 2000)));
      controller.enqueue(enc.encode(`event: cluster\ndata: ${JSON.stringify(view)}\n\n`));
    },
    cancel() {
      closed = true;
    },
  });
}
