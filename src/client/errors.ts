/**
 * The errors the client throws: one class per kind of answer a caller acts
 * on differently, each carrying the API's `error.code` and `error.message`
 * (README "HTTP API": `{"error":{"code","message",...},"outcome"?}`).
 */
import { type KeyValue, type KeyValueJson, kvOf } from './types.ts';

/** Every error of an answer the API gave (or, for the last two kinds, did not give in time). */
export class DurableRaftError extends Error {
  override readonly name: string = 'DurableRaftError';
  /** The HTTP status (0 when no answer came: a network error or the client's own deadline). */
  readonly status: number;
  /** The API's `error.code` (`network` / `deadline` when no answer came). */
  readonly code: string;
  /** `error.field`, when the API names the offending input. */
  readonly field: string | undefined;
  /** The whole JSON body of the answer (undefined when there was none). */
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body?: unknown, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
    this.field = field;
  }
}

/** 400, and every other 4xx without a class of its own (413, 415, 422). */
export class BadRequestError extends DurableRaftError {
  override readonly name: string = 'BadRequestError';
}

/** 409: a lock or campaign not won in time (`lock_busy`, `not_elected`), a lease id in use, a rejected change. */
export class ConflictError extends BadRequestError {
  override readonly name: string = 'ConflictError';
}

/** 401: no token, or a token the store does not know. */
export class UnauthorizedError extends DurableRaftError {
  override readonly name: string = 'UnauthorizedError';
}

/** 403: the token lacks the role, or the key lies outside its prefixes. */
export class ForbiddenError extends DurableRaftError {
  override readonly name: string = 'ForbiddenError';
}

/** 404: no such key, lease, lock key, leader or route. */
export class NotFoundError extends DurableRaftError {
  override readonly name: string = 'NotFoundError';
}

/** 410, or a watch canceled for it: the revision asked for is below the compaction point. */
export class CompactedError extends DurableRaftError {
  override readonly name: string = 'CompactedError';
  /** The oldest revision the store still keeps. */
  readonly compactRevision: number;

  constructor(compactRevision: number, message: string, body?: unknown) {
    super(410, 'compacted', message, body);
    this.compactRevision = compactRevision;
  }
}

/** 412: an If-Match / If-None-Match that failed (or a proclaim by a non-leader). */
export class PreconditionFailedError extends DurableRaftError {
  override readonly name: string = 'PreconditionFailedError';
  /** The key as it is now, without its value (the API sends only its metadata); undefined: it does not exist. */
  readonly current: KeyValue | undefined;
  /** The store revision of the answer, when the route gives one. */
  readonly revision: number | undefined;

  constructor(code: string, message: string, body: unknown, current: KeyValue | undefined, revision?: number) {
    super(412, code, message, body);
    this.current = current;
    this.revision = revision;
  }
}

/** 503, or no answer before the deadline for a request known to have changed nothing. */
export class UnavailableError extends DurableRaftError {
  override readonly name: string = 'UnavailableError';
}

/** 504, or no answer before the deadline for a write that may have applied: it may or may not have. */
export class OutcomeUnknownError extends DurableRaftError {
  override readonly name: string = 'OutcomeUnknownError';
}

interface ErrorJson {
  error?: { code?: unknown; message?: unknown; field?: unknown; compact_revision?: unknown };
  current?: KeyValueJson | null;
  revision?: unknown;
}

/** The typed error for an answer that is not a success. */
export function errorOf(status: number, body: unknown): DurableRaftError {
  const e = (typeof body === 'object' && body !== null ? body : {}) as ErrorJson;
  const code = typeof e.error?.code === 'string' ? e.error.code : `http_${status}`;
  const message = typeof e.error?.message === 'string' ? e.error.message : `HTTP ${status}`;
  const field = typeof e.error?.field === 'string' ? e.error.field : undefined;
  switch (status) {
    case 401:
      return new UnauthorizedError(status, code, message, body, field);
    case 403:
      return new ForbiddenError(status, code, message, body, field);
    case 404:
      return new NotFoundError(status, code, message, body, field);
    case 409:
      return new ConflictError(status, code, message, body, field);
    case 410: {
      const compact = e.error?.compact_revision;
      return new CompactedError(typeof compact === 'number' ? compact : 0, message, body);
    }
    case 412: {
      const current = e.current ? kvOf(e.current) : undefined;
      const revision = typeof e.revision === 'number' ? e.revision : undefined;
      return new PreconditionFailedError(code, message, body, current, revision);
    }
    case 503:
      return new UnavailableError(status, code, message, body, field);
    case 504:
      return new OutcomeUnknownError(status, code, message, body, field);
  }
  if (status >= 400 && status < 500) return new BadRequestError(status, code, message, body, field);
  return new DurableRaftError(status, code, message, body, field);
}
