/**
 * The timeouts of a node's waiting callers, on one timer.
 *
 * Under load a read or a proposal settles long before its deadline, and
 * arming and clearing a timer for each one cost a busy leader 4% of its time
 * (a profile of 64 linearizable-get clients). Here one timer is set for the
 * earliest deadline; when it fires it expires what is due and re-arms for the
 * next. It is cleared when nothing waits, so an idle object keeps no timer.
 *
 * Only for a Durable Object: its requests share one I/O context, so a timer
 * set during one request may expire another's wait. A stateless Worker's
 * timer belongs to the request that set it.
 */
interface Deadline {
  readonly at: number;
  readonly expire: () => void;
}

export class Deadlines {
  private readonly waiting = new Set<Deadline>();
  private timer: number | undefined;
  /** When the timer fires (Infinity: not armed). */
  private armedAt = Number.POSITIVE_INFINITY;

  /** Calls `expire` after `ms` unless the returned function is called first. */
  add(ms: number, expire: () => void): () => void {
    const d: Deadline = { at: Date.now() + ms, expire };
    this.waiting.add(d);
    if (d.at < this.armedAt) this.arm(d.at);
    return () => {
      if (this.waiting.delete(d) && this.waiting.size === 0) this.disarm();
    };
  }

  /** How many callers wait (for tests). */
  get size(): number {
    return this.waiting.size;
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const d of [...this.waiting]) {
      if (d.at <= now) {
        this.waiting.delete(d);
        d.expire();
      } else if (d.at < next) next = d.at;
    }
    // An expire callback may have added (and armed for) a later deadline.
    if (next < this.armedAt) this.arm(next);
  }
}
