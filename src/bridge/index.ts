/**
 * The gRPC bridge: etcd's v3 gRPC API (KV, Watch, Lease, Cluster,
 * Maintenance, Auth, v3lock, v3election) served by a local Node process in
 * front of a durable-raft store, each call turned into calls on the store's
 * /v3 routes. For etcdctl and etcd's client libraries, unchanged.
 */
export { type BridgeHandle, type BridgeOptions, DEFAULT_LISTEN, parseListen, startBridge } from './server.ts';
