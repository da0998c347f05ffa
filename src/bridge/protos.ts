/**
 * etcd's services, loaded from our .proto files (proto/, written from etcd
 * 3.4's API reference). The loader's options make each decoded request the
 * protobuf JSON mapping that etcd's gateway (and so /v3) reads: snake_case
 * names as written, bytes in base64, 64-bit integers as decimal strings,
 * enums by name, and fields at their zero value left out. The same mapping
 * read back (protobufjs's fromObject) turns a /v3 answer into the response.
 */
import { fileURLToPath, protoLoader, type ServiceDefinition } from './grpc.ts';

const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));

const FILES = [
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'mvccpb/kv.proto',
  'authpb/auth.proto',
];

/**
 * The loader options: the message objects are /v3's JSON. Exported for the
 * gRPC clients of the tests and the bench, which read and write messages as
 * the bridge does.
 */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: String,
  defaults: false,
  oneofs: false,
  includeDirs: [PROTO_ROOT],
};

/** The services the bridge serves, by etcd's full names. */
export interface EtcdServices {
  readonly KV: ServiceDefinition;
  readonly Watch: ServiceDefinition;
  readonly Lease: ServiceDefinition;
  readonly Cluster: ServiceDefinition;
  readonly Maintenance: ServiceDefinition;
  readonly Auth: ServiceDefinition;
  readonly Lock: ServiceDefinition;
  readonly Election: ServiceDefinition;
}

let loaded: EtcdServices | undefined;

/** Loads the .proto files once. */
export function etcdServices(): EtcdServices {
  if (loaded) return loaded;
  const defs = protoLoader.loadSync(FILES, LOADER_OPTIONS);
  const service = (name: string): ServiceDefinition => {
    const d = defs[name];
    if (d === undefined) throw new Error(`proto/: no service ${name}`);
    return d as ServiceDefinition;
  };
  loaded = {
    KV: service('etcdserverpb.KV'),
    Watch: service('etcdserverpb.Watch'),
    Lease: service('etcdserverpb.Lease'),
    Cluster: service('etcdserverpb.Cluster'),
    Maintenance: service('etcdserverpb.Maintenance'),
    Auth: service('etcdserverpb.Auth'),
    Lock: service('v3lockpb.Lock'),
    Election: service('v3electionpb.Election'),
  };
  return loaded;
}
