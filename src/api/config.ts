/**
 * The public API's settings, read from the Worker's vars and secrets
 * (wrangler.toml `[vars]`, `wrangler secret put AUTH_TOKENS`).
 */
import { MAX_VALUE_BYTES } from '../kv/index.ts';
import { type Member, minLeaseTtl, parseMembers, readSettings, type SettingsEnv } from '../node/settings.ts';
import { parseTokens, type TokenEntry } from './auth.ts';
import { ConfigError } from './errors.ts';
import { DEFAULT_GROUP } from './groups/names.ts';

export interface ApiEnv extends SettingsEnv {
  readonly RAFT_NODE: DurableObjectNamespace;
  readonly CLUSTER_NODES?: string;
  /** Bearer tokens (secret): a JSON array or a simple list, see README "Configuration". */
  readonly AUTH_TOKENS?: string;
  /** "true" lets requests without a token in (with the admin role). Only local dev sets it. */
  readonly ALLOW_ANONYMOUS?: string;
  /** The largest value in bytes; at most 1 MiB (the state machine's limit, below SQLite's 2 MB row). */
  readonly MAX_VALUE_BYTES?: string;
  /** The default per-request deadline in milliseconds (5000). */
  readonly REQUEST_TIMEOUT_MS?: string;
}

export interface ApiConfig {
  /** The group requests run against (groups/names.ts; DEFAULT_GROUP unless a `/groups/{name}` prefix named another). */
  readonly group: string;
  readonly members: readonly Member[];
  /** Prepended to member ids to name node objects (tests host many clusters in one namespace). */
  readonly clusterPrefix: string;
  readonly tokens: readonly TokenEntry[];
  readonly allowAnonymous: boolean;
  readonly maxValueBytes: number;
  readonly requestTimeoutMs: number;
  /** The most keys a range page returns; the default page size. */
  readonly maxRangeLimit: number;
  readonly defaultRangeLimit: number;
  /** The shortest lease TTL granted, in seconds (from the nodes' timing: see minLeaseTtl). */
  readonly minLeaseTtl: number;
}

/** Options a caller (tests, an embedding Worker) may force over what env says. */
export type ApiOptions = Partial<Omit<ApiConfig, 'tokens'>> & {
  /** AUTH_TOKENS text, overriding env. */
  readonly authTokens?: string;
};

export async function readConfig(env: ApiEnv, opts: ApiOptions = {}): Promise<ApiConfig> {
  const maxValueBytes = opts.maxValueBytes ?? intVar(env.MAX_VALUE_BYTES, MAX_VALUE_BYTES, 'MAX_VALUE_BYTES');
  if (maxValueBytes < 1 || maxValueBytes > MAX_VALUE_BYTES)
    throw new ConfigError(`MAX_VALUE_BYTES: expected 1..${MAX_VALUE_BYTES}`);
  const requestTimeoutMs = opts.requestTimeoutMs ?? intVar(env.REQUEST_TIMEOUT_MS, 5_000, 'REQUEST_TIMEOUT_MS');
  if (requestTimeoutMs < 1 || requestTimeoutMs > 60_000) throw new ConfigError('REQUEST_TIMEOUT_MS: expected 1..60000');
  let members: readonly Member[];
  let leaseTtl: number;
  try {
    members = opts.members ?? parseMembers(env.CLUSTER_NODES ?? 'node-0,node-1,node-2');
    leaseTtl = opts.minLeaseTtl ?? minLeaseTtl(readSettings(env));
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const tokenText = opts.authTokens ?? env.AUTH_TOKENS ?? '';
  return {
    group: DEFAULT_GROUP,
    members,
    clusterPrefix: opts.clusterPrefix ?? '',
    tokens: await parseTokens(tokenText),
    allowAnonymous: opts.allowAnonymous ?? env.ALLOW_ANONYMOUS === 'true',
    maxValueBytes,
    requestTimeoutMs,
    maxRangeLimit: opts.maxRangeLimit ?? 1000,
    defaultRangeLimit: opts.defaultRangeLimit ?? 100,
    minLeaseTtl: leaseTtl,
  };
}

function intVar(v: string | undefined, dflt: number, name: string): number {
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new ConfigError(`${name}: expected an integer, got ${JSON.stringify(v)}`);
  return n;
}
