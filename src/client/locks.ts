/**
 * Locks (etcd's Mutex, served by the store): POST /v1/locks/{name} acquires,
 * DELETE /v1/locks/{name}?key=K releases. Acquiring is several writes, so
 * the route refuses an Idempotency-Key: the client retries it only on a 503
 * (nothing applied), and a lost answer is an OutcomeUnknownError. Releasing
 * is one write and carries a key.
 */
import { NotFoundError } from './errors.ts';
import type { Transport } from './http.ts';
import { Lease, revokeLease } from './leases.ts';

export interface LockOptions {
  /** A lease of yours (kept alive by you); or else: */
  readonly lease?: string;
  /** the TTL of the lease the store grants for this lock (default 60 s), kept alive by the holder. */
  readonly ttl?: number;
  /** How long to wait for the lock (default 0: try once); not free in time is a ConflictError `lock_busy`. */
  readonly waitMs?: number;
}

/** The store's default TTL for a lock's own lease (routes/locks.ts). */
const DEFAULT_LOCK_TTL = 60;

/** A held lock. */
export class LockHolder {
  readonly name: string;
  /** The lock key, `{name}/{lease in hex}`. */
  readonly key: string;
  /**
   * The fencing token: the lock key's create revision. It grows with every
   * acquisition; a fenced write compares `createRevision` of `key` to it.
   */
  readonly revision: number;
  readonly leaseId: string;
  /** The lease the store granted for this lock, kept alive until unlock (undefined when the lease was yours). */
  readonly lease: Lease | undefined;
  private readonly transport: Transport;

  constructor(t: Transport, name: string, got: { key: string; revision: number; lease: string }, lease?: Lease) {
    this.transport = t;
    this.name = name;
    this.key = got.key;
    this.revision = got.revision;
    this.leaseId = got.lease;
    this.lease = lease;
  }

  /**
   * Releases the lock (deleted 0: it was no longer held, its lease gone), then
   * stops renewing and revokes the lease the store granted for it.
   */
  async unlock(): Promise<{ deleted: number; revision: number }> {
    const a = await this.transport.request({
      method: 'DELETE',
      path: `/v1/locks/${encodeURIComponent(this.name)}`,
      query: { key: this.key },
      retry: 'keyed',
      answers: [404],
    });
    const b = a.body as { deleted?: number; revision: number };
    if (this.lease) {
      await this.lease.close();
      await revokeLease(this.transport, this.lease.id).catch(ignoreNotFound);
    }
    return { deleted: b.deleted ?? 0, revision: b.revision };
  }
}

/** Acquires `name`, waiting up to `waitMs`; with no lease of yours, the holder keeps the store's one alive. */
export async function lock(t: Transport, name: string, o: LockOptions = {}): Promise<LockHolder> {
  const body: Record<string, unknown> = {};
  if (o.lease !== undefined) body.lease = o.lease;
  if (o.ttl !== undefined) body.ttl = o.ttl;
  if (o.waitMs !== undefined) body.wait_ms = o.waitMs;
  const a = await t.request({
    method: 'POST',
    path: `/v1/locks/${encodeURIComponent(name)}`,
    json: body,
    retry: 'unkeyed',
    timeoutMs: (o.waitMs ?? 0) + t.timeoutMs,
  });
  const got = a.body as { key: string; revision: number; lease: string };
  if (o.lease !== undefined) return new LockHolder(t, name, got);
  const lease = new Lease(t, { id: got.lease, ttl: o.ttl ?? DEFAULT_LOCK_TTL });
  lease.keepAlive();
  return new LockHolder(t, name, got, lease);
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof NotFoundError)) throw e;
}
