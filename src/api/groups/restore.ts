/**
 * POST /v1/groups/{name}/restore?size=3|5 (admin, a token not limited to
 * groups, on the default group's API, as the other /v1/groups routes): a
 * new group from a dump (GET /v1/snapshot, format in src/dump), sent as the
 * request body and read as a stream, a line at a time.
 *
 * The group is recorded as `restoring`, so it serves nothing (503
 * group_not_ready) until the whole dump is in. Its leases are granted with
 * their ids and the TTL they had left (at least the minimum); its keys are
 * written in batches of plain puts (txns, each command far below
 * MAX_COMMAND_BYTES), so their revisions are the new group's own. The
 * trailer (counts and SHA-256) is checked at the end, and only then is the
 * group made active. A dump that is not whole and sound, or a write that
 * fails, removes the group again (its members' storage, as DELETE does):
 * 400 `bad_dump`, or 503 `restore_failed`, and the name is free again.
 */

import { chunksOf, DumpError, type DumpHeader, type DumpLine, DumpReader, readDump } from '../../dump/index.ts';
import {
  compareKeys,
  encodeCommand,
  type KvCommand,
  type KvResult,
  MAX_LEASE_TTL,
  MAX_TXN_OPS,
  type PutCommand,
  type TxnOp,
  utf8Length,
} from '../../kv/index.ts';
import { ClusterClient } from '../cluster.ts';
import type { ApiConfig } from '../config.ts';
import type { App } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { checkKey, leaseIdOf, nat, obj, queryInt, valueField } from '../input.ts';
import { MAX_COMMAND_BYTES, readFailed, settle } from '../outcomes.ts';
import { queryOf } from '../request.ts';
import type { GroupRecord, StoredGroup } from './directory.ts';
import { GROUP_SIZES, memberIds } from './names.ts';
import { administering, destroyMembers, groupRestoring, nameParam, recordJson, startMembers } from './routes.ts';
import { addressOf, directoryOf, forgetKnownGroup } from './routing.ts';

/** Puts in one command: nested txns of MAX_TXN_OPS puts each (etcd allows a txn in a txn). */
const PUTS_PER_COMMAND = 8 * MAX_TXN_OPS;
/** A command's keys and values at most this large (one larger value goes alone): well under MAX_COMMAND_BYTES. */
const BYTES_PER_COMMAND = 512 * 1024;
/** What a put adds to a command besides its key and value (an estimate; the encoded size is checked). */
const PUT_OVERHEAD_BYTES = 32;

export function restoreRoutes(app: App): void {
  app.post('/v1/groups/:name/restore', async (c) => {
    const config = administering(c);
    const q = queryOf(c.get('input'), ['size']);
    const name = nameParam(c, false);
    const size = queryInt(q, 'size', 1, 99) ?? 3;
    if (!GROUP_SIZES.includes(size)) throw badRequest('size', `expected one of ${GROUP_SIZES.join(', ')}`);
    const reader = new DumpReader();
    const lines = readDump(bodyChunks(c.req.raw.body), reader);
    try {
      // The header first: a body that is no dump creates nothing.
      const first = await refusingBadDumps(name, () => lines.next());
      if (first.done || first.value.kind !== 'header') throw new Error('restore: a dump reader gave no header');
      const r = new Restore(c.env.RAFT_NODE, config, name, first.value.header);
      const g = await r.create(size);
      try {
        return c.json(await r.fill(g, lines, reader), 201);
      } catch (e) {
        throw await r.undo(g, e);
      }
    } finally {
      await lines.return(undefined);
    }
  });
}

/** The body's bytes; a body that breaks off is a dump cut short. */
async function* bodyChunks(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Uint8Array, void, undefined> {
  if (body === null) return;
  try {
    yield* chunksOf(body);
  } catch (e) {
    console.warn('restore: reading the body failed:', e);
    throw new DumpError('the body broke off before the dump ended (truncated)');
  }
}

function badDump(name: string, e: DumpError, note = ''): ApiError {
  return new ApiError(400, 'bad_dump', `the dump is refused: ${e.message}; group ${name} was not created${note}`);
}

async function refusingBadDumps<T>(name: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (e) {
    throw e instanceof DumpError ? badDump(name, e) : e;
  }
}

/** One restore: the new group's record, then its leases and keys, then the check and the switch to active. */
class Restore {
  private readonly ns: DurableObjectNamespace;
  private readonly config: ApiConfig;
  private readonly name: string;
  private readonly source: DumpHeader;

  constructor(ns: DurableObjectNamespace, config: ApiConfig, name: string, source: DumpHeader) {
    this.ns = ns;
    this.config = config;
    this.name = name;
    this.source = source;
  }

  private deadline(): number {
    return Date.now() + this.config.requestTimeoutMs;
  }

  private directory() {
    return directoryOf(this.ns, this.config, this.deadline());
  }

  /** The group's client with a fresh deadline: a restore outlives the per-request one. */
  private client(g: StoredGroup): ClusterClient {
    const a = addressOf(this.config, g);
    return new ClusterClient(this.ns, a.members, a.prefix, this.deadline());
  }

  /** Records the group as restoring: 409 if the name is taken (by a group, or by a restore under way). */
  async create(size: number): Promise<StoredGroup> {
    const record: GroupRecord = {
      name: this.name,
      size,
      members: memberIds(size).map((id) => ({ id, location_hint: null })),
      state: 'restoring',
      created_at: new Date().toISOString(),
    };
    const { created, group } = await this.directory().create(record);
    if (!created) {
      if (group.record.state === 'restoring') throw groupRestoring(this.name);
      throw new ApiError(409, 'group_exists', `group ${this.name} exists: restore into a new name`, {
        group: recordJson(group),
      });
    }
    return group;
  }

  /** Starts the group, writes the dump into it, checks its trailer, and makes the group active. */
  async fill(
    g: StoredGroup,
    lines: AsyncGenerator<DumpLine, void, undefined>,
    reader: DumpReader,
  ): Promise<Record<string, unknown>> {
    await startMembers(this.client(g), this.config, g);
    // A read barrier on a member makes it campaign at once, so the group need not wait out an election timeout.
    const first = this.client(g);
    if (!(await first.barrier(g.record.members[0]?.id ?? '')) && !(await first.findLeader()))
      throw new ApiError(503, 'group_not_ready', `group ${this.name} elected no leader in time`);
    const w = new GroupWriter(() => this.client(g), this.config);
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      const line = next.value;
      if (line.kind === 'lease') await w.lease(leaseOf(line.lease, reader.line));
      else if (line.kind === 'kv') await w.key(keyOf(line.kv, reader.line, this.config.maxValueBytes));
    }
    // The reader has checked the trailer: the dump is whole.
    await w.flush();
    const end = reader.end;
    const r = await this.client(g).range({ countOnly: true }, 'linearizable');
    if (r.kind !== 'ok') throw readFailed(r, undefined);
    const active = await this.directory().update(g, { ...g.record, state: 'active' });
    if (!active) throw new ApiError(409, 'group_changed', `group ${this.name} changed while it was restored`);
    forgetKnownGroup(this.config, this.name);
    return {
      ...recordJson(active),
      restored: {
        keys: r.value.count,
        leases: w.leases,
        // Revisions are the new group's: its key space at `revision` is the source's at source.revision.
        revision: r.value.revision,
        source: {
          group: this.source.group,
          revision: this.source.revision,
          taken_at: this.source.taken_at,
          keys: end?.keys,
          sha256: end?.sha256,
        },
        // Leases that ran out while the restore ran, and their keys: gone, as they are in the source by now.
        expired_leases: w.expired.size,
        expired_keys: w.expiredKeys,
      },
    };
  }

  /** Removes the group after `e` cut the restore short; the error to answer with. */
  async undo(g: StoredGroup, e: unknown): Promise<unknown> {
    const removed = await this.remove(g);
    const note = removed ? '' : `; it could not be removed yet: DELETE /v1/groups/${this.name} finishes that`;
    if (e instanceof DumpError) return badDump(this.name, e, note);
    if (e instanceof ApiError && (e.status === 503 || e.status === 504))
      return new ApiError(
        503,
        'restore_failed',
        `restoring group ${this.name} failed (${e.message}); ${removed ? 'the group was removed: try again' : note.slice(2)}`,
        {},
        { 'Retry-After': '1' },
      );
    if (!(e instanceof ApiError)) console.error(`restore of group ${this.name} failed:`, e);
    return e;
  }

  /** Deletes `g` as DELETE /v1/groups/{name} does (unless it is gone already); false if that failed. */
  private async remove(g: StoredGroup): Promise<boolean> {
    try {
      const dir = this.directory();
      let now = await dir.get(this.name);
      if (now === undefined || now.incarnation !== g.incarnation) return true;
      if (now.record.state !== 'deleting') {
        now = await dir.update(now, { ...now.record, state: 'deleting' });
        if (now === undefined) return false;
      }
      forgetKnownGroup(this.config, this.name);
      await destroyMembers(this.client(now), now);
      const removed = await this.directory().remove(now);
      forgetKnownGroup(this.config, this.name);
      return removed;
    } catch (e) {
      console.warn(`restore: removing group ${this.name} failed:`, e);
      return false;
    }
  }
}

/** A lease line: `{"id","ttl","remaining"}`. */
interface LeaseLine {
  readonly id: number;
  readonly ttl: number;
  readonly remaining: number;
}

/** A key line, as the restore writes it. */
interface KeyLine {
  readonly key: string;
  readonly value: Uint8Array;
  readonly lease: number | undefined;
}

/** What a line holds, checked as the API checks a request: 400 bad_dump naming the line. */
function asDumpLine<T>(line: number, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof ApiError) throw new DumpError(`line ${line}: ${e.message}`);
    throw e;
  }
}

function leaseOf(o: Readonly<Record<string, unknown>>, line: number): LeaseLine {
  return asDumpLine(line, () => {
    const l = obj(o, 'lease', ['id', 'ttl', 'remaining']);
    const id = leaseIdOf(l.id, 'lease.id');
    if (id === undefined) throw badRequest('lease.id', 'expected a lease id above 0');
    const ttl = nat(l.ttl, 'lease.ttl');
    const remaining = nat(l.remaining, 'lease.remaining');
    if (ttl > MAX_LEASE_TTL || remaining > ttl)
      throw badRequest('lease', `expected remaining <= ttl <= ${MAX_LEASE_TTL}`);
    return { id, ttl, remaining };
  });
}

function keyOf(o: Readonly<Record<string, unknown>>, line: number, maxValueBytes: number): KeyLine {
  return asDumpLine(line, () => {
    const kv = obj(o, 'kv', ['key', 'value', 'value_base64', 'create_revision', 'mod_revision', 'version', 'lease']);
    const key = checkKey(kv.key, 'kv.key');
    const value = valueField(kv, 'kv', maxValueBytes) as Uint8Array;
    for (const f of ['create_revision', 'mod_revision', 'version'] as const)
      if (kv[f] !== undefined) nat(kv[f], `kv.${f}`);
    const lease = kv.lease === undefined ? undefined : leaseIdOf(kv.lease, 'kv.lease');
    return { key, value, lease };
  });
}

/**
 * Writes a dump's leases and keys into the new group: each lease a grant
 * (its id, the TTL it had left, at least the minimum), the keys a batch of
 * puts at a time, each batch one command with a request id of its own (an
 * outcome left unknown is retried and applies at most once).
 */
class GroupWriter {
  private readonly client: () => ClusterClient;
  private readonly minLeaseTtl: number;
  private batch: PutCommand[] = [];
  private batchBytes = 0;
  private lastKey: string | undefined;
  private readonly declared = new Set<number>();
  leases = 0;
  /** Leases that ran out before their keys were written. */
  readonly expired = new Set<number>();
  expiredKeys = 0;

  constructor(client: () => ClusterClient, config: ApiConfig) {
    this.client = client;
    this.minLeaseTtl = config.minLeaseTtl;
  }

  async lease(l: LeaseLine): Promise<void> {
    if (this.declared.has(l.id)) throw new DumpError(`lease ${l.id} is given twice`);
    this.declared.add(l.id);
    const ttl = Math.min(MAX_LEASE_TTL, Math.max(l.remaining, this.minLeaseTtl));
    const r = await this.propose({ type: 'leaseGrant', id: l.id, ttl });
    if (r.type === 'error') throw new Error(`restore: lease ${l.id}: ${r.error}: ${r.message}`);
    this.leases++;
  }

  async key(k: KeyLine): Promise<void> {
    if (this.lastKey !== undefined && compareKeys(k.key, this.lastKey) <= 0)
      throw new DumpError(`key ${JSON.stringify(k.key)} is out of order (a dump is in key order, each key once)`);
    this.lastKey = k.key;
    if (k.lease !== undefined && !this.declared.has(k.lease))
      throw new DumpError(`key ${JSON.stringify(k.key)} names lease ${k.lease}, which no line before it gives`);
    if (k.lease !== undefined && this.expired.has(k.lease)) {
      this.expiredKeys++;
      return;
    }
    const bytes = utf8Length(k.key) + k.value.byteLength + PUT_OVERHEAD_BYTES;
    if (this.batch.length >= PUTS_PER_COMMAND || (this.batch.length > 0 && this.batchBytes + bytes > BYTES_PER_COMMAND))
      await this.flush();
    this.batch.push({ type: 'put', key: k.key, value: k.value, ...(k.lease === undefined ? {} : { lease: k.lease }) });
    this.batchBytes += bytes;
  }

  /** Writes the batch. A lease that ran out meanwhile takes its keys with it: they are left out, as it deleted them. */
  async flush(): Promise<void> {
    while (this.batch.length > 0) {
      const r = await this.propose(txnOf(this.batch));
      if (r.type === 'error' && r.error === 'lease_not_found' && r.lease !== undefined && this.declared.has(r.lease)) {
        const gone = r.lease;
        this.expired.add(gone);
        const before = this.batch.length;
        this.batch = this.batch.filter((p) => p.lease !== gone);
        this.expiredKeys += before - this.batch.length;
        continue;
      }
      if (r.type === 'error') throw new Error(`restore: a batch of keys: ${r.error}: ${r.message}`);
      this.batch = [];
      this.batchBytes = 0;
    }
  }

  private async propose(cmd: KvCommand): Promise<KvResult> {
    const bytes = encodeCommand({ requestId: `restore:${crypto.randomUUID()}`, cmd });
    if (bytes.byteLength > MAX_COMMAND_BYTES)
      throw new Error(`restore: a command of ${bytes.byteLength} bytes is over ${MAX_COMMAND_BYTES}`);
    const r = settle(await this.client().propose(bytes, true));
    // A retry of a command that applied, whose result was too large to keep: it applied.
    if (r.type === 'error' && r.error === 'result_unavailable')
      return { type: 'txn', succeeded: true, revision: 0, results: [] };
    return r;
  }
}

/** One command of puts: a txn, of nested txns of at most MAX_TXN_OPS puts each when there are more. */
function txnOf(puts: readonly PutCommand[]): KvCommand {
  if (puts.length <= MAX_TXN_OPS) return { type: 'txn', compare: [], success: puts, failure: [] };
  const nested: TxnOp[] = [];
  for (let i = 0; i < puts.length; i += MAX_TXN_OPS)
    nested.push({ type: 'txn', compare: [], success: puts.slice(i, i + MAX_TXN_OPS), failure: [] });
  return { type: 'txn', compare: [], success: nested, failure: [] };
}
