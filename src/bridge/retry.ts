/** How the bridge's long streams (watches, observes) reconnect to the store when their answer ends. */
import { Status } from './grpc.ts';

/** Waits between attempts: first and longest. */
export const RETRY_FIRST_MS = 100;
export const RETRY_MAX_MS = 5_000;

/** Codes of a refusal that another attempt would meet again: the stream ends with it instead. */
export const FINAL = new Set<number>([
  Status.INVALID_ARGUMENT,
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
  Status.OUT_OF_RANGE,
  Status.UNIMPLEMENTED,
  Status.NOT_FOUND,
]);

/** Sleeps `ms`, or less if the stream's signal aborts first. */
export { sleepUnless as sleep } from '../client/backoff.ts';
