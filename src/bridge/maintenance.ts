/**
 * etcd's Maintenance service: Status is /v3's (the Raft leader's view); the
 * rest (alarms, defragmentation, hashes, snapshots, leader moves) answer
 * Unimplemented, as /v3 does: the store is administered through /v1.
 */
import { type Handler, Status, type WritableCall } from './grpc.ts';
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
    Snapshot: (call: WritableCall) =>
      call.emit('error', {
        code: Status.UNIMPLEMENTED,
        details: `unknown method ${SERVICE}/Snapshot: not implemented by durable-raft`,
      }),
  };
}
