/**
 * An etcd gRPC client for the bridge's tests: @grpc/grpc-js's client over
 * our own .proto files (so the protos are checked from the client's side
 * too), with the message objects in the same JSON mapping the bridge uses.
 */
import { LOADER_OPTIONS } from '../../src/bridge/protos.ts';

export interface Status {
  readonly code: number;
  readonly details: string;
}
export type Message = Record<string, unknown>;
export interface Duplex {
  write(m: Message): void;
  end(): void;
  on(event: 'data', fn: (m: Message) => void): void;
  on(event: 'error', fn: (e: Status) => void): void;
  on(event: 'end', fn: () => void): void;
  cancel(): void;
  /** Stops reading (gRPC's flow control then holds the server's writes back), and reads again. */
  pause(): void;
  resume(): void;
}
export interface ServerStream {
  on(event: 'data', fn: (m: Message) => void): void;
  on(event: 'error', fn: (e: Status) => void): void;
  on(event: 'end', fn: () => void): void;
  cancel(): void;
  /** Stops reading (gRPC's flow control then holds the server's writes back), and reads again. */
  pause(): void;
  resume(): void;
}
type UnaryMethod = (m: Message, ...rest: unknown[]) => void;
export interface EtcdClients {
  readonly kv: Record<'Range' | 'Put' | 'Txn', UnaryMethod>;
  readonly auth: Record<'Authenticate', UnaryMethod>;
  readonly election: { Observe(m: Message): ServerStream };
  /** Snapshot's `blob`s come as Buffers (`bytes: Buffer` for this service's client). */
  readonly maintenance: { Snapshot(m: Message, md?: unknown): ServerStream };
  readonly watch: { Watch(): Duplex };
  close(): void;
}

interface ProcessWithBuiltins {
  getBuiltinModule(name: string): unknown;
}
const { createRequire } = (process as unknown as ProcessWithBuiltins).getBuiltinModule('node:module') as {
  createRequire(from: string): (id: string) => unknown;
};
const require = createRequire(import.meta.url);
type ClientCtor = new (address: string, credentials: unknown) => Record<string, unknown> & { close(): void };
const grpc = require('@grpc/grpc-js') as {
  credentials: { createInsecure(): unknown };
  loadPackageDefinition(d: unknown): {
    etcdserverpb: { KV: ClientCtor; Watch: ClientCtor; Auth: ClientCtor; Maintenance: ClientCtor };
    v3electionpb: { Election: ClientCtor };
  };
  Metadata: new () => { set(key: string, value: string): void };
};
const loader = require('@grpc/proto-loader') as { loadSync(files: string[], o: Record<string, unknown>): unknown };

const pkg = grpc.loadPackageDefinition(
  loader.loadSync(['etcdserverpb/rpc.proto', 'v3electionpb/v3election.proto'], LOADER_OPTIONS),
);
/** The same protos with bytes as Buffers, for the snapshot's blobs. */
const binary = grpc.loadPackageDefinition(
  loader.loadSync(['etcdserverpb/rpc.proto'], {
    ...LOADER_OPTIONS,
    bytes: (globalThis as { Buffer?: unknown }).Buffer,
  }),
);

/** Metadata carrying `token` as etcd's clients send theirs. */
export function tokenMetadata(token: string): unknown {
  const md = new grpc.Metadata();
  md.set('token', token);
  return md;
}

export function etcdClients(port: number): EtcdClients {
  const address = `127.0.0.1:${port}`;
  const kv = new pkg.etcdserverpb.KV(address, grpc.credentials.createInsecure());
  const watch = new pkg.etcdserverpb.Watch(address, grpc.credentials.createInsecure());
  const auth = new pkg.etcdserverpb.Auth(address, grpc.credentials.createInsecure());
  const election = new pkg.v3electionpb.Election(address, grpc.credentials.createInsecure());
  const maintenance = new binary.etcdserverpb.Maintenance(address, grpc.credentials.createInsecure());
  const bind = (c: Record<string, unknown>, name: string) => (c[name] as (...a: unknown[]) => unknown).bind(c);
  return {
    kv: { Range: bind(kv, 'Range'), Put: bind(kv, 'Put'), Txn: bind(kv, 'Txn') } as EtcdClients['kv'],
    watch: { Watch: bind(watch, 'Watch') as () => Duplex },
    auth: { Authenticate: bind(auth, 'Authenticate') } as EtcdClients['auth'],
    election: { Observe: bind(election, 'Observe') as (m: Message) => ServerStream },
    maintenance: { Snapshot: bind(maintenance, 'Snapshot') as (m: Message, md?: unknown) => ServerStream },
    close() {
      maintenance.close();
      election.close();
      kv.close();
      watch.close();
      auth.close();
    },
  };
}

/** A unary call as a promise of its answer or its status; `token` is sent as etcd's clients send theirs. */
export function call(
  method: UnaryMethod,
  m: Message,
  token?: string,
): Promise<{ ok: true; m: Message } | { ok: false; e: Status }> {
  return new Promise((resolve) => {
    const done = (e: Status | null, r?: Message) => resolve(e ? { ok: false, e } : { ok: true, m: r ?? {} });
    if (token === undefined) return method(m, done);
    method(m, tokenMetadata(token), done);
  });
}
