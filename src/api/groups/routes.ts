/**
 * Group administration (admin role, a token not limited to groups), on the
 * default group's API only:
 *
 * - PUT /v1/groups/{name} `{"size": 3|5, "locations"?: [hint|null, …]}`
 *   creates a group: records it in the directory, bootstraps and starts its
 *   members (each where its location hint says), waits for its first
 *   leader, and answers 201 with the group. The same body again is 200 with
 *   the group (and finishes a create that was cut short); another body is
 *   409 `group_exists`.
 * - GET /v1/groups?after=&limit= lists groups in name order, a page at a time.
 * - GET /v1/groups/{name} shows one: its record, members, leader, term and
 *   indexes.
 * - DELETE /v1/groups/{name}[?force=true] deletes one: a group that holds
 *   keys is deleted only with force=true (409 `group_not_empty` otherwise).
 *   Its members' storage is removed (deleteAll) and their objects are never
 *   addressed again; the name may be used for a new group afterwards.
 */

import { isLocationHint } from '../../node/settings.ts';
import type { Principal } from '../auth.ts';
import { ClusterClient } from '../cluster.ts';
import { forbidden, needRole } from '../commands.ts';
import type { ApiConfig } from '../config.ts';
import type { App, C } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { nat, obj, queryBool, queryInt, readJson } from '../input.ts';
import { readFailed, unavailable } from '../outcomes.ts';
import { queryOf } from '../request.ts';
import { clusterView } from '../routes/admin.ts';
import type { GroupRecord, StoredGroup } from './directory.ts';
import { DEFAULT_GROUP, GROUP_SIZES, isGroupName, memberIds } from './names.ts';
import { addressOf, directoryOf, forgetKnownGroup, groupNotFound } from './routing.ts';

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/** What a create asks for: its size and each member's location hint. */
interface GroupSpec {
  readonly size: number;
  readonly locations: readonly (string | null)[];
}

export function groupRoutes(app: App): void {
  app.put('/v1/groups/:name', async (c) => {
    const config = administering(c);
    queryOf(c.get('input'), []);
    const name = nameParam(c, false);
    const spec = specOf(obj(await readJson(c.req.raw, 4096), 'body', ['size', 'locations']));
    const dir = directoryOf(c.env.RAFT_NODE, config, deadlineOf(c));
    const { created, group } = await dir.create(recordOf(name, spec));
    if (!created && !sameSpec(group.record, spec))
      throw new ApiError(409, 'group_exists', `group ${name} exists with another size or locations`, {
        group: recordJson(group),
      });
    if (group.record.state === 'deleting')
      throw new ApiError(409, 'group_deleting', `group ${name} is being deleted; delete it again to finish`);
    if (group.record.state === 'restoring') throw groupRestoring(name);
    let g = group;
    if (g.record.state === 'creating') {
      const client = clientOf(c, config, g);
      await startMembers(client, config, g);
      if (!(await leaderOf(client, g.record.members[0]?.id ?? 'node-0')))
        throw new ApiError(
          503,
          'group_not_ready',
          `group ${name} has no leader yet; PUT it again to finish`,
          {},
          {
            'Retry-After': '1',
          },
        );
      const active = await dir.update(g, { ...g.record, state: 'active' });
      if (active) g = active;
      else {
        // Another create finished it meanwhile (or a delete began): say what it is now.
        const now = await dir.get(name);
        if (now?.record.state !== 'active') throw new ApiError(409, 'group_changed', `group ${name} changed meanwhile`);
        g = now;
      }
    }
    forgetKnownGroup(config, name);
    return c.json(recordJson(g), created ? 201 : 200);
  });

  app.get('/v1/groups', async (c) => {
    const config = administering(c);
    const q = queryOf(c.get('input'), ['after', 'limit']);
    const after = q.get('after');
    if (after !== undefined && !isGroupName(after)) throw badRequest('after', 'expected a group name');
    const limit = queryInt(q, 'limit', 1, MAX_PAGE) ?? DEFAULT_PAGE;
    const { groups, more } = await directoryOf(c.env.RAFT_NODE, config, deadlineOf(c)).list(after, limit);
    const last = groups[groups.length - 1];
    return c.json({ groups: groups.map(recordJson), more, ...(more && last ? { next: last.record.name } : {}) });
  });

  app.get('/v1/groups/:name', async (c) => {
    const config = administering(c);
    queryOf(c.get('input'), []);
    const name = nameParam(c, true);
    if (name === DEFAULT_GROUP) return c.json({ name, ...(await clusterView(config, c.get('client'))) });
    const g = await directoryOf(c.env.RAFT_NODE, config, deadlineOf(c)).get(name);
    if (!g) throw groupNotFound(name);
    if (g.record.state !== 'active') return c.json(recordJson(g));
    const client = clientOf(c, config, g);
    const address = addressOf(config, g);
    const view = await clusterView({ ...config, members: address.members, clusterPrefix: address.prefix }, client);
    return c.json({ ...recordJson(g), ...view });
  });

  app.delete('/v1/groups/:name', async (c) => {
    const config = administering(c);
    const force = queryBool(queryOf(c.get('input'), ['force']), 'force');
    const name = nameParam(c, true);
    if (name === DEFAULT_GROUP) throw new ApiError(409, 'default_group', 'the default group cannot be deleted');
    const dir = directoryOf(c.env.RAFT_NODE, config, deadlineOf(c));
    let g = await dir.get(name);
    if (!g) throw groupNotFound(name);
    const client = clientOf(c, config, g);
    if (g.record.state !== 'deleting') {
      if (g.record.state === 'active' && !force) {
        const r = await client.range({ countOnly: true }, 'linearizable');
        if (r.kind !== 'ok') throw readFailed(r, undefined);
        if (r.value.count > 0)
          throw new ApiError(
            409,
            'group_not_empty',
            `group ${name} holds ${r.value.count} keys; delete it with ?force=true to delete them with it`,
            { keys: r.value.count },
          );
      }
      const deleting = await dir.update(g, { ...g.record, state: 'deleting' });
      if (!deleting) throw new ApiError(409, 'group_changed', `group ${name} changed meanwhile; try again`);
      g = deleting;
    }
    forgetKnownGroup(config, name);
    await destroyMembers(client, g);
    await dir.remove(g);
    forgetKnownGroup(config, name);
    return c.json({ deleted: name });
  });
}

/** The configuration of an administration request: admin, a token for every group, on the default group's API. */
export function administering(c: C): ApiConfig {
  const p: Principal = c.get('principal');
  needRole(p, 'admin');
  if (p.groups) throw forbidden('group administration needs a token that is not limited to groups');
  // Under /groups/{name}/ these routes do not exist, /groups/default/ included: the
  // administration of groups is no route of any one group.
  if (c.get('input').group !== undefined)
    throw new ApiError(404, 'not_found', `no route ${c.req.method} /v1/groups under a group`);
  return c.get('config');
}

export function nameParam(c: C, defaultAllowed: boolean): string {
  const name = c.req.param('name') ?? '';
  if (defaultAllowed && name === DEFAULT_GROUP) return name;
  if (name === DEFAULT_GROUP) throw new ApiError(409, 'default_group', 'the default group always exists');
  if (!isGroupName(name))
    throw badRequest('name', 'a group name is 1-63 of [a-z0-9-], starting and ending with a letter or digit');
  return name;
}

function specOf(body: Record<string, unknown>): GroupSpec {
  const size = nat(body.size, 'size');
  if (!GROUP_SIZES.includes(size)) throw badRequest('size', `expected one of ${GROUP_SIZES.join(', ')}`);
  if (body.locations === undefined) return { size, locations: Array.from({ length: size }, () => null) };
  const l = body.locations;
  if (!Array.isArray(l) || l.length !== size)
    throw badRequest('locations', `expected an array of ${size} location hints (or nulls), one per member`);
  for (const [i, h] of l.entries())
    if (h !== null && (typeof h !== 'string' || !isLocationHint(h)))
      throw badRequest(
        `locations[${i}]`,
        'expected a location hint (wnam, enam, sam, weur, eeur, apac, oc, afr, me) or null',
      );
  return { size, locations: l as (string | null)[] };
}

function recordOf(name: string, spec: GroupSpec): GroupRecord {
  const ids = memberIds(spec.size);
  return {
    name,
    size: spec.size,
    members: ids.map((id, i) => ({ id, location_hint: spec.locations[i] ?? null })),
    state: 'creating',
    created_at: new Date().toISOString(),
  };
}

function sameSpec(r: GroupRecord, spec: GroupSpec): boolean {
  return r.size === spec.size && r.members.every((m, i) => m.location_hint === (spec.locations[i] ?? null));
}

/** A group as the administration routes show it. */
export function recordJson(g: StoredGroup): Record<string, unknown> {
  const r = g.record;
  return {
    name: r.name,
    size: r.size,
    state: r.state,
    created_at: r.created_at,
    incarnation: g.incarnation,
    members: r.members.map((m) => ({ name: m.id, location_hint: m.location_hint })),
  };
}

/** The request's deadline (its X-Request-Timeout-Ms, or the configured one). */
function deadlineOf(c: C): number {
  return Date.now() + c.get('client').remaining();
}

export function clientOf(c: C, config: ApiConfig, g: StoredGroup): ClusterClient {
  const a = addressOf(config, g);
  return new ClusterClient(c.env.RAFT_NODE, a.members, a.prefix, deadlineOf(c));
}

/** Bootstraps each member with the group's voters (again is harmless) and starts it (it arms its election alarm). */
export async function startMembers(client: ClusterClient, config: ApiConfig, g: StoredGroup): Promise<void> {
  const a = addressOf(config, g);
  const ids = a.members.map((m) => m.id);
  await Promise.all(
    ids.map(async (id) => {
      const r = await client.stub(id).bootstrap(a.prefix + id, ids);
      if (!r.ok && r.error !== 'node already bootstrapped' && r.error !== 'node already started')
        throw new Error(`bootstrap ${a.prefix + id}: ${r.error}`);
      await client.status(id);
    }),
  );
}

/**
 * Removes the storage of every member of `g` (deleteAll, its alarm too):
 * those it was created with, and any its leader's configuration has added
 * since. Throws 503 if one could not be reached; doing it again is harmless.
 */
export async function destroyMembers(client: ClusterClient, g: StoredGroup): Promise<void> {
  const lead = await client.findLeader();
  const ids = new Set([
    ...g.record.members.map((m) => m.id),
    ...(lead?.conf.voters ?? []),
    ...(lead?.conf.learners ?? []),
  ]);
  try {
    await Promise.all([...ids].map((id) => client.stub(id).destroy()));
  } catch (e) {
    console.warn(`deleting group ${g.record.name}:`, e);
    throw unavailable(`not every member of group ${g.record.name} could be deleted; delete it again to finish`);
  }
}

/** 409: a restore of group `name` is under way (or was cut short: DELETE removes what it left). */
export function groupRestoring(name: string): ApiError {
  return new ApiError(
    409,
    'group_restoring',
    `group ${name} is being restored; if no restore is running any more, DELETE /v1/groups/${name} removes what it left`,
  );
}

/**
 * Waits (within the deadline) until some member reports itself leader. A
 * read barrier on the first member makes it campaign at once (a node asked
 * to serve that knows no leader does), so the group need not wait out an
 * election timeout.
 */
async function leaderOf(client: ClusterClient, first: string): Promise<boolean> {
  if (await client.barrier(first)) return true;
  for (let attempt = 0; ; attempt++) {
    if (await client.findLeader()) return true;
    if (!(await client.pause(attempt))) return false;
  }
}
