/**
 * The directory of groups: one key per group (`groups/<name>`) in the
 * directory's own Raft group, so it is replicated and every read of it is
 * linearizable. A record changes only by compare-and-swap on its mod
 * revision, so two Workers creating or deleting one group at once cannot
 * both win. The key's create revision is the group's incarnation (names.ts).
 */
import { encodeCommand, type KeyValue, type KvCommand, type KvResult } from '../../kv/index.ts';
import type { ClusterClient } from '../cluster.ts';
import { readFailed, settle } from '../outcomes.ts';

/**
 * Where a group is in its life: being created, being restored from a dump
 * (it serves nothing until the whole dump is in), serving, or being deleted.
 */
export type GroupState = 'creating' | 'restoring' | 'active' | 'deleting';

/** A group's record, as stored (JSON). */
export interface GroupRecord {
  readonly name: string;
  readonly size: number;
  readonly members: readonly { readonly id: string; readonly location_hint: string | null }[];
  readonly state: GroupState;
  readonly created_at: string;
}

/** A record with its key's revisions. */
export interface StoredGroup {
  readonly record: GroupRecord;
  /** The create revision of its key: which objects are the group's (names.ts groupPrefix). */
  readonly incarnation: number;
  readonly modRevision: number;
}

const KEY_PREFIX = 'groups/';
const keyOf = (name: string) => `${KEY_PREFIX}${name}`;

export class GroupDirectory {
  private readonly client: ClusterClient;

  /** `client`: the directory's Raft group (names.ts directoryPrefix). */
  constructor(client: ClusterClient) {
    this.client = client;
  }

  /** The group's record, read linearizably; undefined if there is none. */
  async get(name: string): Promise<StoredGroup | undefined> {
    const r = await this.client.get(keyOf(name), 'linearizable');
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    return r.value ? stored(r.value) : undefined;
  }

  /** Up to `limit` groups in name order after `after`; `more` if there are others after them. */
  async list(after: string | undefined, limit: number): Promise<{ groups: StoredGroup[]; more: boolean }> {
    const start = after === undefined ? KEY_PREFIX : `${keyOf(after)}\0`;
    const r = await this.client.range({ start, prefix: KEY_PREFIX, limit }, 'linearizable');
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    return { groups: r.value.kvs.map(stored), more: r.value.more };
  }

  /** Records a new group; if one of that name exists already, returns it instead (created: false). */
  async create(record: GroupRecord): Promise<{ created: boolean; group: StoredGroup }> {
    const r = await this.propose({
      type: 'cas',
      key: keyOf(record.name),
      expect: { absent: true },
      value: encode(record),
    });
    if (r.type !== 'cas' || !r.current) throw new Error(`directory: unexpected result ${r.type}`);
    return { created: r.succeeded, group: stored(r.current) };
  }

  /** Replaces `g`'s record if no one changed it since `g` was read; undefined if someone did. */
  async update(g: StoredGroup, record: GroupRecord): Promise<StoredGroup | undefined> {
    const r = await this.propose({
      type: 'cas',
      key: keyOf(record.name),
      expect: { modRevision: g.modRevision },
      value: encode(record),
    });
    if (r.type !== 'cas') throw new Error(`directory: unexpected result ${r.type}`);
    return r.succeeded && r.current ? stored(r.current) : undefined;
  }

  /** Removes `g`'s record if no one changed it since `g` was read; false if someone did. */
  async remove(g: StoredGroup): Promise<boolean> {
    const key = keyOf(g.record.name);
    const r = await this.propose({
      type: 'txn',
      compare: [{ key, target: 'modRevision', op: '=', value: g.modRevision }],
      success: [{ type: 'delete', key }],
      failure: [],
    });
    if (r.type !== 'txn') throw new Error(`directory: unexpected result ${r.type}`);
    return r.succeeded;
  }

  /** Proposes with a request id of its own, so an unknown outcome is retried and applies at most once. */
  private async propose(cmd: KvCommand): Promise<Exclude<KvResult, { type: 'error' }>> {
    const bytes = encodeCommand({ requestId: `directory:${crypto.randomUUID()}`, cmd });
    const result = settle(await this.client.propose(bytes, true));
    if (result.type === 'error') throw new Error(`directory: ${result.error}: ${result.message}`);
    return result;
  }
}

function encode(record: GroupRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record));
}

function stored(kv: KeyValue): StoredGroup {
  const record = JSON.parse(
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(kv.value),
  ) as GroupRecord;
  return { record, incarnation: kv.createRevision, modRevision: kv.modRevision };
}
