/**
 * From a request's group to the configuration its routes run with: the
 * default group is the configured cluster, as it always was; any other
 * group is looked up in the directory once per isolate (known.ts), and its
 * routes then reach its own objects. A name that is not a group answers 404
 * `group_not_found` without addressing any object of that name.
 */
import type { Principal } from '../auth.ts';
import { groupAllowed } from '../auth.ts';
import { ClusterClient } from '../cluster.ts';
import type { ApiConfig } from '../config.ts';
import { ApiError, badRequest } from '../errors.ts';
import { GroupDirectory, type StoredGroup } from './directory.ts';
import { forgetGroup, knownGroup, learnGroup } from './known.ts';
import { DEFAULT_GROUP, directoryPrefix, type GroupAddress, groupPrefix, isGroupName } from './names.ts';

export function groupNotFound(name: string): ApiError {
  return new ApiError(404, 'group_not_found', `no group ${JSON.stringify(name)}`);
}

/** The directory, reached with the configured members and a deadline. */
export function directoryOf(ns: DurableObjectNamespace, config: ApiConfig, deadline: number): GroupDirectory {
  return new GroupDirectory(new ClusterClient(ns, config.members, directoryPrefix(config.clusterPrefix), deadline));
}

/** Where group `g` lives in a deployment configured as `config`. */
export function addressOf(config: ApiConfig, g: StoredGroup): GroupAddress {
  return {
    name: g.record.name,
    members: g.record.members.map((m) =>
      m.location_hint === null
        ? { id: m.id }
        : { id: m.id, locationHint: m.location_hint as DurableObjectLocationHint },
    ),
    prefix: groupPrefix(config.clusterPrefix, g.record.name, g.incarnation),
  };
}

const cacheKey = (config: ApiConfig, name: string) => `${config.clusterPrefix}\n${name}`;

/** Forgets what this isolate knew of group `name` (after it changed here). */
export function forgetKnownGroup(config: ApiConfig, name: string): void {
  forgetGroup(cacheKey(config, name));
}

/**
 * The configuration for a request to `group` (undefined: none named) by
 * `p`: 403 if `p` may not reach it, 404 if there is no such group (or it is
 * being deleted), 503 while it is being created or restored.
 */
export async function groupConfig(
  ns: DurableObjectNamespace,
  config: ApiConfig,
  group: string | undefined,
  p: Principal,
): Promise<ApiConfig> {
  const name = group ?? DEFAULT_GROUP;
  if (name !== DEFAULT_GROUP && !isGroupName(name))
    throw badRequest('group', 'a group name is 1-63 of [a-z0-9-], starting and ending with a letter or digit');
  if (!groupAllowed(p, name))
    throw new ApiError(403, 'forbidden', `this token may not reach group ${JSON.stringify(name)}`);
  if (name === DEFAULT_GROUP) return config;
  const key = cacheKey(config, name);
  let g = knownGroup(key);
  if (g === 'unknown') {
    g = await directoryOf(ns, config, Date.now() + config.requestTimeoutMs).get(name);
    // Only settled answers are kept: a group being created or deleted is asked about again.
    if (g === undefined || g.record.state === 'active') learnGroup(key, g);
  }
  if (g === undefined || g.record.state === 'deleting') throw groupNotFound(name);
  if (g.record.state === 'creating' || g.record.state === 'restoring')
    throw new ApiError(
      503,
      'group_not_ready',
      `group ${name} is being ${g.record.state === 'creating' ? 'created' : 'restored'}`,
      {},
      { 'Retry-After': '1' },
    );
  const address = addressOf(config, g);
  return { ...config, members: address.members, clusterPrefix: address.prefix, group: name };
}
