/**
 * etcd's Auth service, as far as durable-raft's tokens map onto it: there
 * are no etcd users or roles, only the store's bearer tokens (each with its
 * role and key prefixes). Authenticate takes a token as the password (any
 * name): if the store accepts it, it is the answer's token, which etcd's
 * clients then send with every call and the bridge forwards in place of its
 * own. Every other method answers Unimplemented.
 */
import type { Answer, CallContext } from './gateway.ts';
import { type Handler, Status } from './grpc.ts';
import { type Bridge, unary, unimplemented } from './unary.ts';

const SERVICE = '/etcdserverpb.Auth';
const OTHERS = [
  'AuthEnable',
  'AuthDisable',
  'UserAdd',
  'UserGet',
  'UserList',
  'UserDelete',
  'UserChangePassword',
  'UserGrantRole',
  'UserRevokeRole',
  'RoleAdd',
  'RoleGet',
  'RoleList',
  'RoleDelete',
  'RoleGrantPermission',
  'RoleRevokePermission',
];

export function authService(b: Bridge): Record<string, Handler> {
  const service: Record<string, Handler> = {
    Authenticate: unary(b, (r, ctx) => authenticate(b, r, ctx)),
  };
  for (const m of OTHERS) service[m] = unimplemented(`${SERVICE}/${m}`);
  return service;
}

async function authenticate(b: Bridge, r: Record<string, unknown>, ctx: CallContext): Promise<Answer> {
  const token = typeof r.password === 'string' ? r.password : '';
  const failed: Answer = {
    ok: false,
    status: {
      code: Status.INVALID_ARGUMENT,
      details: 'etcdserver: authentication failed, invalid user ID or password',
    },
  };
  if (token === '') return failed;
  // Any answer but "who are you" means the store knows the token (a 403 only says what it may not do).
  const a = await b.gateway.call('/v3/maintenance/status', {}, { ...ctx, token }, false);
  if (!a.ok && a.status.code === Status.UNAUTHENTICATED) return failed;
  if (!a.ok && a.status.code !== Status.PERMISSION_DENIED) return a;
  const header = a.ok ? a.message.header : {};
  return { ok: true, message: { header, token } };
}
