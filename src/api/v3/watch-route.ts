/**
 * etcd's Watch service on the gateway, in both of the forms etcd's gateway
 * serves it:
 * - POST /v3/watch with a `create_request` streams that watch's results,
 *   one JSON line each (the node writes them: see watch-frames.ts); a
 *   `progress_request` answers the current revision once;
 * - GET /v3/watch with `Upgrade: websocket` (grpc-gateway's websocket proxy,
 *   as etcd mounts it) is one WebSocket carrying many watches: each message
 *   in is one WatchRequest, each message out one `{"result":{…}}` (or an
 *   `{"error":{…}}` for a bad message). The Worker forwards the upgrade to a
 *   replica, which serves the socket (src/node/watch-sockets-v3.ts).
 * Both need the read role; each watch's keys are checked against the
 * token's prefixes as it is created.
 */

import { needInterval, needRole } from '../commands.ts';
import type { App } from '../env.ts';
import { ETCD, EtcdError, GRPC } from './etcd-errors.ts';
import { messageField } from './etcd-json.ts';
import { clusterIdOf, header, readMessage, streamed } from './gateway.ts';
import { memberId } from './ids.ts';
import { compactedLines } from './watch-frames.ts';
import { watchCreateOf } from './watch-request.ts';

export function v3WatchRoutes(app: App): void {
  app.get('/v3/watch', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    // grpc-gateway's answer to a method its route does not take.
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket')
      throw new EtcdError(GRPC.unimplemented, 'Method Not Allowed');
    const config = c.get('config');
    const res = await c
      .get('client')
      .watchSocket(p, { kind: 'v3', clusterId: clusterIdOf(c), clusterPrefix: config.clusterPrefix });
    if (!res) throw ETCD.noLeader();
    return res;
  });

  app.post('/v3/watch', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    const m = await readMessage(c);
    const client = c.get('client');
    if (Object.hasOwn(m, 'progress_request')) {
      const r = await client.range({ countOnly: true }, 'linearizable');
      if (r.kind !== 'ok') throw ETCD.noLeader();
      const line = { result: { header: header(c, r.member, r.term, r.revision), watch_id: '-1' } };
      return c.body(`${JSON.stringify(line)}\n`, 200, { 'Content-Type': 'application/json' });
    }
    if (!Object.hasOwn(m, 'create_request')) throw EtcdError.invalid('durable-raft: expected a create_request');
    const { spec, etcdStart } = watchCreateOf(messageField(m, 'create_request'));
    needInterval(p, spec.start, spec.end, 'key');
    const config = c.get('config');
    if (etcdStart === 1) {
      // etcd's revision 1 is the store's 0, which a watch cannot start at: ask whether any compaction passed it.
      const at0 = await client.range({ countOnly: true }, 'linearizable', 0);
      if (at0.kind === 'compacted') {
        const now = await client.range({ countOnly: true }, 'linearizable');
        if (now.kind !== 'ok') throw ETCD.noLeader();
        const ctx = {
          clusterId: clusterIdOf(c),
          memberId: memberId(config.clusterPrefix, now.member),
          term: () => now.term,
          compacted: () => at0.compacted,
        };
        return streamed(compactedLines(ctx, now.revision, at0.compacted));
      }
    }
    const out = await client.watch({
      ...spec,
      etcd: { clusterId: clusterIdOf(c), clusterPrefix: config.clusterPrefix },
    });
    if (out.kind === 'unavailable') throw ETCD.noLeader();
    if (out.kind === 'compacted') {
      const ctx = {
        clusterId: clusterIdOf(c),
        memberId: memberId(config.clusterPrefix, out.member),
        term: () => 0,
        compacted: () => 0,
      };
      return streamed(compactedLines(ctx, out.revision, out.compacted));
    }
    return streamed(out.stream);
  });
}
