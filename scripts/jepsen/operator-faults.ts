/**
 * The nemesis's operator faults: what an operator does to a live cluster
 * through the public API (and, for `compact`, a test-only hook), under load.
 *
 * - `transfer`: POST /v1/cluster/leader to another voter.
 * - `member`: POST /v1/cluster/members, one of: remove a voter and add it
 *   back (learner, catch up, promote); add a fresh node (learner, catch up,
 *   promote) and remove another voter; remove the leader (it steps down, the
 *   rest elect one) and add it back.
 * - `compact`: cut a follower off, compact the leader's Raft log past it
 *   (POST /__jepsen/compact/:node), heal: it needs a snapshot to catch up.
 *
 * Each step is bounded in time; a refusal (503, 504, 409, ...) is written in
 * the fault's detail and retried while the step's time lasts, as an operator
 * would: it is never a harness error. Each returns the detail to record.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import type { NodeStatus, RaftGroup } from './cluster.ts';
import { errorCode, http, nowS, type Rng, statusOf } from './common.ts';
import { sleep } from './node-api.ts';

/** The longest one step (a membership change, a catch-up, a transfer) may take. */
const STEP_S = 10;

type Action = 'add_learner' | 'promote' | 'remove';

interface Membership {
  leader: string;
  term: number;
  voters: string[];
  learners: string[];
}

/** What an operator does to the cluster: where it is, and what the run knows of it. */
export interface Operator {
  readonly cluster: RaftGroup;
  /** The voters the group should have (--nodes, or --group-size for the groups a run creates). */
  readonly size: number;
  /** A node name never used before in this group (node-N, N counting up from its size). */
  fresh(): string;
  /** Sets every node's fault rules: `blocked` links `a>b`, nothing else. */
  block(blocked: string[]): Promise<void>;
  heal(): Promise<void>;
}

const fmt = (s: number) => `${s.toFixed(1)} s`;

/** The membership as the leader has it, asking for at most `untilS` (nowS()). */
async function membership(op: Operator, untilS: number): Promise<Membership | undefined> {
  for (;;) {
    const m = await op.cluster.membership().catch(() => undefined);
    if (m || nowS() > untilS) return m;
    await sleep(300);
  }
}

function done(action: Action, node: string, m: Membership): boolean {
  if (action === 'add_learner') return m.learners.includes(node);
  if (action === 'promote') return m.voters.includes(node);
  return !m.voters.includes(node) && !m.learners.includes(node);
}

/**
 * POST /v1/cluster/members {action, node} until the leader's membership shows
 * it done (a 504 may have applied), or STEP_S; notes each refusal.
 */
async function change(op: Operator, notes: string[], action: Action, node: string): Promise<boolean> {
  const t = nowS();
  const until = t + STEP_S;
  const refusals: string[] = [];
  while (nowS() < until) {
    const m = await membership(op, until);
    if (m && done(action, node, m)) break;
    const r = await http(
      op.cluster.base,
      'POST',
      '/v1/cluster/members',
      JSON.stringify({ action, node }),
      Math.max(1000, Math.min(8000, (until - nowS()) * 1000)),
      { json: true },
    );
    if (!('error' in r) && r.status === 200) break;
    refusals.push(`${statusOf(r)}${errorCode(r) ? ` ${errorCode(r)}` : ''}`);
    await sleep(500);
  }
  const m = await membership(op, nowS() + 2);
  const ok = m !== undefined && done(action, node, m);
  const tries = refusals.length > 0 ? ` after ${refusals.join(', ')}` : '';
  notes.push(`${action} ${node} ${ok ? 'ok' : 'FAILED'}${tries} (${fmt(nowS() - t)})`);
  return ok;
}

/** Waits (STEP_S at most) until `node` has applied what the leader had committed when the wait began. */
async function catchUp(op: Operator, notes: string[], node: string): Promise<boolean> {
  const t = nowS();
  const until = t + STEP_S;
  let target: number | undefined;
  let applied: number | undefined;
  while (nowS() < until) {
    if (target === undefined) target = (await op.cluster.leaderStatus().catch(() => undefined))?.commit;
    if (target !== undefined) {
      applied = (await op.cluster.status(node).catch(() => undefined))?.applied ?? applied;
      if (applied !== undefined && applied >= target) {
        notes.push(`${node} caught up to ${target} (${fmt(nowS() - t)})`);
        return true;
      }
    }
    await sleep(200);
  }
  notes.push(`${node} NOT caught up: applied ${applied ?? '?'} of ${target ?? '?'} (${fmt(nowS() - t)})`);
  return false;
}

/** Learner, caught up, voter. */
async function join(op: Operator, notes: string[], node: string): Promise<boolean> {
  op.cluster.addNode(node);
  return (
    (await change(op, notes, 'add_learner', node)) &&
    (await catchUp(op, notes, node)) &&
    (await change(op, notes, 'promote', node))
  );
}

/** Waits for a leader other than `old` (STEP_S at most). */
async function newLeader(op: Operator, notes: string[], old: string): Promise<void> {
  const t = nowS();
  const until = t + STEP_S;
  while (nowS() < until) {
    const m = await op.cluster.membership().catch(() => undefined);
    if (m && m.leader !== old) {
      notes.push(`${m.leader} leads in term ${m.term} (${fmt(nowS() - t)})`);
      return;
    }
    await sleep(200);
  }
  notes.push(`NO new leader after removing ${old} (${fmt(nowS() - t)})`);
}

/**
 * Finishes what an earlier member fault left half done (a step that failed):
 * promotes learners, then brings the voters back to `op.size`.
 */
async function repair(op: Operator, rng: Rng, notes: string[], m: Membership): Promise<void> {
  for (const l of m.learners)
    if ((await catchUp(op, notes, l)) && (await change(op, notes, 'promote', l))) m.voters.push(l);
  if (m.voters.length < op.size) {
    const removed = op.cluster.nodes.filter((n) => !m.voters.includes(n) && !m.learners.includes(n));
    await join(op, notes, removed.length > 0 ? rng.pick(removed) : op.fresh());
  } else if (m.voters.length > op.size) {
    await change(op, notes, 'remove', rng.pick(m.voters.filter((v) => v !== m.leader)));
  }
}

/** The `member` fault; its detail. Bounded by the steps' STEP_S each. */
export async function memberFault(op: Operator, rng: Rng): Promise<string> {
  const sub = rng.pick(['readd', 'replace', 'leader'] as const);
  const notes: string[] = [];
  const first = await membership(op, nowS() + STEP_S);
  if (!first) return `${sub}: no leader answered; skipped`;
  if (first.learners.length > 0 || first.voters.length !== op.size) {
    notes.push(`repair (voters [${first.voters}], learners [${first.learners}])`);
    await repair(op, rng, notes, first);
  }
  const m =
    first.learners.length > 0 || first.voters.length !== op.size ? await membership(op, nowS() + STEP_S) : first;
  if (!m) return `${sub}: ${notes.join('; ')}; then no leader answered`;
  const followers = m.voters.filter((v) => v !== m.leader);
  if (followers.length === 0) return `${sub}: ${[...notes, `${m.leader} is the only voter; skipped`].join('; ')}`;
  if (sub === 'readd') {
    const victim = rng.pick(followers);
    notes.unshift(`re-add ${victim}`);
    if (await change(op, notes, 'remove', victim)) await join(op, notes, victim);
  } else if (sub === 'replace') {
    const node = op.fresh();
    const victim = rng.pick(m.voters);
    notes.unshift(`replace ${victim}${victim === m.leader ? ' (leader)' : ''} by ${node}`);
    if (await join(op, notes, node)) {
      const ok = await change(op, notes, 'remove', victim);
      if (ok && victim === m.leader) await newLeader(op, notes, victim);
    }
  } else {
    const victim = m.leader;
    notes.unshift(`remove the leader ${victim} and re-add it`);
    if (await change(op, notes, 'remove', victim)) {
      await newLeader(op, notes, victim);
      await join(op, notes, victim);
    }
  }
  return notes.join('; ');
}

/** The `transfer` fault: leadership to another voter; its detail. */
export async function transferFault(op: Operator, rng: Rng): Promise<string> {
  const m = await membership(op, nowS() + STEP_S);
  if (!m) return 'no leader answered; skipped';
  const others = m.voters.filter((v) => v !== m.leader);
  if (others.length === 0) return `${m.leader} is the only voter; skipped`;
  const to = rng.pick(others);
  const t = nowS();
  const r = await http(op.cluster.base, 'POST', '/v1/cluster/leader', JSON.stringify({ to }), STEP_S * 1000, {
    json: true,
  });
  const took = fmt(nowS() - t);
  if (!('error' in r) && r.status === 200) {
    const term = (JSON.parse(r.text) as { term?: number }).term;
    return `${m.leader} -> ${to}: ${to} leads in term ${term} (${took})`;
  }
  return `${m.leader} -> ${to}: refused ${statusOf(r)}${errorCode(r) ? ` ${errorCode(r)}` : ''} (${took})`;
}

const installs = (st: NodeStatus | undefined) => st?.snapshotStream?.installs ?? 0;

/**
 * The `compact` fault: cuts a follower off for most of `durS`, compacts the
 * leader's log (and, drawn from the seed, every other member's) while it is
 * away, heals, and waits for it to catch up, which takes a snapshot.
 */
export async function compactFault(op: Operator, rng: Rng, durS: number): Promise<string> {
  const everywhere = rng.next() < 0.5;
  const m = await membership(op, nowS() + STEP_S);
  if (!m) return 'no leader answered; skipped';
  const members = [...m.voters, ...m.learners];
  const followers = members.filter((n) => n !== m.leader);
  const notes: string[] = [];
  const victim = followers.length > 0 ? rng.pick(followers) : undefined;
  if (victim) {
    notes.push(`cut ${victim} off`);
    await op.block([...members.filter((n) => n !== victim).flatMap((n) => [`${n}>${victim}`, `${victim}>${n}`])]);
  }
  const before = await op.cluster.status(m.leader).catch(() => undefined);
  await sleep(durS * 500);
  for (const n of everywhere ? [m.leader, ...followers.filter((f) => f !== victim)] : [m.leader]) {
    try {
      const c = await op.cluster.compact(n);
      notes.push(`${n}${c.role === 'leader' ? ' (leader)' : ''} log from ${c.firstIndexBefore} to ${c.firstIndex}`);
    } catch (e) {
      notes.push(`compact ${n} refused: ${(e as Error).message.slice(0, 80)}`);
    }
  }
  await sleep(durS * 500);
  await op.heal();
  if (victim) {
    const ok = await catchUp(op, notes, victim);
    const after = await op.cluster.status(m.leader).catch(() => undefined);
    if (ok && before && after) notes.push(`${m.leader} sent ${installs(after) - installs(before)} snapshot(s)`);
  }
  return notes.join('; ');
}
