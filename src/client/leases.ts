/**
 * Leases (etcd's Lease API): grant, keepalive, time to live, list, revoke;
 * and the Lease handle, which can keep its lease alive by itself until it is
 * closed or revoked. Grant and revoke go through the log and carry an
 * Idempotency-Key; a keepalive changes no data and is retried like a read.
 */
import { backoffMs } from './backoff.ts';
import { type DurableRaftError, NotFoundError } from './errors.ts';
import type { Transport } from './http.ts';

export interface LeaseGrant {
  /** The lease id, a decimal string. */
  readonly id: string;
  /** The TTL granted in seconds (raised to the store's minimum if asked below it). */
  readonly ttl: number;
  readonly revision: number;
}

export interface LeaseStatus {
  readonly id: string;
  readonly grantedTtl: number;
  /** Seconds left, by the leader's clock. */
  readonly ttl: number;
  /** The keys attached, when asked for. */
  readonly keys?: string[];
  readonly revision: number;
}

export interface LeaseList {
  readonly leases: { readonly id: string; readonly ttl: number }[];
  readonly more: boolean;
  /** The `after` of the next page, when `more`. */
  readonly after?: string;
  readonly revision: number;
}

export async function grantLease(t: Transport, ttl: number, id?: string): Promise<LeaseGrant> {
  const a = await t.request({
    method: 'POST',
    path: '/v1/leases',
    json: id === undefined ? { ttl } : { ttl, id },
    retry: 'keyed',
  });
  return a.body as LeaseGrant;
}

/** One renewal: the TTL it restarted, or a NotFoundError once the lease is gone. */
export async function keepAliveOnce(t: Transport, id: string): Promise<{ id: string; ttl: number }> {
  const a = await t.request({ method: 'POST', path: `/v1/leases/${encodeURIComponent(id)}/keepalive`, retry: 'read' });
  return a.body as { id: string; ttl: number };
}

export async function leaseStatus(t: Transport, id: string, o: { keys?: boolean } = {}): Promise<LeaseStatus> {
  const a = await t.request({
    method: 'GET',
    path: `/v1/leases/${encodeURIComponent(id)}`,
    query: { keys: o.keys || undefined },
    retry: 'read',
  });
  const b = a.body as { id: string; granted_ttl: number; ttl: number; keys?: string[]; revision: number };
  return {
    id: b.id,
    grantedTtl: b.granted_ttl,
    ttl: b.ttl,
    ...(b.keys ? { keys: b.keys } : {}),
    revision: b.revision,
  };
}

export async function listLeases(t: Transport, o: { after?: string; limit?: number } = {}): Promise<LeaseList> {
  const a = await t.request({
    method: 'GET',
    path: '/v1/leases',
    query: { after: o.after, limit: o.limit },
    retry: 'read',
  });
  return a.body as LeaseList;
}

export async function revokeLease(
  t: Transport,
  id: string,
): Promise<{ id: string; deleted: number; revision: number }> {
  const a = await t.request({ method: 'DELETE', path: `/v1/leases/${encodeURIComponent(id)}`, retry: 'keyed' });
  return a.body as { id: string; deleted: number; revision: number };
}

export interface KeepAliveOptions {
  /** Renew this often (default: a third of the TTL, as etcd's session does). */
  readonly everyMs?: number;
  /** Called once if the lease is found gone (expired or revoked elsewhere); the loop then stops. */
  readonly onLost?: (error: DurableRaftError) => void;
}

/**
 * A granted lease. With a keepalive loop running (`keepAlive()`, or the
 * `keepAlive` option of grant), it renews every third of its TTL, retrying
 * sooner after a failed renewal, until `close()` or `revoke()`; if the store
 * says the lease is gone, the loop stops and `lost` is set.
 */
export class Lease {
  readonly id: string;
  readonly ttl: number;
  /** The store revision of the grant (undefined for a lease a lock route granted). */
  readonly revision: number | undefined;
  /** How many renewals were acknowledged (for callers that watch the loop). */
  renewals = 0;
  /** Set once the store said the lease is gone. */
  lost: DurableRaftError | undefined;
  private readonly transport: Transport;
  private loop: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(t: Transport, grant: { id: string; ttl: number; revision?: number }) {
    this.transport = t;
    this.id = grant.id;
    this.ttl = grant.ttl;
    this.revision = grant.revision;
  }

  /** Whether the keepalive loop runs. */
  get keepingAlive(): boolean {
    return this.loop !== undefined && !this.loop.signal.aborted;
  }

  /** Starts the keepalive loop (once; later calls do nothing while it runs). */
  keepAlive(o: KeepAliveOptions = {}): void {
    if (this.keepingAlive) return;
    const loop = new AbortController();
    this.loop = loop;
    this.running = this.renewUntil(loop.signal, o);
  }

  /** One renewal now. */
  keepAliveOnce(): Promise<{ id: string; ttl: number }> {
    return keepAliveOnce(this.transport, this.id);
  }

  timeToLive(o: { keys?: boolean } = {}): Promise<LeaseStatus> {
    return leaseStatus(this.transport, this.id, o);
  }

  /** Stops the keepalive loop (the lease then expires by its TTL); waits for a renewal in flight. */
  async close(): Promise<void> {
    this.loop?.abort();
    await this.running;
  }

  /** Stops the loop and revokes the lease, deleting its keys. */
  async revoke(): Promise<{ id: string; deleted: number; revision: number }> {
    await this.close();
    return revokeLease(this.transport, this.id);
  }

  private async renewUntil(signal: AbortSignal, o: KeepAliveOptions): Promise<void> {
    const everyMs = o.everyMs ?? (this.ttl * 1000) / 3;
    let failures = 0;
    while (!signal.aborted) {
      await abortableSleep(failures === 0 ? everyMs : Math.min(everyMs, backoffMs(failures)), signal);
      if (signal.aborted) return;
      try {
        await keepAliveOnce(this.transport, this.id);
        this.renewals++;
        failures = 0;
      } catch (e) {
        if (e instanceof NotFoundError) {
          this.lost = e;
          this.loop?.abort();
          o.onLost?.(e);
          return;
        }
        // No leader in time, or no answer: the TTL still runs, so try again soon.
        failures++;
      }
    }
  }
}

/** Sleeps `ms`, or less if `signal` aborts first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
