/**
 * etcd's Cluster service. MemberList is /v3's. A member of durable-raft is
 * a named Durable Object, not a process at a URL: MemberAdd takes the name
 * from its first peer URL's host (`http://node-4` adds `node-4`), and adds it
 * as a learner only (etcdctl's `member add --learner`; promote it once it
 * has caught up). MemberRemove and MemberPromote find the name by the
 * member id /v3 gives it. All three go through /v1/cluster/members, which
 * needs the admin role.
 */
import type { Answer, CallContext } from './gateway.ts';
import { type Handler, Status } from './grpc.ts';
import { type Bridge, forward, unary, unimplemented } from './unary.ts';

const LIST = '/v3/cluster/member/list';

export function clusterService(b: Bridge): Record<string, Handler> {
  return {
    MemberList: forward(b, LIST, false),
    MemberAdd: unary(b, (r, ctx) => add(b, r, ctx)),
    MemberRemove: unary(b, (r, ctx) => change(b, r, ctx, 'remove')),
    MemberPromote: unary(b, (r, ctx) => change(b, r, ctx, 'promote')),
    MemberUpdate: unimplemented('/etcdserverpb.Cluster/MemberUpdate'),
  };
}

type Member = Record<string, unknown>;

const refuse = (code: number, details: string): Answer => ({ ok: false, status: { code, details } });

async function add(b: Bridge, r: Record<string, unknown>, ctx: CallContext): Promise<Answer> {
  const urls = Array.isArray(r.peerURLs) ? r.peerURLs : [];
  const first = urls[0];
  if (typeof first !== 'string' || first === '')
    return refuse(Status.INVALID_ARGUMENT, 'durable-raft: give the new member as a peer URL, http://NAME');
  if (r.isLearner !== true)
    return refuse(
      Status.FAILED_PRECONDITION,
      'durable-raft: a member joins as a learner (member add --learner), then is promoted once it has caught up',
    );
  const name = nameOf(first);
  const changed = await b.gateway.call('/v1/cluster/members', { action: 'add_learner', node: name }, ctx, true);
  if (!changed.ok) return changed;
  const list = await b.gateway.call(LIST, {}, ctx, false);
  if (!list.ok) return list;
  const members = membersOf(list.message);
  const member = members.find((m) => m.name === name) ?? { name, isLearner: true };
  return { ok: true, message: { header: list.message.header, member: { ...member, peerURLs: urls }, members } };
}

async function change(
  b: Bridge,
  r: Record<string, unknown>,
  ctx: CallContext,
  action: 'remove' | 'promote',
): Promise<Answer> {
  const before = await b.gateway.call(LIST, {}, ctx, false);
  if (!before.ok) return before;
  const id = typeof r.ID === 'string' ? r.ID : '0';
  const member = membersOf(before.message).find((m) => m.ID === id);
  if (member === undefined || typeof member.name !== 'string')
    return refuse(Status.NOT_FOUND, 'etcdserver: member not found');
  if (action === 'promote' && member.isLearner !== true)
    return refuse(Status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member');
  const changed = await b.gateway.call('/v1/cluster/members', { action, node: member.name }, ctx, true);
  if (!changed.ok) return changed;
  const after = await b.gateway.call(LIST, {}, ctx, false);
  if (!after.ok) return after;
  return { ok: true, message: { header: after.message.header, members: membersOf(after.message) } };
}

function membersOf(list: Record<string, unknown>): Member[] {
  const ms = Array.isArray(list.members) ? list.members : [];
  return ms.filter((m): m is Member => typeof m === 'object' && m !== null && !Array.isArray(m));
}

/** The member name a peer URL stands for: its host, or the text itself if it is no URL. */
function nameOf(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  return u.hostname === '' ? url : u.hostname;
}
