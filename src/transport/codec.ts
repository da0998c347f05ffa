import { packCompact, unpack } from '../codec/msgpack.ts';
import type { Entry, Message, NodeId, Snapshot } from '../raft/index.ts';
import { bool, EnvelopeError, nat, pos, record, str } from './validate.ts';

/**
 * Bumped on any incompatible change of the envelope or of a message's fields.
 * 2: `readIndexResp.reject` (a node of version 1 would ignore it and serve a
 * refused read at once, at index 0).
 */
export const ENVELOPE_VERSION = 2;
/** Larger bodies are refused before decoding (a few max-size entries fit). */
export const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024;

/** A batch of Raft messages from one node to another. */
export interface Envelope {
  readonly v: number;
  readonly from: NodeId;
  readonly msgs: readonly Message[];
  /** The leader is going quiet (nothing to replicate): followers may stop their election timers. */
  readonly quiet: boolean;
  /**
   * In an answer: what the recipient sent was dropped, since it is not in
   * the sender's configuration as applied up to this index. Absent otherwise
   * (a node of an older version ignores it).
   */
  readonly notMemberAt?: number | undefined;
}

export { EnvelopeError };

export function encodeEnvelope(
  from: NodeId,
  msgs: readonly Message[],
  quiet = false,
  notMemberAt?: number,
): Uint8Array {
  return packCompact({ v: ENVELOPE_VERSION, from, msgs, quiet, notMemberAt });
}

/** Decodes and validates every field; throws EnvelopeError on anything malformed, truncated or oversized. */
export function decodeEnvelope(body: Uint8Array): Envelope {
  if (body.byteLength > MAX_ENVELOPE_BYTES)
    throw new EnvelopeError(`envelope of ${body.byteLength} bytes exceeds ${MAX_ENVELOPE_BYTES}`);
  let raw: unknown;
  try {
    raw = unpack(body);
  } catch (e) {
    throw new EnvelopeError(`not msgpack: ${(e as Error).message}`);
  }
  const o = record(raw, 'envelope');
  if (o.v !== ENVELOPE_VERSION) throw new EnvelopeError(`unsupported envelope version ${String(o.v)}`);
  const from = str(o.from, 'from');
  if (!Array.isArray(o.msgs)) throw new EnvelopeError('msgs: expected an array');
  const msgs = o.msgs.map((m, i) => message(m, `msgs[${i}]`));
  for (const m of msgs)
    if (m.from !== from) throw new EnvelopeError(`message from ${m.from} in an envelope from ${from}`);
  const quiet = o.quiet === undefined ? false : bool(o.quiet, 'quiet');
  const notMemberAt = o.notMemberAt === undefined ? undefined : nat(o.notMemberAt, 'notMemberAt');
  return { v: ENVELOPE_VERSION, from, msgs, quiet, notMemberAt };
}

function message(raw: unknown, at: string): Message {
  const o = record(raw, at);
  const base = { from: str(o.from, `${at}.from`), to: str(o.to, `${at}.to`), term: nat(o.term, `${at}.term`) };
  switch (o.type) {
    case 'vote':
      return {
        ...base,
        type: 'vote',
        preVote: bool(o.preVote, `${at}.preVote`),
        transfer: bool(o.transfer, `${at}.transfer`),
        lastIndex: nat(o.lastIndex, `${at}.lastIndex`),
        lastTerm: nat(o.lastTerm, `${at}.lastTerm`),
      };
    case 'voteResp':
      return {
        ...base,
        type: 'voteResp',
        preVote: bool(o.preVote, `${at}.preVote`),
        reject: bool(o.reject, `${at}.reject`),
      };
    case 'app': {
      if (!Array.isArray(o.entries)) throw new EnvelopeError(`${at}.entries: expected an array`);
      return {
        ...base,
        type: 'app',
        prevIndex: nat(o.prevIndex, `${at}.prevIndex`),
        prevTerm: nat(o.prevTerm, `${at}.prevTerm`),
        commit: nat(o.commit, `${at}.commit`),
        entries: o.entries.map((e, i) => entry(e, `${at}.entries[${i}]`)),
      };
    }
    case 'appResp':
      return {
        ...base,
        type: 'appResp',
        index: nat(o.index, `${at}.index`),
        reject: bool(o.reject, `${at}.reject`),
        hintIndex: nat(o.hintIndex, `${at}.hintIndex`),
        hintTerm: nat(o.hintTerm, `${at}.hintTerm`),
      };
    case 'heartbeat':
      return { ...base, type: 'heartbeat', commit: nat(o.commit, `${at}.commit`), ctx: str(o.ctx, `${at}.ctx`, true) };
    case 'heartbeatResp':
      return { ...base, type: 'heartbeatResp', ctx: str(o.ctx, `${at}.ctx`, true) };
    case 'snapshot':
      return { ...base, type: 'snapshot', snapshot: snapshot(o.snapshot, `${at}.snapshot`) };
    case 'timeoutNow':
      return { ...base, type: 'timeoutNow' };
    case 'readIndex':
      return { ...base, type: 'readIndex', ctx: str(o.ctx, `${at}.ctx`) };
    case 'readIndexResp':
      return {
        ...base,
        type: 'readIndexResp',
        ctx: str(o.ctx, `${at}.ctx`),
        index: nat(o.index, `${at}.index`),
        reject: bool(o.reject, `${at}.reject`),
      };
    default:
      throw new EnvelopeError(`${at}.type: unknown message type ${JSON.stringify(o.type)}`);
  }
}

function entry(raw: unknown, at: string): Entry {
  const o = record(raw, at);
  if (o.type !== 'normal' && o.type !== 'conf') throw new EnvelopeError(`${at}.type: expected normal or conf`);
  if (!(o.data instanceof Uint8Array)) throw new EnvelopeError(`${at}.data: expected bytes`);
  return { index: pos(o.index, `${at}.index`), term: pos(o.term, `${at}.term`), type: o.type, data: o.data };
}

function snapshot(raw: unknown, at: string): Snapshot {
  const o = record(raw, at);
  const meta = record(o.meta, `${at}.meta`);
  const conf = record(meta.conf, `${at}.meta.conf`);
  if (!(o.data instanceof Uint8Array)) throw new EnvelopeError(`${at}.data: expected bytes`);
  return {
    meta: {
      index: nat(meta.index, `${at}.meta.index`),
      term: nat(meta.term, `${at}.meta.term`),
      conf: {
        voters: ids(conf.voters, `${at}.meta.conf.voters`),
        learners: ids(conf.learners, `${at}.meta.conf.learners`),
      },
    },
    data: o.data,
  };
}

function ids(v: unknown, at: string): string[] {
  if (!Array.isArray(v)) throw new EnvelopeError(`${at}: expected an array`);
  return v.map((x, i) => str(x, `${at}[${i}]`));
}
