/**
 * The state machine's snapshot bytes and its stored results, in msgpack.
 * A snapshot is validated completely before any of it is installed.
 */
import { decode, encode } from '@msgpack/msgpack';
import type { ConfState, Index } from '../raft/index.ts';
import { compareKeys } from './keys.ts';
import type { KeyValue, KvEvent, KvResult, Lease, RequestRecord } from './types.ts';
import { MAX_LEASE_TTL, MAX_REQUEST_ID_LENGTH } from './types.ts';
import { array, bytes, KvDecodeError, key, leaseId, nat, record, str } from './validate.ts';

/**
 * Bumped on any incompatible change of the snapshot layout. v2 added the
 * history (events, compacted); v3 the leases, and a record's lease as a
 * sixth tuple field (left out when it has none).
 */
export const SNAPSHOT_VERSION = 3;

/** Everything a snapshot holds: the whole replicated state as of `applied`. */
export interface KvSnapshotData {
  readonly revision: number;
  readonly applied: Index;
  readonly conf: ConfState | undefined;
  /** In key order. */
  readonly kvs: readonly KeyValue[];
  /** In index order. */
  readonly requests: readonly RequestRecord[];
  /** The compaction point; `events` holds every event at or above it. */
  readonly compacted: number;
  /** In (revision, seq) order. */
  readonly events: readonly KvEvent[];
  /** In id order. */
  readonly leases: readonly Lease[];
}

/** `[key, value, createRevision, modRevision, version, lease?]`: the wire form of a record (also in history segments). */
export function kvTuple(kv: KeyValue): unknown[] {
  const t: unknown[] = [kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version];
  if (kv.lease !== undefined) t.push(kv.lease);
  return t;
}

export function encodeSnapshot(s: KvSnapshotData): Uint8Array {
  return encode(
    {
      v: SNAPSHOT_VERSION,
      revision: s.revision,
      applied: s.applied,
      conf: s.conf ? { voters: s.conf.voters, learners: s.conf.learners } : undefined,
      kvs: s.kvs.map(kvTuple),
      requests: s.requests.map((r) => [r.id, r.index, r.revision, r.fingerprint, r.result]),
      compacted: s.compacted,
      // A delete's kv is the key and its revision: the rest is known.
      events: s.events.map((e) => [
        e.type === 'put' ? kvTuple(e.kv) : e.kv.key,
        e.revision,
        e.seq,
        e.prev ? kvTuple(e.prev) : null,
      ]),
      leases: s.leases.map((l) => [l.id, l.ttl, l.remaining]),
    },
    { ignoreUndefined: true },
  );
}

/** Decodes and checks a snapshot: types, key order, revisions within bounds. Throws KvDecodeError. */
export function decodeSnapshot(data: Uint8Array): KvSnapshotData {
  let raw: unknown;
  try {
    raw = decode(data);
  } catch (e) {
    throw new KvDecodeError(`snapshot: not msgpack: ${(e as Error).message}`);
  }
  const o = record(raw, 'snapshot', [
    'v',
    'revision',
    'applied',
    'conf',
    'kvs',
    'requests',
    'compacted',
    'events',
    'leases',
  ]);
  if (o.v !== SNAPSHOT_VERSION && o.v !== 2 && o.v !== 1)
    throw new KvDecodeError(`snapshot: unsupported version ${String(o.v)}`);
  const revision = nat(o.revision, 'snapshot.revision');
  const applied = nat(o.applied, 'snapshot.applied');
  const conf = o.conf === undefined ? undefined : confState(o.conf, 'snapshot.conf');
  const kvs = array(o.kvs, 'snapshot.kvs', Number.MAX_SAFE_INTEGER).map((e, i) =>
    keyValue(e, `snapshot.kvs[${i}]`, revision),
  );
  for (let i = 1; i < kvs.length; i++) {
    if (compareKeys((kvs[i - 1] as KeyValue).key, (kvs[i] as KeyValue).key) >= 0)
      throw new KvDecodeError(`snapshot.kvs[${i}]: keys out of order`);
  }
  const requests = array(o.requests, 'snapshot.requests', Number.MAX_SAFE_INTEGER).map((e, i) =>
    requestRecord(e, `snapshot.requests[${i}]`),
  );
  let last = 0;
  for (const [i, r] of requests.entries()) {
    if (r.index <= last || r.index > applied || r.revision > revision)
      throw new KvDecodeError(`snapshot.requests[${i}]: index or revision out of order`);
    last = r.index;
  }
  // A v1 snapshot has no history: it begins after its revision.
  if (o.v === 1) return { revision, applied, conf, kvs, requests, compacted: revision + 1, events: [], leases: [] };
  const compacted = nat(o.compacted, 'snapshot.compacted');
  if (compacted > revision + 1) throw new KvDecodeError('snapshot.compacted: past the revision');
  const events = array(o.events, 'snapshot.events', Number.MAX_SAFE_INTEGER).map((e, i) =>
    event(e, `snapshot.events[${i}]`, revision),
  );
  let prev: KvEvent | undefined;
  for (const [i, e] of events.entries()) {
    const ordered =
      prev === undefined || e.revision > prev.revision || (e.revision === prev.revision && e.seq > prev.seq);
    if (!ordered || e.revision < compacted) throw new KvDecodeError(`snapshot.events[${i}]: out of order or compacted`);
    prev = e;
  }
  if (o.v === 2) return { revision, applied, conf, kvs, requests, compacted, events, leases: [] };
  const leases = array(o.leases, 'snapshot.leases', Number.MAX_SAFE_INTEGER).map((l, i) =>
    leaseRecord(l, `snapshot.leases[${i}]`),
  );
  const ids = new Set<number>();
  for (const [i, l] of leases.entries()) {
    if (i > 0 && l.id <= (leases[i - 1] as Lease).id) throw new KvDecodeError(`snapshot.leases[${i}]: out of order`);
    ids.add(l.id);
  }
  for (const [i, kv] of kvs.entries()) {
    if (kv.lease !== undefined && !ids.has(kv.lease))
      throw new KvDecodeError(`snapshot.kvs[${i}].lease: no such lease ${kv.lease}`);
  }
  return { revision, applied, conf, kvs, requests, compacted, events, leases };
}

/** `[id, ttl, remaining]`. */
function leaseRecord(raw: unknown, at: string): Lease {
  const t = array(raw, at, 3);
  if (t.length !== 3) throw new KvDecodeError(`${at}: expected [id, ttl, remaining]`);
  const id = leaseId(t[0], `${at}.id`);
  const ttl = nat(t[1], `${at}.ttl`);
  const remaining = nat(t[2], `${at}.remaining`);
  if (ttl < 1 || ttl > MAX_LEASE_TTL || remaining > ttl) throw new KvDecodeError(`${at}: ttl out of bounds`);
  return { id, ttl, remaining };
}

/** `[kv tuple | key (a delete), revision, seq, prev kv tuple | null]`. */
function event(raw: unknown, at: string, storeRevision: number): KvEvent {
  const t = array(raw, at, 4);
  if (t.length !== 4) throw new KvDecodeError(`${at}: expected [kv or key, revision, seq, prev]`);
  const revision = nat(t[1], `${at}.revision`);
  const seq = nat(t[2], `${at}.seq`);
  if (revision < 1 || revision > storeRevision) throw new KvDecodeError(`${at}.revision: out of bounds`);
  const prev = t[3] === null ? undefined : keyValue(t[3], `${at}.prev`, revision - 1);
  if (typeof t[0] === 'string') {
    if (prev === undefined) throw new KvDecodeError(`${at}: a delete without the record it deleted`);
    const kv = {
      key: key(t[0], `${at}.key`),
      value: new Uint8Array(0),
      createRevision: 0,
      modRevision: revision,
      version: 0,
    };
    if (kv.key !== prev.key) throw new KvDecodeError(`${at}.prev: another key`);
    return { type: 'delete', revision, seq, kv, prev };
  }
  const kv = keyValue(t[0], `${at}.kv`, revision);
  if (kv.modRevision !== revision || (prev !== undefined && prev.key !== kv.key))
    throw new KvDecodeError(`${at}.kv: not a put at its revision`);
  return { type: 'put', revision, seq, kv, ...(prev ? { prev } : {}) };
}

function confState(raw: unknown, at: string): ConfState {
  const o = record(raw, at, ['voters', 'learners']);
  const ids = (v: unknown, f: string) =>
    array(v, `${at}.${f}`, Number.MAX_SAFE_INTEGER).map((x, i) => str(x, `${at}.${f}[${i}]`));
  return { voters: ids(o.voters, 'voters'), learners: ids(o.learners, 'learners') };
}

/** Decodes and checks a record tuple (see kvTuple) with revisions at most `revision`. Throws KvDecodeError. */
export function keyValue(raw: unknown, at: string, revision: number): KeyValue {
  const t = array(raw, at, 6);
  if (t.length !== 5 && t.length !== 6)
    throw new KvDecodeError(`${at}: expected [key, value, createRevision, modRevision, version, lease?]`);
  const kv: KeyValue = {
    key: key(t[0], `${at}.key`),
    value: bytes(t[1], `${at}.value`).slice(),
    createRevision: nat(t[2], `${at}.createRevision`),
    modRevision: nat(t[3], `${at}.modRevision`),
    version: nat(t[4], `${at}.version`),
    ...(t.length === 6 ? { lease: leaseId(t[5], `${at}.lease`) } : {}),
  };
  if (kv.createRevision < 1 || kv.modRevision < kv.createRevision || kv.modRevision > revision || kv.version < 1) {
    throw new KvDecodeError(`${at}: revisions out of bounds`);
  }
  return kv;
}

function requestRecord(raw: unknown, at: string): RequestRecord {
  const t = array(raw, at, 5);
  if (t.length !== 5) throw new KvDecodeError(`${at}: expected [id, index, revision, fingerprint, result]`);
  const id = str(t[0], `${at}.id`);
  if (id === '' || id.length > MAX_REQUEST_ID_LENGTH) throw new KvDecodeError(`${at}.id: bad request id`);
  return {
    id,
    index: nat(t[1], `${at}.index`),
    revision: nat(t[2], `${at}.revision`),
    fingerprint: nat(t[3], `${at}.fingerprint`),
    result: bytes(t[4], `${at}.result`, Number.MAX_SAFE_INTEGER).slice(),
  };
}

/** Encodes a result for an idempotency record. */
export function encodeResult(r: KvResult): Uint8Array {
  return encode(r, { ignoreUndefined: true });
}

const RESULT_TYPES: readonly string[] = [
  'put',
  'delete',
  'cas',
  'txn',
  'compact',
  'leaseGrant',
  'leaseRevoke',
  'leaseCheckpoint',
  'error',
];

/** Decodes a stored result (written by encodeResult; only its kind is checked). */
export function decodeResult(data: Uint8Array): KvResult {
  const r = decode(data) as KvResult | null;
  if (typeof r !== 'object' || r === null || !RESULT_TYPES.includes(r.type))
    throw new KvDecodeError('stored result: unknown type');
  return r;
}

// ---- the rows of a snapshot as it travels in chunks (storage exports them, the snapshot stream carries them) ----

/**
 * A kv row as it travels: key and value bytes, create_revision, mod_revision,
 * version, and the lease if it has one (left out for none, so a row without
 * one is as it was before leases).
 */
export type KvRow = [key: Uint8Array, value: Uint8Array, create: number, mod: number, version: number, lease?: number];
/** A kv_request row: id, index, revision, fingerprint, result bytes. */
export type RequestRow = [string, number, number, number, Uint8Array];
/** A kv_history row (src/storage/history-segment.ts): first_revision, first_seq, part, last_revision, data bytes. */
export type HistRow = [number, number, number, number, Uint8Array];
/** A kv_history row's primary key: first_revision, first_seq, part. */
export type HistKey = readonly [number, number, number];
/** A kv_lease row: id, ttl, remaining. */
export type LeaseRow = [number, number, number];
