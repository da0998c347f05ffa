/**
 * The load generator's gRPC side (`target: 'grpc'`): etcd's KV service as
 * etcd's clients call it, through the bridge (src/bridge), with
 * @grpc/grpc-js over our own proto/ files. One channel carries every
 * client's calls, as clientv3 multiplexes its calls on one connection.
 * Messages use the bridge's JSON mapping: bytes in base64, 64-bit integers
 * as decimal strings.
 */
import { createRequire } from 'node:module';
import { LOADER_OPTIONS } from '../src/bridge/protos.ts';

/** One call's outcome: ok, or why not (a status's code and details). */
export type GrpcOutcome = { readonly ok: true } | { readonly ok: false; readonly why: string };

export interface GrpcKv {
  put(key: string, value: string): Promise<GrpcOutcome>;
  range(key: string, serializable: boolean): Promise<GrpcOutcome>;
  close(): void;
}

type Callback = (e: { code: number; details: string } | null) => void;
type Unary = (m: Record<string, unknown>, cb: Callback) => void;
interface KvClient {
  Put: Unary;
  Range: Unary;
  close(): void;
}

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js') as {
  credentials: { createInsecure(): unknown };
  loadPackageDefinition(d: unknown): {
    etcdserverpb: { KV: new (address: string, credentials: unknown) => KvClient };
  };
};
const loader = require('@grpc/proto-loader') as { loadSync(files: string[], o: Record<string, unknown>): unknown };

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A KV client of the etcd gRPC API at `address` (host:port). */
export function grpcKv(address: string): GrpcKv {
  const pkg = grpc.loadPackageDefinition(loader.loadSync(['etcdserverpb/rpc.proto'], LOADER_OPTIONS));
  const kv = new pkg.etcdserverpb.KV(address, grpc.credentials.createInsecure());
  const call = (method: Unary, m: Record<string, unknown>): Promise<GrpcOutcome> =>
    new Promise((resolve) =>
      method.call(kv, m, (e) => resolve(e ? { ok: false, why: `grpc ${e.code} ${e.details}` } : { ok: true })),
    );
  return {
    put: (key, value) => call(kv.Put, { key: b64(key), value: b64(value) }),
    range: (key, serializable) => call(kv.Range, { key: b64(key), ...(serializable ? { serializable } : {}) }),
    close: () => kv.close(),
  };
}
