/**
 * etcd's errors as its JSON gateway answers them: `{"error", "message",
 * "code"}` with the gRPC code, and the HTTP status grpc-gateway (v1, as in
 * etcd 3.4) gives that code; inside a stream (a WebSocket's messages), as
 * grpc-gateway's stream error `{"error": {"grpc_code", "http_code",
 * "message", "http_status"}}`. Messages are etcd's own, word for word, since
 * clients match on them.
 */

/** gRPC codes used here. */
export const GRPC = {
  unknown: 2,
  invalidArgument: 3,
  deadlineExceeded: 4,
  notFound: 5,
  permissionDenied: 7,
  failedPrecondition: 9,
  outOfRange: 11,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
} as const;

/** grpc-gateway v1's HTTPStatusFromCode for the codes above. */
const HTTP_STATUS: Record<number, number> = {
  2: 500,
  3: 400,
  4: 504,
  5: 404,
  7: 403,
  9: 412,
  11: 400,
  12: 501,
  13: 500,
  14: 503,
  16: 401,
};

/** Go's http.StatusText for the statuses above. */
const HTTP_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  412: 'Precondition Failed',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export class EtcdError extends Error {
  override readonly name = 'EtcdError';
  readonly code: number;

  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }

  get status(): number {
    return HTTP_STATUS[this.code] ?? 500;
  }

  body(): { error: string; message: string; code: number } {
    return { error: this.message, message: this.message, code: this.code };
  }

  /** The error as one message of a stream (grpc-gateway v1's StreamError). */
  streamBody(): { error: { grpc_code: number; http_code: number; message: string; http_status: string } } {
    const status = this.status;
    return {
      error: { grpc_code: this.code, http_code: status, message: this.message, http_status: HTTP_TEXT[status] ?? '' },
    };
  }

  static invalid(message: string): EtcdError {
    return new EtcdError(GRPC.invalidArgument, message);
  }

  /** A body that is not the JSON of the request message (the gateway's own parse error). */
  static badJson(message: string): EtcdError {
    return new EtcdError(GRPC.invalidArgument, message);
  }
}

const e = (code: number, message: string) => () => new EtcdError(code, message);

/** etcd's rpctypes errors, by name. */
export const ETCD = {
  emptyKey: e(GRPC.invalidArgument, 'etcdserver: key is not provided'),
  valueProvided: e(GRPC.invalidArgument, 'etcdserver: value is provided'),
  leaseProvided: e(GRPC.invalidArgument, 'etcdserver: lease is provided'),
  tooManyOps: e(GRPC.invalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(GRPC.invalidArgument, 'etcdserver: duplicate key given in txn request'),
  requestTooLarge: e(GRPC.invalidArgument, 'etcdserver: request is too large'),
  compacted: e(GRPC.outOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: e(GRPC.outOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  leaseNotFound: e(GRPC.notFound, 'etcdserver: requested lease not found'),
  leaseExists: e(GRPC.failedPrecondition, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: e(GRPC.outOfRange, 'etcdserver: too large lease TTL'),
  noLeader: e(GRPC.unavailable, 'etcdserver: no leader'),
  timeout: e(GRPC.unavailable, 'etcdserver: request timed out'),
  /** An outcome we cannot know (the write may have applied): etcd's client sees a deadline. */
  unknownOutcome: e(GRPC.deadlineExceeded, 'context deadline exceeded'),
  permissionDenied: e(GRPC.permissionDenied, 'etcdserver: permission denied'),
  invalidToken: e(GRPC.unauthenticated, 'etcdserver: invalid auth token'),
  userEmpty: e(GRPC.invalidArgument, 'etcdserver: user name is empty'),
} as const;

export function unimplemented(method: string): EtcdError {
  return new EtcdError(GRPC.unimplemented, `unknown method ${method}: not implemented by durable-raft`);
}
