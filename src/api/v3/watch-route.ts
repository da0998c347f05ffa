/**
 * etcd's Watch service on the gateway: POST /v3/watch with a
 * `create_request` streams that watch's results, one JSON line each, as the
 * gateway does (the node writes them: see watch-frames.ts). A
 * `progress_request` answers the current revision once.
 */

import type { WatchSpec } from '../../node/watch-streams.ts';
import { needInterval, needRole } from '../commands.ts';
import type { App } from '../env.ts';
import { ETCD, EtcdError } from './etcd-errors.ts';
import { boolField, bytesField, intField, keyOf, listField, messageField } from './etcd-json.ts';
import { clusterIdOf, header, readMessage, streamed } from './gateway.ts';
import { memberId } from './ids.ts';
import { intervalOf } from './range.ts';
import { compactedLines } from './watch-frames.ts';

const FILTERS = ['NOPUT', 'NODELETE'] as const;

export function v3WatchRoutes(app: App): void {
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
    const create = messageField(m, 'create_request');
    const spec = specOf(create);
    needInterval(p, spec.start, spec.end, 'key');
    const config = c.get('config');
    if (intField(create, 'start_revision') === 1) {
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

/**
 * A WatchCreateRequest. etcd's start_revision counts one more than the
 * store's, and its revision 1 (the empty store) has no events: any start at
 * or below it is the store's first revision; 0 (or absent) is the next one.
 */
function specOf(r: Record<string, unknown>): Omit<WatchSpec, 'etcd'> {
  const key = keyOf(bytesField(r, 'key'), 'key');
  if (key === '') throw ETCD.emptyKey();
  const end = bytesField(r, 'range_end');
  const { start, end: stop } = intervalOf({
    key,
    rangeEnd: end.byteLength === 0 ? undefined : keyOf(end, 'range_end'),
  });
  const rev = intField(r, 'start_revision');
  const filters = { noPut: false, noDelete: false };
  for (const f of listField(r, 'filters')) {
    const name = typeof f === 'number' ? FILTERS[f] : FILTERS.find((x) => x === f);
    if (name === 'NOPUT') filters.noPut = true;
    else if (name === 'NODELETE') filters.noDelete = true;
    else throw EtcdError.badJson(`filters: unknown value ${JSON.stringify(f)}`);
  }
  return {
    start,
    end: stop,
    startRevision: rev <= 0 ? undefined : Math.max(1, rev - 1),
    prevKv: boolField(r, 'prev_kv'),
    progressNotify: boolField(r, 'progress_notify'),
    ...filters,
  };
}
