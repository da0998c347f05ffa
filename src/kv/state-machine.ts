/**
 * The replicated key-value state machine: applies committed entries to a
 * KvTable, serves local reads, and takes and installs snapshots.
 *
 * Determinism: the result of an entry and the writes it makes depend only on
 * the table's state and the entry's bytes (no clock, no randomness, no
 * options that differ between replicas), so every replica that applies the
 * same log holds the same state and gives the same answers.
 */

import type { ConfState, Index, Snapshot } from '../raft/index.ts';
import { decodeCommand, fingerprint, validateRangeQuery } from './codec.ts';
import type { ApplyItem, StateMachine } from './contract.ts';
import { execute, readRange, readsAtRevision } from './execute.ts';
import { rangeAt, stateAt } from './history-reads.ts';
import { compareKeys, resolveInterval, utf8Length } from './keys.ts';
import { decodeResult, decodeSnapshot, encodeResult, encodeSnapshot } from './snapshot.ts';
import type { KvTable } from './table.ts';
import {
  beforeRevision,
  type CommandEnvelope,
  type ErrorResult,
  type EventPosition,
  type KeyValue,
  type KvCommand,
  type KvEvent,
  type KvResult,
  type Lease,
  type RangeQuery,
  type RangeResult,
} from './types.ts';
import { KvDecodeError } from './validate.ts';

/**
 * Bounds of the idempotency records (Raft thesis §6.3). Part of the state
 * machine's definition: every replica of a cluster must use the same values,
 * or a retry could apply on one replica and not on another.
 */
export interface KvStateMachineOptions {
  /** The most records kept; the oldest goes first. Default 10,000. */
  readonly maxRequests?: number;
  /**
   * A record is dropped once the store revision is more than this past the
   * revision it applied at (the state machine has no clock: revisions stand
   * in for time). Default 100,000.
   */
  readonly requestRevisionWindow?: number;
  /**
   * Encoded results larger than this are not kept (a retry then gets
   * `result_unavailable`, never a second apply). Default 8 KiB, which bounds
   * the records at about 80 MB.
   */
  readonly maxResultBytes?: number;
}

export const DEFAULT_MAX_REQUESTS = 10_000;
export const DEFAULT_REQUEST_REVISION_WINDOW = 100_000;
export const DEFAULT_MAX_RESULT_BYTES = 8 * 1024;
/** A range page stops once its keys and values pass this: well within one RPC message. */
export const DEFAULT_MAX_RANGE_BYTES = 4 * 1024 * 1024;
const RANGE_PAGE_ROWS = 64;

const NO_BYTES = new Uint8Array(0);

/** A range read's answer with the revision it was served at. */
export interface RangeReadResult extends RangeResult {
  readonly revision: number;
}

export class KvStateMachine implements StateMachine<KvResult> {
  private readonly table: KvTable;
  private readonly maxRequests: number;
  private readonly requestRevisionWindow: number;
  private readonly maxResultBytes: number;
  /** Called with the events of each applied batch, oldest first, once its transaction has committed. */
  onEvents: ((events: readonly KvEvent[]) => void) | undefined;
  /** Called with the leases each applied batch granted or revoked (expired included), once it has committed. */
  onLeases: ((changes: readonly LeaseChange[]) => void) | undefined;
  /**
   * Called once a snapshot has replaced the state: the revisions it skipped
   * were never applied here, so no onEvents saw them (watchers must read them
   * from the history the snapshot brought).
   */
  onRestored: (() => void) | undefined;

  constructor(table: KvTable, opts: KvStateMachineOptions = {}) {
    this.table = table;
    this.maxRequests = opts.maxRequests ?? DEFAULT_MAX_REQUESTS;
    this.requestRevisionWindow = opts.requestRevisionWindow ?? DEFAULT_REQUEST_REVISION_WINDOW;
    this.maxResultBytes = opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  }

  applied(): Index {
    return this.table.meta().applied;
  }

  conf(): ConfState | undefined {
    return this.table.meta().conf;
  }

  /** The store revision: the number of applied commands that changed something. */
  revision(): number {
    return this.table.meta().revision;
  }

  /**
   * Applies a batch in one table transaction, with the new applied index and
   * conf state. Each command stands alone: a malformed one gives a
   * `bad_command` result and changes nothing, and the others still apply.
   * An item at or below applied() is skipped (a `stale_entry` result for a
   * command). Throws only if the items skip an index (a caller bug) or the
   * table fails; the transaction then leaves everything as it was.
   */
  apply(items: readonly ApplyItem[]): KvResult[] {
    if (items.length === 0) return [];
    const batch: Batch = { ...this.table.meta(), events: [], flushed: 0, leases: [] };
    const out = this.table.transaction(() => {
      let { applied, conf } = this.table.meta();
      const results: KvResult[] = [];
      for (const item of items) {
        if (item.index <= applied) {
          if (item.kind === 'command')
            results.push(error('stale_entry', `entry ${item.index} is at or below applied index ${applied}`));
          continue;
        }
        if (item.index !== applied + 1)
          throw new Error(`kv: entry ${item.index} follows applied index ${applied}: entries are missing`);
        applied = item.index;
        if (item.kind === 'conf') conf = item.conf;
        if (item.kind !== 'command') continue;
        const result = this.applyCommand(item.index, item.data, batch);
        // A retried request answers with its first result, whose revision is older: keep the larger.
        if (result.type !== 'error') batch.revision = Math.max(batch.revision, result.revision);
        results.push(result);
      }
      flush(this.table, batch);
      this.table.setMeta({ revision: batch.revision, applied, conf, compacted: batch.compacted });
      return results;
    });
    // After the commit: a listener never sees events of a batch that rolled back.
    if (batch.events.length > 0) this.onEvents?.(batch.events);
    if (batch.leases.length > 0) this.onLeases?.(batch.leases);
    return out;
  }

  /** The compaction point: reads and watches at a revision below it are refused. */
  compacted(): number {
    return this.table.meta().compacted;
  }

  /** Why the state as of `revision` cannot be read here, or undefined if it can. */
  unreadable(revision: number): 'compacted' | 'future_revision' | undefined {
    if (revision > this.revision()) return 'future_revision';
    return revision < this.compacted() ? 'compacted' : undefined;
  }

  /** The key's record as of `revision`; check unreadable(revision) first. */
  getAt(key: string, revision: number): KeyValue | undefined {
    return stateAt(this.table, key, revision);
  }

  /**
   * A range as of `revision` (see range() for paging); check
   * unreadable(revision) first. Its `revision` is the store's now, as etcd's
   * response header says.
   */
  rangeAt(query: RangeQuery, revision: number, maxBytes = DEFAULT_MAX_RANGE_BYTES): RangeReadResult {
    return { ...rangeAt(this.table, validateRangeQuery(query), revision, maxBytes), revision: this.revision() };
  }

  /**
   * Kept events after `after` (at most `limit`): what a watcher that has
   * seen everything up to `after` gets next. Check the compaction point first.
   */
  events(after: EventPosition, limit: number): KvEvent[] {
    return this.table.events(after, limit);
  }

  getLease(id: number): Lease | undefined {
    return this.table.getLease(id);
  }

  /** Leases in id order after `after`, at most `limit`. */
  leases(after = 0, limit?: number): Lease[] {
    return this.table.leases(after, limit);
  }

  /** The keys attached to lease `id`, in key order. */
  leaseKeys(id: number, limit?: number): string[] {
    return this.table.leaseKeys(id, limit);
  }

  /** The key's record as of applied(), if it exists. */
  get(key: string): KeyValue | undefined {
    return this.table.get(key);
  }

  /**
   * A range read as of applied(). Throws KvDecodeError if the query is
   * malformed. A page also ends once its keys and values pass `maxBytes` (at
   * least one record is returned), and the table is read a few rows at a
   * time, so a page of large values never sits in memory whole.
   */
  range(query: RangeQuery, maxBytes = DEFAULT_MAX_RANGE_BYTES): RangeReadResult {
    const q = validateRangeQuery(query);
    const { start, end } = resolveInterval(q);
    const empty = end !== undefined && compareKeys(start, end) >= 0;
    if (q.countOnly || q.keysOnly || empty) return { ...readRange(this.table, q), revision: this.revision() };
    const limit = q.limit === undefined || q.limit === 0 ? undefined : q.limit;
    const kvs: KeyValue[] = [];
    let bytes = 0;
    let next: string | undefined;
    let from = start;
    for (;;) {
      const page = this.table.range(from, end, RANGE_PAGE_ROWS);
      for (const kv of page) {
        const size = utf8Length(kv.key) + kv.value.byteLength;
        const full = (limit !== undefined && kvs.length >= limit) || (kvs.length > 0 && bytes + size > maxBytes);
        if (full) {
          next = kv.key;
          break;
        }
        kvs.push(kv);
        bytes += size;
      }
      const last = page[page.length - 1];
      if (next !== undefined || page.length < RANGE_PAGE_ROWS || !last) break;
      // The smallest key after `last` in byte order.
      from = `${last.key}\u0000`;
    }
    const more = next !== undefined;
    const count = more ? this.table.count(start, end) : kvs.length;
    return { kvs, count, more, ...(more ? { next } : {}), revision: this.revision() };
  }

  snapshot(): Uint8Array {
    const { revision, applied, conf, compacted } = this.table.meta();
    const events: KvEvent[] = [];
    for (let page = this.table.events(beforeRevision(compacted), 1024); page.length > 0; ) {
      events.push(...page);
      const last = page[page.length - 1] as KvEvent;
      page = this.table.events(last, 1024);
    }
    return encodeSnapshot({
      revision,
      applied,
      conf,
      compacted,
      kvs: this.table.range('', undefined),
      requests: this.table.requests(),
      events,
      leases: this.table.leases(),
    });
  }

  /**
   * Replaces the whole state with the snapshot's: applied() becomes
   * `meta.index` and conf() `meta.conf`. Throws KvDecodeError, changing
   * nothing, if the data is malformed or was taken at another index.
   */
  restore(snapshot: Snapshot): void {
    const data = decodeSnapshot(snapshot.data);
    if (data.applied !== snapshot.meta.index) {
      throw new KvDecodeError(`snapshot: data taken at index ${data.applied}, meta says ${snapshot.meta.index}`);
    }
    this.table.transaction(() => {
      this.table.clear();
      for (const kv of data.kvs) this.table.put(kv);
      for (const r of data.requests) this.table.putRequest(r);
      for (const l of data.leases) this.table.putLease(l);
      if (data.events.length > 0) this.table.appendEvents(data.events);
      this.table.setMeta({
        revision: data.revision,
        applied: snapshot.meta.index,
        conf: snapshot.meta.conf,
        compacted: data.compacted,
      });
    });
    this.onRestored?.();
  }

  private applyCommand(index: Index, data: Uint8Array, batch: Batch): KvResult {
    let env: CommandEnvelope;
    try {
      env = decodeCommand(data);
    } catch (e) {
      // Decoding is pure, so whatever it throws it throws on every replica.
      return error('bad_command', e instanceof Error ? e.message : String(e));
    }
    const { cmd } = env;
    // A compaction needs no idempotency record: applied twice, the second says `compacted`.
    if (cmd.type === 'compact') return this.compact(cmd.revision, batch);
    const revision = batch.revision;
    // A txn's read at a revision undoes the history after it: the batch's earlier events too.
    if (cmd.type === 'txn' && readsAtRevision(cmd)) flush(this.table, batch);
    const run = () => execute(this.table, cmd, revision, batch.events, index, batch.compacted);
    const id = env.requestId;
    if (id === undefined) return noteLeases(cmd, run(), batch);
    const fp = fingerprint(env.cmd);
    const seen = this.table.getRequest(id);
    if (seen) {
      if (seen.fingerprint !== fp)
        return error('request_id_reused', `request ${id} was applied before with another command`);
      if (seen.result.byteLength === 0)
        return error('result_unavailable', `request ${id} was applied at index ${seen.index}; its result was not kept`);
      return decodeResult(seen.result);
    }
    const result = noteLeases(cmd, run(), batch);
    const encoded = encodeResult(result);
    const kept = encoded.byteLength <= this.maxResultBytes ? encoded : NO_BYTES;
    // A failed command (a missing lease) is kept too: a retry must fail the same way.
    const after = result.type === 'error' ? revision : result.revision;
    this.table.putRequest({ id, index, revision: after, fingerprint: fp, result: kept });
    this.evictRequests(after);
    return result;
  }

  /** etcd's Compact: drops the history below `revision` (the batch's earlier events are flushed first). */
  private compact(revision: number, batch: Batch): KvResult {
    if (revision > batch.revision)
      return {
        ...error('future_revision', `revision ${revision} is past the store revision ${batch.revision}`),
        current: batch.revision,
      };
    if (revision <= batch.compacted)
      return {
        ...error('compacted', `revision ${revision} is at or below the compaction point ${batch.compacted}`),
        compacted: batch.compacted,
      };
    flush(this.table, batch);
    this.table.compactEvents(revision);
    batch.compacted = revision;
    return { type: 'compact', revision: batch.revision, compacted: revision };
  }

  /** Drops the oldest records past the count bound or the revision window. */
  private evictRequests(revision: number): void {
    for (;;) {
      const oldest = this.table.oldestRequest();
      if (oldest === undefined) return;
      const tooMany = this.table.requestCount() > this.maxRequests;
      const tooOld = oldest.revision + this.requestRevisionWindow < revision;
      if (!tooMany && !tooOld) return;
      this.table.deleteRequest(oldest.id);
    }
  }
}

/** A lease granted (with its TTL), checkpointed, or gone (revoked or expired), for the leader's lease clock. */
export type LeaseChange =
  | { readonly type: 'granted'; readonly id: number; readonly ttl: number }
  | { readonly type: 'checkpointed'; readonly id: number; readonly remaining: number }
  | { readonly type: 'revoked'; readonly id: number };

/** What applying a batch changes as it goes: the store revision, the compaction point, the events made. */
interface Batch {
  revision: number;
  compacted: number;
  readonly events: KvEvent[];
  /** How many of `events` are in the table already. */
  flushed: number;
  readonly leases: LeaseChange[];
}

/** Records the lease changes of a command that ran now (a retry's stored result changed nothing). */
function noteLeases(cmd: KvCommand, result: KvResult, batch: Batch): KvResult {
  if (result.type === 'leaseGrant') batch.leases.push({ type: 'granted', id: result.id, ttl: result.ttl });
  else if (result.type === 'leaseRevoke') batch.leases.push({ type: 'revoked', id: result.id });
  else if (result.type === 'leaseCheckpoint' && cmd.type === 'leaseCheckpoint')
    for (const c of cmd.checkpoints) batch.leases.push({ type: 'checkpointed', id: c.id, remaining: c.remaining });
  return result;
}

/** Appends the batch's events not yet in the table. */
function flush(table: KvTable, batch: Batch): void {
  if (batch.flushed === batch.events.length) return;
  table.appendEvents(batch.events.slice(batch.flushed));
  batch.flushed = batch.events.length;
}

function error(code: ErrorResult['error'], message: string): ErrorResult {
  return { type: 'error', error: code, message };
}
