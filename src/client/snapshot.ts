/**
 * Backup, restore and clone: GET /v1/snapshot (a group's dump, streamed) and
 * POST /v1/groups/{name}/restore (a new group from a dump, streamed up).
 * The dump's format and its checks are src/dump's (readDump).
 */
import { chunksOf } from '../dump/index.ts';
import type { Transport } from './http.ts';

export interface SnapshotOptions {
  /** Dump the group as of this revision (default: its revision when the dump begins); CompactedError below the compaction point. */
  readonly revision?: number;
  /** Ends the stream. */
  readonly signal?: AbortSignal;
}

/** A dump on its way: the revision it is of, and its NDJSON bytes. */
export interface Snapshot {
  readonly revision: number;
  /** The dump as it comes; it may end with the store's error instead of its trailer: check it with readDump. */
  readonly body: ReadableStream<Uint8Array>;
}

export async function snapshot(t: Transport, o: SnapshotOptions = {}): Promise<Snapshot> {
  const res = await t.open(
    { method: 'GET', path: '/v1/snapshot', query: { revision: o.revision }, retry: 'read' },
    o.signal ?? new AbortController().signal,
  );
  const body = res.body;
  if (body === null) throw new TypeError('the store answered a dump without a body');
  return { revision: Number(res.headers.get('x-revision') ?? 0), body };
}

export interface RestoreOptions {
  /** The new group's voters: 3 (the default) or 5. */
  readonly size?: 3 | 5;
  /** Abandons the upload (the store then removes what it had restored). */
  readonly signal?: AbortSignal;
}

/** What a restore made. */
export interface RestoreResult {
  readonly name: string;
  readonly size: number;
  readonly state: string;
  readonly incarnation: number;
  /** Keys and leases in the new group. */
  readonly keys: number;
  readonly leases: number;
  /** The new group's revision at which its key space is the source's at `source.revision` (revisions are new). */
  readonly revision: number;
  readonly source: {
    readonly group: string;
    readonly revision: number;
    readonly takenAt: string;
    readonly keys: number;
    readonly sha256: string;
  };
  /** Leases that ran out while the restore ran, and the keys they took with them. */
  readonly expiredLeases: number;
  readonly expiredKeys: number;
}

interface RestoreJson {
  name: string;
  size: number;
  state: string;
  incarnation: number;
  restored: {
    keys: number;
    leases: number;
    revision: number;
    source: { group: string; revision: number; taken_at: string; keys: number; sha256: string };
    expired_leases: number;
    expired_keys: number;
  };
}

/** A group's name as a path segment (the store refuses anything else with a 400). */
const segment = (name: string) => encodeURIComponent(name);

/**
 * Creates group `name` from `dump`, streamed as it is read: on the store's
 * default-group API whatever group the client reaches. One attempt: a
 * refused or failed restore leaves no group, so it may simply be sent again.
 */
export async function restore(
  t: Transport,
  name: string,
  dump: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array,
  o: RestoreOptions = {},
): Promise<RestoreResult> {
  const body = dump instanceof Uint8Array || dump instanceof ReadableStream ? dump : streamOf(dump);
  const a = await t.upload(
    {
      method: 'POST',
      path: `/v1/groups/${segment(name)}/restore`,
      query: { size: o.size },
      retry: 'unkeyed',
      root: true,
    },
    body,
    o.signal,
  );
  const j = a.body as RestoreJson;
  const r = j.restored;
  return {
    name: j.name,
    size: j.size,
    state: j.state,
    incarnation: j.incarnation,
    keys: r.keys,
    leases: r.leases,
    revision: r.revision,
    source: {
      group: r.source.group,
      revision: r.source.revision,
      takenAt: r.source.taken_at,
      keys: r.source.keys,
      sha256: r.source.sha256,
    },
    expiredLeases: r.expired_leases,
    expiredKeys: r.expired_keys,
  };
}

/** An async source of chunks as a ReadableStream, read only as fast as it is sent. */
function streamOf(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = chunksOf(source);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await it.return(undefined);
    },
  });
}
