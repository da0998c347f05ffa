/**
 * Bearer tokens. AUTH_TOKENS holds either a JSON array
 *   [{"token": "s3cret", "role": "write", "prefixes": ["app/"], "groups": ["acme"]},
 *    {"sha256": "<64 hex digits>", "role": "admin"}]
 * or a simple list of `role:secret` entries separated by commas or newlines,
 * where the secret may be `sha256:<64 hex digits>` (the hash of the token).
 * Tokens are kept only as SHA-256 digests and compared in constant time.
 * `groups` limits a token to those groups (`default` is the default one);
 * without it, a token reaches every group.
 */
import { compareKeys, prefixEnd } from '../kv/index.ts';
import { ConfigError } from './errors.ts';
import { DEFAULT_GROUP, isGroupName } from './groups/names.ts';

/**
 * `read` < `write` < `admin`, each allowed what the one before is; `metrics`
 * stands apart: it may scrape GET /metrics and nothing else (admin may too).
 */
export type Role = 'read' | 'write' | 'admin' | 'metrics';
const ROLES: readonly Role[] = ['read', 'write', 'admin', 'metrics'];
/** `metrics` ranks below every role of the ladder, so it passes no `hasRole` check. */
const RANK: Record<Role, number> = { metrics: -1, read: 0, write: 1, admin: 2 };

export interface TokenEntry {
  readonly digest: Uint8Array;
  readonly role: Role;
  /** Keys the token may touch: those starting with one of these; undefined = all keys. */
  readonly prefixes?: readonly string[] | undefined;
  /** The groups the token may reach; undefined = every group. */
  readonly groups?: readonly string[] | undefined;
  readonly name: string;
}

export interface Principal {
  readonly role: Role;
  readonly prefixes?: readonly string[] | undefined;
  readonly groups?: readonly string[] | undefined;
  /** Scopes idempotency keys: two tokens never share one. */
  readonly id: string;
}

export async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function fromHex(h: string, at: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new ConfigError(`${at}: expected 64 hex digits`);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export async function parseTokens(text: string): Promise<TokenEntry[]> {
  const t = text.trim();
  if (t === '') return [];
  const entries: TokenEntry[] = [];
  if (t.startsWith('[')) {
    let raw: unknown;
    try {
      raw = JSON.parse(t);
    } catch (e) {
      throw new ConfigError(`AUTH_TOKENS: not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(raw)) throw new ConfigError('AUTH_TOKENS: expected an array');
    for (const [i, item] of raw.entries()) {
      const at = `AUTH_TOKENS[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        throw new ConfigError(`${at}: expected an object`);
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o))
        if (!['token', 'sha256', 'role', 'prefixes', 'groups', 'name'].includes(k))
          throw new ConfigError(`${at}: unknown field ${k}`);
      const role = parseRole(o.role, `${at}.role`);
      let digest: Uint8Array;
      if (typeof o.token === 'string' && o.sha256 === undefined) digest = await sha256(checkSecret(o.token, at));
      else if (typeof o.sha256 === 'string' && o.token === undefined) digest = fromHex(o.sha256, `${at}.sha256`);
      else throw new ConfigError(`${at}: expected exactly one of token, sha256 (strings)`);
      let prefixes: string[] | undefined;
      if (o.prefixes !== undefined) {
        if (!Array.isArray(o.prefixes) || !o.prefixes.every((p) => typeof p === 'string' && p !== ''))
          throw new ConfigError(`${at}.prefixes: expected an array of non-empty strings`);
        prefixes = o.prefixes as string[];
      }
      let groups: string[] | undefined;
      if (o.groups !== undefined) {
        if (
          !Array.isArray(o.groups) ||
          o.groups.length === 0 ||
          !o.groups.every((g) => typeof g === 'string' && (g === DEFAULT_GROUP || isGroupName(g)))
        )
          throw new ConfigError(`${at}.groups: expected a non-empty array of group names`);
        groups = o.groups as string[];
      }
      const name = typeof o.name === 'string' ? o.name : `token-${i}`;
      entries.push({ digest, role, prefixes, groups, name });
    }
    return entries;
  }
  const parts = t
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const [i, part] of parts.entries()) {
    const at = `AUTH_TOKENS entry ${i + 1}`;
    const cut = part.indexOf(':');
    if (cut < 0) throw new ConfigError(`${at}: expected role:secret`);
    const role = parseRole(part.slice(0, cut), at);
    const secret = part.slice(cut + 1);
    const digest = secret.startsWith('sha256:')
      ? fromHex(secret.slice('sha256:'.length), at)
      : await sha256(checkSecret(secret, at));
    entries.push({ digest, role, name: `token-${i}` });
  }
  return entries;
}

function checkSecret(s: string, at: string): string {
  if (s.length < 8 || !/^[\x21-\x7e]+$/.test(s))
    throw new ConfigError(`${at}: a token is at least 8 printable ASCII characters without spaces`);
  return s;
}

function parseRole(v: unknown, at: string): Role {
  if (typeof v !== 'string' || !(ROLES as readonly string[]).includes(v))
    throw new ConfigError(`${at}: role must be one of ${ROLES.join(', ')}`);
  return v as Role;
}

/** Constant time in the contents: every byte of both is looked at. */
function equalDigests(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The token's entry, checking every entry (no early exit), or undefined. */
export async function authenticate(token: string, entries: readonly TokenEntry[]): Promise<TokenEntry | undefined> {
  const d = await sha256(token);
  let found: TokenEntry | undefined;
  for (const e of entries) {
    const eq = equalDigests(d, e.digest);
    if (eq && !found) found = e;
  }
  return found;
}

export function principalOf(e: TokenEntry): Principal {
  return { role: e.role, prefixes: e.prefixes, groups: e.groups, id: hex(e.digest).slice(0, 16) };
}

export const ANONYMOUS: Principal = { role: 'admin', id: 'anonymous' };

export function hasRole(p: Principal, need: Exclude<Role, 'metrics'>): boolean {
  return RANK[p.role] >= RANK[need];
}

/** May `p` read GET /metrics? The admin and metrics roles may (not read or write: the metrics describe the cluster). */
export function mayScrape(p: Principal): boolean {
  return p.role === 'admin' || p.role === 'metrics';
}

/** May `p` reach group `name` at all? */
export function groupAllowed(p: Principal, name: string): boolean {
  return !p.groups || p.groups.includes(name);
}

/** May `p` touch `key`? */
export function keyAllowed(p: Principal, key: string): boolean {
  return !p.prefixes || p.prefixes.some((pre) => key.startsWith(pre));
}

/**
 * May `p` touch every key in [start, end) (end undefined = to the end of
 * the key space)? True if the interval lies inside one allowed prefix.
 */
export function intervalAllowed(p: Principal, start: string, end: string | undefined): boolean {
  if (!p.prefixes) return true;
  return p.prefixes.some((pre) => {
    if (!start.startsWith(pre)) return false;
    const pe = prefixEnd(pre);
    if (pe === undefined) return true;
    return end !== undefined && compareKeys(end, pe) <= 0;
  });
}
