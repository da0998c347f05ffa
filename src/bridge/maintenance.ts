/**
 * etcd's Maintenance service: Status is /v3's (the Raft leader's view);
 * Snapshot streams the group's dump (snapshot.ts: a durable-raft dump, not
 * etcd's bbolt file); the rest (alarms, defragmentation, hashes, leader
 * moves) answer Unimplemented, as /v3 does: the store is administered
 * through /v1.
 */
import type { Handler, WritableCall } from './grpc.ts';
import { snapshot } from './snapshot.ts';
import { type Bridge, forward, unimplemented } from './unary.ts';

const SERVICE = '/etcdserverpb.Maintenance';

export function maintenanceService(b: Bridge): Record<string, Handler> {
  return {
    Status: forward(b, '/v3/maintenance/status', false),
    Alarm: unimplemented(`${SERVICE}/Alarm`),
    Defragment: unimplemented(`${SERVICE}/Defragment`),
    Hash: unimplemented(`${SERVICE}/Hash`),
    HashKV: unimplemented(`${SERVICE}/HashKV`),
    MoveLeader: unimplemented(`${SERVICE}/MoveLeader`),
    Snapshot: (call: WritableCall) => snapshot(b, call),
  };
}
