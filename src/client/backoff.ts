/** How long to wait before retrying: capped exponential backoff with full jitter, so retrying clients spread out. */

const BASE_MS = 50;
/** The API's Retry-After is 1 s: waiting longer than that never helps. */
const CAP_MS = 1000;

/** A random wait in [0, min(CAP_MS, BASE_MS * 2^attempt)). */
export function backoffMs(attempt: number): number {
  return Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** Math.min(attempt, 10));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Sleeps `ms`, or less if `signal` aborts first. */
export function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
