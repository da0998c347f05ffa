/** Errors of the public API: each becomes `{ "error": { "code", "message" } }` with its status (shared/DESIGN.md). */

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: 400 | 401 | 403 | 404 | 409 | 412 | 413 | 415 | 422 | 500 | 503 | 504;
  readonly code: string;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly field: string | undefined;

  constructor(
    status: ApiError['status'],
    code: string,
    message: string,
    extra: Record<string, unknown> = {},
    headers: Record<string, string> = {},
    field?: string,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
    this.headers = headers;
    this.field = field;
  }

  body(): ErrorBody & Record<string, unknown> {
    const error =
      this.field === undefined
        ? { code: this.code, message: this.message }
        : { code: this.code, message: this.message, field: this.field };
    return { error, ...this.extra };
  }
}

/** 400 naming the offending field. */
export function badRequest(field: string, message: string): ApiError {
  return new ApiError(400, 'bad_request', `${field}: ${message}`, {}, {}, field);
}

/** A deployment setting is wrong (answered as 500, logged). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
