import type { ConfChange, ConfState, NodeId } from './types.ts';

const encoder = new TextEncoder();
// Strict: bytes that are not UTF-8 make an entry that is no ConfChange (decodeConfChange catches the throw).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Conf changes travel in `conf` entries as small JSON documents. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

/** Decodes a `conf` entry; undefined if it is not a valid ConfChange (it is then ignored everywhere alike). */
export function decodeConfChange(data: Uint8Array): ConfChange | undefined {
  try {
    const v: unknown = JSON.parse(decoder.decode(data));
    return isConfChange(v) ? { type: v.type, node: v.node } : undefined;
  } catch {
    return undefined;
  }
}

const CHANGE_TYPES: ReadonlySet<string> = new Set<ConfChange['type']>(['addVoter', 'addLearner', 'promote', 'remove']);

/** Whether `v` has a ConfChange's shape: a known type (an own entry of a fixed set) and a node name. */
function isConfChange(v: unknown): v is ConfChange {
  if (typeof v !== 'object' || v === null) return false;
  const { type, node } = v as Record<string, unknown>;
  return typeof type === 'string' && CHANGE_TYPES.has(type) && typeof node === 'string' && node !== '';
}

/**
 * Why a change is refused before it reaches the log; undefined when it is fine.
 * `cc` may come from outside (an RPC), so its shape is checked first.
 */
export function validateConfChange(conf: ConfState, cc: ConfChange): string | undefined {
  if (!isConfChange(cc)) return 'not a membership change (type addVoter, addLearner, promote or remove, and a node)';
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case 'addVoter':
      return isVoter ? `${cc.node} is already a voter` : undefined;
    case 'addLearner':
      if (isVoter) return `${cc.node} is a voter; remove it first to demote it`;
      return isLearner ? `${cc.node} is already a learner` : undefined;
    case 'promote':
      return isLearner ? undefined : `${cc.node} is not a learner`;
    case 'remove':
      if (!isVoter && !isLearner) return `${cc.node} is not a member`;
      if (isVoter && conf.voters.length === 1) return 'cannot remove the last voter';
      return undefined;
  }
}

/** The configuration after `cc`; a change that does not apply leaves it as it was. */
export function applyToConf(conf: ConfState, cc: ConfChange): ConfState {
  // Checked again as it applies: the learner may have been removed since the proposal.
  if (cc.type === 'promote' && !conf.learners.includes(cc.node)) return conf;
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  if (cc.type === 'addVoter' || cc.type === 'promote') voters.push(cc.node);
  if (cc.type === 'addLearner') learners.push(cc.node);
  if (voters.length === 0) return conf; // never leave a cluster without voters
  return { voters: sortIds(voters), learners: sortIds(learners) };
}

function sortIds(ids: NodeId[]): NodeId[] {
  return ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
