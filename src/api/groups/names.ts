/**
 * How groups are named and addressed. A group is an independent Raft
 * cluster; its members are Durable Objects named
 * `<deployment prefix>g/<group>/<incarnation>:<member>`, where the
 * incarnation is the revision at which the directory recorded the group: a
 * group deleted and created again under its name gets new objects, and the
 * old ones are never addressed again. The directory itself is a Raft group
 * of its own (`<deployment prefix>sys:<member>`, on the configured members),
 * and the default group keeps the names it always had (`<member>`).
 */
import type { Member } from '../../node/settings.ts';

/** The group that today's `/v1/...` and `/v3/...` serve. */
export const DEFAULT_GROUP = 'default';

/** Lower-case letters, digits and inner dashes, 1-63 characters (a DNS label). */
const GROUP_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isGroupName(s: string): boolean {
  return GROUP_NAME.test(s);
}

/** A group's voters when created: 3 or 5 (plus learners added later through its membership routes). */
export const GROUP_SIZES: readonly number[] = [3, 5];

/** The member ids of a new group of `size` voters. */
export function memberIds(size: number): string[] {
  return Array.from({ length: size }, (_, i) => `node-${i}`);
}

/** The object name prefix of the directory's own Raft group. */
export function directoryPrefix(deploymentPrefix: string): string {
  return `${deploymentPrefix}sys:`;
}

/** The object name prefix of group `name` in its `incarnation` (node-object.ts isGroupObject recognizes it). */
export function groupPrefix(deploymentPrefix: string, name: string, incarnation: number): string {
  return `${deploymentPrefix}g/${name}/${incarnation}:`;
}

/** A group as the Worker routes to it: the members it was created with and its objects' prefix. */
export interface GroupAddress {
  readonly name: string;
  readonly members: readonly Member[];
  readonly prefix: string;
}
