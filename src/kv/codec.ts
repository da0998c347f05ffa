/**
 * Commands on the wire (inside Raft log entries): msgpack, validated
 * strictly on the way in and on the way out. Validation builds a fresh,
 * canonical command (fixed field order, false flags dropped), so equal
 * commands encode to equal bytes and unknown or malformed fields never reach
 * the state machine.
 */
import { packCompact, unpack } from '../codec/msgpack.ts';
import { inInterval, type KeyInterval, prefixEnd } from './keys.ts';
import type {
  CasExpect,
  CommandEnvelope,
  Compare,
  DeleteCommand,
  DeletePrefixCommand,
  DeleteRangeCommand,
  KvCommand,
  LeaseCommand,
  PutCommand,
  RangeOp,
  RangeQuery,
  TxnCommand,
  TxnOp,
} from './types.ts';
import { MAX_LEASE_CHECKPOINTS, MAX_LEASE_TTL, MAX_REQUEST_ID_LENGTH, MAX_TXN_OPS } from './types.ts';
import {
  array,
  bytes,
  DuplicateKeyError,
  flag,
  KvDecodeError,
  key,
  leaseId,
  nat,
  oneOf,
  optStr,
  record,
  str,
} from './validate.ts';

/** Bumped on any incompatible change of the command encoding. */
export const COMMAND_VERSION = 1;

const RANGE_FIELDS = ['start', 'end', 'prefix', 'limit', 'keysOnly', 'countOnly'];

type ReadBytes = (v: unknown, at: string) => Uint8Array;
const asIs: ReadBytes = bytes;
/** Decoded bin fields are views of the entry's buffer: copy them so stored values own their bytes. */
const copied: ReadBytes = (v, at) => bytes(v, at).slice();

/** Validates `env` and encodes it; throws KvDecodeError if it is not a valid command, so nothing bad is proposed. */
export function encodeCommand(env: CommandEnvelope): Uint8Array {
  const canonical = validateEnvelope(env, asIs);
  return packCompact({ v: COMMAND_VERSION, requestId: canonical.requestId, cmd: canonical.cmd });
}

/** Decodes and validates a command entry; throws KvDecodeError on anything malformed. */
export function decodeCommand(data: Uint8Array): CommandEnvelope {
  let raw: unknown;
  try {
    raw = unpack(data);
  } catch (e) {
    throw new KvDecodeError(`not msgpack: ${(e as Error).message}`);
  }
  const o = record(raw, 'entry', ['v', 'requestId', 'cmd']);
  if (o.v !== COMMAND_VERSION) throw new KvDecodeError(`unsupported command version ${String(o.v)}`);
  return validateEnvelope({ requestId: o.requestId, cmd: o.cmd } as CommandEnvelope, copied);
}

/** The canonical form of a command, or KvDecodeError. Use it to check user input before proposing. */
export function validateCommand(cmd: unknown): KvCommand {
  return command(cmd, 'cmd', asIs);
}

/** The canonical form of a range query, or KvDecodeError. */
export function validateRangeQuery(q: unknown): RangeQuery {
  const o = record(q, 'query', RANGE_FIELDS);
  const { type: _, ...rest } = rangeOp({ ...o, type: 'range' }, 'query');
  return rest;
}

/** A 32-bit FNV-1a hash of the canonical encoding of `cmd`: what tells a retry from a reused requestId. */
export function fingerprint(cmd: KvCommand): number {
  const b = packCompact(cmd);
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ (b[i] ?? 0), 0x01000193);
  return h >>> 0;
}

function validateEnvelope(env: CommandEnvelope, b: ReadBytes): CommandEnvelope {
  const o = record(env, 'envelope', ['requestId', 'cmd']);
  let requestId: string | undefined;
  if (o.requestId !== undefined) {
    requestId = str(o.requestId, 'requestId');
    if (requestId === '' || requestId.length > MAX_REQUEST_ID_LENGTH) {
      throw new KvDecodeError(`requestId: expected 1 to ${MAX_REQUEST_ID_LENGTH} characters`);
    }
  }
  return { requestId, cmd: command(o.cmd, 'cmd', b) };
}

/** The write operations that are both commands and txn ops; undefined for any other type. */
function writeOp(
  type: unknown,
  raw: unknown,
  at: string,
  b: ReadBytes,
): PutCommand | DeleteCommand | DeletePrefixCommand | DeleteRangeCommand | undefined {
  switch (type) {
    case 'put':
      return put(raw, at, b);
    case 'delete':
      return del(raw, at);
    case 'deletePrefix':
      return delPrefix(raw, at);
    case 'deleteRange':
      return delRange(raw, at);
    default:
      return undefined;
  }
}

function command(raw: unknown, at: string, b: ReadBytes): KvCommand {
  const type = typeOf(raw, at);
  const write = writeOp(type, raw, at, b);
  if (write) return write;
  switch (type) {
    case 'cas': {
      const o = record(raw, at, ['type', 'key', 'expect', 'value', 'lease']);
      return {
        type: 'cas',
        key: key(o.key, `${at}.key`),
        expect: expect(o.expect, `${at}.expect`, b),
        value: b(o.value, `${at}.value`),
        lease: optLease(o.lease, `${at}.lease`),
      };
    }
    case 'txn':
      return txn(raw, at, b);
    case 'compact': {
      const o = record(raw, at, ['type', 'revision']);
      return { type: 'compact', revision: nat(o.revision, `${at}.revision`) };
    }
    case 'leaseGrant':
    case 'leaseRevoke':
    case 'leaseCheckpoint':
      return leaseCommand(type, raw, at);
    default:
      throw new KvDecodeError(`${at}.type: unknown command ${JSON.stringify(type)}`);
  }
}

function leaseCommand(type: LeaseCommand['type'], raw: unknown, at: string): LeaseCommand {
  switch (type) {
    case 'leaseGrant': {
      const o = record(raw, at, ['type', 'id', 'ttl']);
      const ttl = nat(o.ttl, `${at}.ttl`);
      if (ttl < 1 || ttl > MAX_LEASE_TTL) throw new KvDecodeError(`${at}.ttl: expected 1 to ${MAX_LEASE_TTL} seconds`);
      return { type, id: nat(o.id, `${at}.id`), ttl };
    }
    case 'leaseRevoke': {
      const o = record(raw, at, ['type', 'id']);
      return { type, id: leaseId(o.id, `${at}.id`) };
    }
    case 'leaseCheckpoint': {
      const o = record(raw, at, ['type', 'checkpoints']);
      const checkpoints = array(o.checkpoints, `${at}.checkpoints`, MAX_LEASE_CHECKPOINTS).map((c, i) => {
        const p = record(c, `${at}.checkpoints[${i}]`, ['id', 'remaining']);
        const remaining = nat(p.remaining, `${at}.checkpoints[${i}].remaining`);
        if (remaining > MAX_LEASE_TTL) throw new KvDecodeError(`${at}.checkpoints[${i}].remaining: too large`);
        return { id: leaseId(p.id, `${at}.checkpoints[${i}].id`), remaining };
      });
      return { type, checkpoints };
    }
  }
}

/** An optional lease id; 0 means none, as in etcd. */
function optLease(v: unknown, at: string): number | undefined {
  return v === undefined || v === 0 ? undefined : leaseId(v, at);
}

/** The `type` field of a map (its other fields are checked by the branch it selects). */
function typeOf(raw: unknown, at: string): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    throw new KvDecodeError(`${at}: expected a map`);
  }
  return (raw as { type?: unknown }).type;
}

function put(raw: unknown, at: string, b: ReadBytes): PutCommand {
  const o = record(raw, at, ['type', 'key', 'value', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease']);
  const cmd: PutCommand = {
    type: 'put',
    key: key(o.key, `${at}.key`),
    value: b(o.value, `${at}.value`),
    lease: optLease(o.lease, `${at}.lease`),
    prevKv: flag(o.prevKv, `${at}.prevKv`),
    ignoreValue: flag(o.ignoreValue, `${at}.ignoreValue`),
    ignoreLease: flag(o.ignoreLease, `${at}.ignoreLease`),
  };
  if (cmd.ignoreValue && cmd.value.byteLength > 0) throw new KvDecodeError(`${at}.value: given with ignoreValue`);
  if (cmd.ignoreLease && cmd.lease !== undefined) throw new KvDecodeError(`${at}.lease: given with ignoreLease`);
  return cmd;
}

function del(raw: unknown, at: string): DeleteCommand {
  const o = record(raw, at, ['type', 'key', 'prevKv']);
  return { type: 'delete', key: key(o.key, `${at}.key`), prevKv: flag(o.prevKv, `${at}.prevKv`) };
}

function delPrefix(raw: unknown, at: string): DeletePrefixCommand {
  const o = record(raw, at, ['type', 'prefix', 'prevKv']);
  return { type: 'deletePrefix', prefix: key(o.prefix, `${at}.prefix`), prevKv: flag(o.prevKv, `${at}.prevKv`) };
}

function delRange(raw: unknown, at: string): DeleteRangeCommand {
  const o = record(raw, at, ['type', 'start', 'end', 'prevKv']);
  return {
    type: 'deleteRange',
    start: str(o.start, `${at}.start`),
    end: optStr(o.end, `${at}.end`),
    prevKv: flag(o.prevKv, `${at}.prevKv`),
  };
}

function expect(raw: unknown, at: string, b: ReadBytes): CasExpect {
  const o = record(raw, at, ['value', 'modRevision', 'version', 'absent']);
  const given = Object.keys(o).filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new KvDecodeError(`${at}: expected exactly one of value, modRevision, version, absent`);
  if (o.value !== undefined) return { value: b(o.value, `${at}.value`) };
  if (o.modRevision !== undefined) return { modRevision: nat(o.modRevision, `${at}.modRevision`) };
  if (o.version !== undefined) return { version: nat(o.version, `${at}.version`) };
  if (o.absent !== true) throw new KvDecodeError(`${at}.absent: expected true`);
  return { absent: true };
}

function txn(raw: unknown, at: string, b: ReadBytes): TxnCommand {
  const o = record(raw, at, ['type', 'compare', 'success', 'failure']);
  const compare = array(o.compare ?? [], `${at}.compare`, MAX_TXN_OPS).map((c, i) => cmp(c, `${at}.compare[${i}]`, b));
  const success = branch(o.success ?? [], `${at}.success`, b);
  const failure = branch(o.failure ?? [], `${at}.failure`, b);
  return { type: 'txn', compare, success, failure };
}

function cmp(raw: unknown, at: string, b: ReadBytes): Compare {
  const o = record(raw, at, ['key', 'rangeEnd', 'target', 'op', 'value']);
  const target = oneOf(o.target, `${at}.target`, [
    'value',
    'version',
    'createRevision',
    'modRevision',
    'lease',
  ] as const);
  const op = oneOf(o.op, `${at}.op`, ['=', '!=', '<', '>'] as const);
  const value = target === 'value' ? b(o.value, `${at}.value`) : nat(o.value, `${at}.value`);
  const rangeEnd = optStr(o.rangeEnd, `${at}.rangeEnd`);
  return { key: key(o.key, `${at}.key`), ...(rangeEnd !== undefined ? { rangeEnd } : {}), target, op, value };
}

function branch(raw: unknown, at: string, b: ReadBytes): TxnOp[] {
  const ops = array(raw, at, MAX_TXN_OPS).map((op, i) => txnOp(op, `${at}[${i}]`, b));
  writesOf(ops, at);
  return ops;
}

function txnOp(raw: unknown, at: string, b: ReadBytes): TxnOp {
  const type = typeOf(raw, at);
  const write = writeOp(type, raw, at, b);
  if (write) return write;
  switch (type) {
    case 'get': {
      const o = record(raw, at, ['type', 'key']);
      return { type: 'get', key: key(o.key, `${at}.key`) };
    }
    case 'range': {
      const { revision, ...query } = record(raw, at, ['type', ...RANGE_FIELDS, 'revision']);
      const op = rangeOp(query, at);
      return revision === undefined ? op : { ...op, revision: nat(revision, `${at}.revision`) };
    }
    case 'txn':
      return txn(raw, at, b);
    default:
      throw new KvDecodeError(`${at}.type: unknown txn op ${JSON.stringify(type)}`);
  }
}

function rangeOp(raw: unknown, at: string): RangeOp {
  const o = record(raw, at, ['type', ...RANGE_FIELDS]);
  const limit = o.limit === undefined ? undefined : nat(o.limit, `${at}.limit`);
  return {
    type: 'range',
    start: optStr(o.start, `${at}.start`),
    end: optStr(o.end, `${at}.end`),
    prefix: optStr(o.prefix, `${at}.prefix`),
    limit: limit === 0 ? undefined : limit,
    keysOnly: flag(o.keysOnly, `${at}.keysOnly`),
    countOnly: flag(o.countOnly, `${at}.countOnly`),
  };
}

/**
 * As etcd's txn check (checkIntervals): within one branch, nested txns
 * included, no key is put twice and no put lands in a range the branch
 * deletes, so the order of writes never matters to what a branch leaves
 * behind. A nested txn's two branches never both run: a key put in both is
 * fine. Returns the branch's puts and deletes.
 */
function writesOf(ops: readonly TxnOp[], at: string): { puts: Set<string>; deletes: KeyInterval[] } {
  const deletes: KeyInterval[] = [];
  for (const op of ops) {
    if (op.type === 'delete') deletes.push({ start: op.key, end: `${op.key}\u0000` });
    else if (op.type === 'deletePrefix') deletes.push({ start: op.prefix, end: prefixEnd(op.prefix) });
    else if (op.type === 'deleteRange') deletes.push({ start: op.start, end: op.end });
  }
  const puts = new Set<string>();
  const put = (k: string, dupOk: boolean) => {
    if (puts.has(k) && !dupOk) throw new DuplicateKeyError(`${at}: key ${JSON.stringify(k)} is put twice`);
    if (deletes.some((d) => inInterval(k, d)))
      throw new DuplicateKeyError(`${at}: key ${JSON.stringify(k)} is both put and deleted`);
    puts.add(k);
  };
  for (const op of ops) {
    if (op.type !== 'txn') continue;
    const then = writesOf(op.success, at);
    const otherwise = writesOf(op.failure, at);
    for (const k of then.puts) put(k, false);
    for (const k of otherwise.puts) put(k, then.puts.has(k));
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const op of ops) if (op.type === 'put') put(op.key, false);
  return { puts, deletes };
}
