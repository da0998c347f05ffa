/**
 * GET /v1/snapshot[?revision=N] (also /groups/{name}/v1/snapshot): the
 * group's dump as of revision N (default: its revision when the dump
 * begins), streamed as NDJSON in the format of src/dump: a header, each
 * lease a key names (before that key), every key, and a trailer with the
 * counts and a SHA-256 of every byte before it. Admin only, and not for a
 * token limited to key prefixes: a dump holds every key.
 *
 * The keys are read a page at a time (the range page size, at most 4 MiB
 * of values), each page a linearizable range read at revision N, so every
 * page is the same point in time and memory holds one page. Each page has a
 * deadline of its own: a dump outlives the per-request one. A page that
 * fails (revision N compacted meanwhile, no leader in time) ends the stream
 * with an `{"error":…}` line and no trailer.
 */
import { type DumpLease, DumpWriter, dumpErrorLine } from '../../dump/index.ts';
import type { KeyValue, RangeReadResult } from '../../kv/index.ts';
import { MAX_LEASE_STATUSES } from '../../node/raft-node.ts';
import type { ClusterClient } from '../cluster.ts';
import { forbidden, needRole } from '../commands.ts';
import type { App } from '../env.ts';
import { ApiError } from '../errors.ts';
import { kvJson, queryInt } from '../input.ts';
import { readFailed } from '../outcomes.ts';
import { queryOf } from '../request.ts';

export function snapshotRoutes(app: App): void {
  app.get('/v1/snapshot', async (c) => {
    const p = c.get('principal');
    needRole(p, 'admin');
    if (p.prefixes !== undefined)
      throw forbidden('a dump holds every key: it needs a token that is not limited to key prefixes');
    const asked = queryInt(queryOf(c.get('input'), ['revision']), 'revision', 0, Number.MAX_SAFE_INTEGER);
    const config = c.get('config');
    const takenAt = new Date().toISOString();
    // The first page fixes the revision, and a compacted or future one is answered with its status before any byte.
    const client = c.get('client');
    const first = await readPage(client, undefined, asked, config.maxRangeLimit);
    const revision = asked ?? first.revision;
    const stream = dumpStream({
      group: config.group,
      revision,
      takenAt,
      first,
      pageKeys: config.maxRangeLimit,
      client: () => client.withDeadline(Date.now() + config.requestTimeoutMs),
    });
    return c.body(stream, 200, {
      'Content-Type': 'application/x-ndjson',
      'Cache-Control': 'no-store',
      'X-Revision': String(revision),
    });
  });
}

interface DumpSpec {
  readonly group: string;
  readonly revision: number;
  readonly takenAt: string;
  readonly first: RangeReadResult;
  readonly pageKeys: number;
  /** The group's client with a fresh deadline: one per page. */
  readonly client: () => ClusterClient;
}

/** The dump as a pull stream: one chunk per page, read when the reader wants it. */
function dumpStream(s: DumpSpec): ReadableStream<Uint8Array> {
  const writer = new DumpWriter();
  const written = new Set<number>();
  let header = true;
  let page: RangeReadResult | undefined = s.first;
  let canceled = false;
  return new ReadableStream<Uint8Array>({
    // Each pull enqueues a chunk or closes the stream: a pull that does neither is not called again.
    async pull(controller) {
      try {
        if (header) {
          header = false;
          controller.enqueue(writer.header({ group: s.group, revision: s.revision, taken_at: s.takenAt }));
          return;
        }
        for (;;) {
          if (page === undefined) {
            controller.enqueue(writer.end());
            controller.close();
            return;
          }
          const kvs = page.kvs;
          const leases = await leaseLines(s.client(), kvs, written);
          page =
            page.more && page.next !== undefined
              ? await readPage(s.client(), page.next, s.revision, s.pageKeys)
              : undefined;
          if (canceled) return;
          if (leases.length > 0 || kvs.length > 0) {
            controller.enqueue(
              writer.page(
                leases,
                kvs.map((kv) => kvJson(kv)),
              ),
            );
            return;
          }
        }
      } catch (e) {
        const { code, message } = failure(e);
        if (canceled) return;
        controller.enqueue(dumpErrorLine(code, `${message}; the dump is incomplete`));
        controller.close();
      }
    },
    cancel() {
      canceled = true;
    },
  });
}

/** One page of keys from `start` (undefined: the first key) as of `revision` (undefined: now). */
async function readPage(
  client: ClusterClient,
  start: string | undefined,
  revision: number | undefined,
  limit: number,
): Promise<RangeReadResult> {
  const r = await client.range({ start, limit }, 'linearizable', revision);
  if (r.kind !== 'ok') throw readFailed(r, revision);
  return r.value;
}

/**
 * The lines of the leases `kvs` name that no line before named, as the
 * leader's clock tells them now (leases have no history): a lease gone
 * since is ttl 0, remaining 0.
 */
async function leaseLines(client: ClusterClient, kvs: readonly KeyValue[], written: Set<number>): Promise<DumpLease[]> {
  const ids: number[] = [];
  for (const kv of kvs)
    if (kv.lease !== undefined && !written.has(kv.lease)) {
      written.add(kv.lease);
      ids.push(kv.lease);
    }
  const out: DumpLease[] = [];
  for (let i = 0; i < ids.length; i += MAX_LEASE_STATUSES) {
    const asked = ids.slice(i, i + MAX_LEASE_STATUSES);
    const r = await client.leaseStatuses(asked);
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    const found = new Map(r.value.map((l) => [l.id, l]));
    for (const id of asked) {
      const l = found.get(id);
      out.push({ id: String(id), ttl: l?.grantedTtl ?? 0, remaining: l?.ttl ?? 0 });
    }
  }
  return out;
}

function failure(e: unknown): { code: string; message: string } {
  if (e instanceof ApiError) return { code: e.code, message: e.message };
  console.error('dump failed:', e);
  return { code: 'internal', message: 'internal error' };
}
