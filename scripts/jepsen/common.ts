/**
 * What the runner (run.ts) and its workloads (the kv one in run.ts,
 * lock-workload.ts, lease-workload.ts) share: the seeded PRNG, the clock, the
 * HTTP helper, the shape of a check and of a fault, and the live state of the
 * nemesis. Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { proc } from './node-api.ts';

export const FAULT_KINDS = ['partition', 'crash', 'restart', 'slow', 'transfer', 'member', 'compact'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** The faults a run injects unless --faults says otherwise: all of them. */
export const DEFAULT_FAULTS: readonly FaultKind[] = FAULT_KINDS;

/** One fault the nemesis injected: `at` scheduled, `start`..`healed` as it happened (s since the run's t0). */
export interface FaultEvent {
  kind: FaultKind;
  at: number;
  detail: string;
  start: number;
  healed: number;
  /** The groups it hit (with --groups; the default group's name alone otherwise). */
  groups: string[];
}

/** What the nemesis is doing now, for workloads whose clients wait out faults (times in nowS()). */
export interface FaultClock {
  /** A fault is in force (injected, not yet healed). */
  active: boolean;
  /** When the last fault healed (nowS()), or 0 if none has yet. */
  lastHeal: number;
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** mulberry32: a small seeded PRNG. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }
  pick<T>(xs: readonly T[]): T {
    const x = xs[this.int(xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const out = [...xs];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = out[i] as T;
      out[i] = out[j] as T;
      out[j] = t;
    }
    return out;
  }
}

const T0 = proc.hrtime.bigint();
/** Nanoseconds since the runner started, from one monotonic clock. */
export const nowNs = (): number => Number(proc.hrtime.bigint() - T0);
export const nowS = (): number => nowNs() / 1e9;

// ---- HTTP ----

/**
 * An answer (`revision`: its X-Revision header, if any), or a failure to get
 * one (`refused`: the connection was refused, so the request never reached
 * the server).
 */
export type HttpResult = { status: number; text: string; revision?: number } | { error: string; refused: boolean };

export interface HttpOptions {
  /** Sent as X-Request-Timeout-Ms (default: timeoutMs - 700, at least 200). */
  requestTimeoutMs?: number;
  /** The body is JSON. */
  json?: boolean;
}

export async function http(
  base: string,
  method: string,
  p: string,
  body: string | undefined,
  timeoutMs: number,
  opts: HttpOptions = {},
): Promise<HttpResult> {
  try {
    const r = await fetch(base + p, {
      method,
      body,
      headers: {
        'x-request-timeout-ms': String(opts.requestTimeoutMs ?? Math.max(200, timeoutMs - 700)),
        ...(p === '/v1/cas' || opts.json ? { 'content-type': 'application/json' } : {}),
      },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    const rev = r.headers.get('x-revision');
    return rev === null ? { status: r.status, text } : { status: r.status, text, revision: Number(rev) };
  } catch (e) {
    const err = e as { name?: string; message?: string; cause?: { code?: string } };
    const code = err.cause?.code ?? err.name ?? 'error';
    // Only a refused connection proves the request never reached the server.
    return { error: code, refused: code === 'ECONNREFUSED' };
  }
}

/**
 * How a request that may write ended: `ok` (200), `failed` (it proves no
 * effect: a 4xx other than the ones the caller reads itself, a 503, a refused
 * connection), `unknown` (504, 500, a client timeout or a lost connection:
 * it may have applied). The caller looks at 200 and its own 4xx first.
 */
export function outcomeOf(r: HttpResult): 'ok' | 'failed' | 'unknown' {
  if ('error' in r) return r.refused ? 'failed' : 'unknown';
  if (r.status === 200) return 'ok';
  return r.status === 504 || (r.status >= 500 && r.status !== 503) ? 'unknown' : 'failed';
}

/** The error code of a JSON error answer ({"error":{"code"}}), or undefined. */
export function errorCode(r: HttpResult): string | undefined {
  if ('error' in r) return undefined;
  try {
    return (JSON.parse(r.text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** A short description of a failed answer for counts and reports: the status, or the error code. */
export function statusOf(r: HttpResult): string {
  return 'error' in r ? r.error : String(r.status);
}

// ---- workloads ----

/** What a workload's clients get from the runner. */
export interface WorkloadContext {
  /** The root of the group's routes (the Worker's origin, or it and /groups/{name}). */
  readonly base: string;
  /**
   * Put before every value the clients write (`<group>/` in a run with --groups, '' otherwise),
   * so a value read anywhere tells which group it was written in (groups.ts).
   */
  readonly tag: string;
  readonly clients: number;
  readonly seed: number;
  readonly opTimeoutMs: number;
  /** Clients start nothing new after `at` (nowS()). */
  readonly stop: { at: number };
  /** nowS() when the clock of the run started (FaultEvent times count from it). */
  readonly t0: number;
  readonly faults: FaultClock;
  /** The faults injected so far, each pushed when it healed. */
  readonly events: readonly FaultEvent[];
}

/** A workload started by its factory: its clients run; `check` once they ended and faults healed. */
export interface Workload {
  /** Settles when every client has finished (each finishes what it started after stop.at). */
  readonly running: Promise<void>;
  /** The workload's checks, from what the clients saw and the store's own history. */
  check(): Promise<Check[]>;
  /** Lines of counts for the summary; `runS`: how long the clients ran. */
  summary(runS: number): string[];
  /** What the clients did, as JSON lines for the history file (times in ns from the runner's clock). */
  lines(): string[];
  /** Every value the clients wrote, with the operation that wrote it (for the cross-group check). */
  written(): Observation[];
  /** Every value the clients and the checks read back, with the operation that read it (after `check`). */
  observed(): Observation[];
}

/** A value written or read, and the operation that did it, as a report shows it. */
export interface Observation {
  readonly value: string;
  readonly what: string;
}
