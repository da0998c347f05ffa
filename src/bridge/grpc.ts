/**
 * The slices of @grpc/grpc-js, @grpc/proto-loader and Node the bridge uses,
 * typed here. The project compiles against the Workers types, not
 * @types/node, and the gRPC packages' own typings pull @types/node in (which
 * changes the timers of every other file), so the packages are loaded with
 * `createRequire` (both are CommonJS) and seen through these interfaces.
 * Every other bridge file reaches gRPC and Node only through this one.
 */

/** gRPC status codes (the numbers are the protocol's). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A status a handler answers with: the code and etcd's message. */
export interface StatusObject {
  readonly code: number;
  readonly details: string;
}

export interface Metadata {
  get(key: string): (string | Uint8Array)[];
}

/** What every server call has. */
interface CallBase {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  getPeer(): string;
  on(event: 'cancelled', fn: () => void): void;
}

export interface UnaryCall extends CallBase {
  readonly request: Record<string, unknown>;
}

export type UnaryCallback = (error: StatusObject | null, response?: Record<string, unknown>) => void;

/** A server-streaming call (Observe): written to, then ended. */
export interface WritableCall extends CallBase {
  readonly request: Record<string, unknown>;
  /** False once gRPC's buffer is full: wait for 'drain' before writing more. */
  write(message: Record<string, unknown>): boolean;
  end(): void;
  emit(event: 'error', status: StatusObject): boolean;
  once(event: 'drain', fn: () => void): void;
}

/** A bidirectional call (Watch, LeaseKeepAlive). */
export interface DuplexCall extends CallBase {
  write(message: Record<string, unknown>): boolean;
  end(): void;
  emit(event: 'error', status: StatusObject): boolean;
  on(event: 'data', fn: (message: Record<string, unknown>) => void): void;
  on(event: 'end', fn: () => void): void;
  on(event: 'error', fn: (e: unknown) => void): void;
  on(event: 'close', fn: () => void): void;
  on(event: 'cancelled', fn: () => void): void;
  once(event: 'drain', fn: () => void): void;
}

export type Handler =
  | ((call: UnaryCall, callback: UnaryCallback) => void)
  | ((call: WritableCall) => void)
  | ((call: DuplexCall) => void);

/** A service's definition, as proto-loader makes it: method name to its path and stream shape. */
export type ServiceDefinition = Record<
  string,
  { readonly path: string; readonly requestStream: boolean; readonly responseStream: boolean }
>;

export interface Server {
  addService(service: ServiceDefinition, implementation: Record<string, Handler>): void;
  bindAsync(address: string, credentials: unknown, cb: (error: Error | null, port: number) => void): void;
  tryShutdown(cb: (error?: Error) => void): void;
  forceShutdown(): void;
}

interface GrpcJs {
  Server: new (options?: Record<string, unknown>) => Server;
  ServerCredentials: { createInsecure(): unknown };
}

interface ProtoLoader {
  loadSync(files: string[], options: Record<string, unknown>): Record<string, unknown>;
}

interface NodeModules {
  createRequire(from: string): (id: string) => unknown;
}

interface UrlModule {
  fileURLToPath(url: URL): string;
}

/** A response of node:http(s), read as text. */
export interface IncomingMessage {
  readonly statusCode?: number;
  setEncoding(encoding: 'utf8'): void;
  on(event: 'data', fn: (chunk: string) => void): void;
  on(event: 'end', fn: () => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
}

interface ClientRequest {
  on(event: 'error', fn: (e: Error) => void): void;
  end(body: string): void;
}

/** The part of node:http (and node:https, the same shape) the bridge's unary calls use. */
export interface HttpModule {
  Agent: new (options: { keepAlive: boolean }) => unknown;
  request(
    url: string,
    options: { method: string; headers: Record<string, string>; agent: unknown; signal: AbortSignal },
    onResponse: (res: IncomingMessage) => void,
  ): ClientRequest;
}

interface NodeProcess {
  getBuiltinModule(name: string): unknown;
}

const proc = process as unknown as NodeProcess;
const require = (proc.getBuiltinModule('node:module') as NodeModules).createRequire(import.meta.url);

export const grpc = require('@grpc/grpc-js') as GrpcJs;
export const protoLoader = require('@grpc/proto-loader') as ProtoLoader;
export const fileURLToPath = (proc.getBuiltinModule('node:url') as UrlModule).fileURLToPath;
export const nodeHttp = proc.getBuiltinModule('node:http') as HttpModule;
export const nodeHttps = proc.getBuiltinModule('node:https') as HttpModule;
