/**
 * Cluster administration (admin role): GET /v1/cluster, POST
 * /v1/cluster/members (add a learner, promote, remove) and POST
 * /v1/cluster/leader (hand leadership over). A membership change takes no
 * Idempotency-Key: it is retried only on a 503, and a lost answer is an
 * OutcomeUnknownError. A leader transfer has one goal however often it is
 * asked, so it is retried like a read.
 */
import type { Transport } from './http.ts';

export interface MemberStatus {
  readonly name: string;
  readonly membership: 'voter' | 'learner' | 'none' | 'unknown';
  readonly locationHint: string | null;
  readonly reachable: boolean;
  readonly role: string | null;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly lastIndex: number | null;
  readonly matchIndex: number | null;
  readonly recentActive: boolean | null;
  /** When the leader last heard from this member (ISO time, by the leader's clock). */
  readonly lastContact: string | null;
  readonly quiet: boolean | null;
}

export interface ClusterStatus {
  readonly leader: string | null;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly members: MemberStatus[];
}

export interface Membership {
  readonly ok: boolean;
  /** The configuration the leader holds after the change (null if no leader answered). */
  readonly conf: { readonly voters: string[]; readonly learners: string[] } | null;
}

interface MemberJson {
  name: string;
  membership: MemberStatus['membership'];
  location_hint: string | null;
  reachable: boolean;
  role: string | null;
  term: number | null;
  commit_index: number | null;
  applied_index: number | null;
  last_index: number | null;
  match_index: number | null;
  recent_active: boolean | null;
  last_contact: string | null;
  quiet: boolean | null;
}

export async function clusterStatus(t: Transport): Promise<ClusterStatus> {
  const a = await t.request({ method: 'GET', path: '/v1/cluster', retry: 'read' });
  const b = a.body as {
    leader: string | null;
    term: number | null;
    commit_index: number | null;
    members: MemberJson[];
  };
  return { leader: b.leader, term: b.term, commitIndex: b.commit_index, members: b.members.map(memberOf) };
}

/** The membership actions, by the API's names. */
export type MemberAction = 'add_learner' | 'promote' | 'remove';

export async function changeMembers(t: Transport, action: MemberAction, node: string): Promise<Membership> {
  const a = await t.request({ method: 'POST', path: '/v1/cluster/members', json: { action, node }, retry: 'unkeyed' });
  return a.body as Membership;
}

export async function transferLeader(t: Transport, to: string): Promise<{ leader: string; term: number }> {
  const a = await t.request({ method: 'POST', path: '/v1/cluster/leader', json: { to }, retry: 'read' });
  return a.body as { leader: string; term: number };
}

function memberOf(m: MemberJson): MemberStatus {
  return {
    name: m.name,
    membership: m.membership,
    locationHint: m.location_hint,
    reachable: m.reachable,
    role: m.role,
    term: m.term,
    commitIndex: m.commit_index,
    appliedIndex: m.applied_index,
    lastIndex: m.last_index,
    matchIndex: m.match_index,
    recentActive: m.recent_active,
    lastContact: m.last_contact,
    quiet: m.quiet,
  };
}
