/** Errors of the public API: each becomes `{ "error": { "code", "message" } }` with its status (shared/DESIGN.md). */

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 412 | 413 | 415 | 422 | 500 | 503 | 504;
  readonly code: string;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly field: string | undefined;
  /** More fields of the `error` object itself (etcd-style details such as `compact_revision`). */
  readonly details: Record<string, unknown>;

  constructor(
    status: ApiError['status'],
    code: string,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
    field?: string,
    details: Record<string, unknown> = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
    this.field = field;
    this.details = details;
  }

  body(): ErrorBody & Record<string, unknown> {
    const error =
      this.field === undefined
        ? { code: this.code, message: this.message, ...this.details }
        : { code: this.code, message: this.message, field: this.field, ...this.details };
    return { error, ...this.extra };
  }
}

/** 410: the revision asked for is below the compaction point; the history before `compacted` is gone. */
export function compactedError(revision: number, compacted: number): ApiError {
  return new ApiError(
    410,
    'compacted',
    `revision ${revision} has been compacted; the oldest revision kept is ${compacted}`,
    {},
    {},
    undefined,
    { compact_revision: compacted },
  );
}

/** 400: the revision asked for is past the store's revision. */
export function futureRevisionError(revision: number, current: number): ApiError {
  return new ApiError(
    400,
    'future_revision',
    `revision ${revision} is past the current revision ${current}`,
    {},
    {},
    'revision',
    { current_revision: current },
  );
}

/** 400 naming the offending field. */
export function badRequest(field: string, message: string): ApiError {
  return new ApiError(400, 'bad_request', `${field}: ${message}`, {}, {}, field);
}

/** A deployment setting is wrong (answered as 500, logged). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
