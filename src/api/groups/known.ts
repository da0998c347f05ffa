/**
 * What this isolate has learned of groups from the directory, so a request
 * to a warm group reads no directory: bounded (least recently used out
 * first). A group found is trusted for POSITIVE_MS (a request that finds
 * its objects deleted learns it sooner: see routing.ts); a group not found,
 * for NEGATIVE_MS, so a group created through another isolate serves here
 * within that time.
 */
import type { StoredGroup } from './directory.ts';

/** Groups remembered at most. */
export const KNOWN_GROUPS_MAX = 4096;
const POSITIVE_MS = 30_000;
const NEGATIVE_MS = 1_000;

interface Entry {
  readonly group: StoredGroup | undefined;
  readonly until: number;
}

const entries = new Map<string, Entry>();

/** What is known of `key` (deployment prefix and group name): the group, undefined (none), or 'unknown'. */
export function knownGroup(key: string, now = Date.now()): StoredGroup | undefined | 'unknown' {
  const e = entries.get(key);
  if (e === undefined || e.until <= now) return 'unknown';
  // Most recently used last: re-insert.
  entries.delete(key);
  entries.set(key, e);
  return e.group;
}

export function learnGroup(key: string, group: StoredGroup | undefined, now = Date.now()): void {
  entries.delete(key);
  entries.set(key, { group, until: now + (group ? POSITIVE_MS : NEGATIVE_MS) });
  while (entries.size > KNOWN_GROUPS_MAX) {
    const oldest = entries.keys().next().value;
    if (oldest === undefined) break;
    entries.delete(oldest);
  }
}

export function forgetGroup(key: string): void {
  entries.delete(key);
}

/** How many groups this isolate remembers (tests, and the memory figures of the bench). */
export function knownGroupCount(): number {
  return entries.size;
}
