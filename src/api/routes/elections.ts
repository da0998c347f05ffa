/**
 * Leader election (etcd's Election, served by the store; see coordination.ts):
 * POST /v1/elections/{name}/campaign waits to lead, …/proclaim sets the
 * leader's value, …/resign steps down, GET /v1/elections/{name} tells the
 * leader and GET …/observe streams each new leader and value (Server-Sent
 * Events). A name may hold `/`, but may not end in one of these actions.
 */
import type { KeyValue } from '../../kv/index.ts';
import { needRole } from '../commands.ts';
import {
  busy,
  contendersOf,
  dequeue,
  enqueue,
  firstOf,
  freshClient,
  type ObserverFrames,
  observeLeaders,
  type Place,
  refuseIdempotencyKey,
  requiredLease,
  waitMsOf,
  waitTurn,
} from '../coordination.ts';
import type { App, C } from '../env.ts';
import { ApiError, badRequest } from '../errors.ts';
import { kvJson, nat, obj, readJson, valueField } from '../input.ts';
import { write } from '../outcomes.ts';
import { pathTail, queryOf } from '../request.ts';

const ACTIONS = new Set(['campaign', 'proclaim', 'resign', 'observe']);

export function electionRoutes(app: App): void {
  app.get('/v1/elections/*', async (c) => {
    needRole(c.get('principal'), 'read');
    queryOf(c.get('input'), []);
    const { name, action } = target(c);
    if (action !== undefined && action !== 'observe') throw notFound(c);
    const prefix = contendersOf(c, name);
    if (action === 'observe') {
      return c.body(observeLeaders(c.get('client'), prefix, c.get('client').remaining(), SSE_OBSERVER), 200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache',
      });
    }
    const first = await firstOf(c, prefix);
    if (!first) throw new ApiError(404, 'no_leader', `${JSON.stringify(name)} has no leader`);
    return c.json({ name, ...leaderJson(first) });
  });

  app.post('/v1/elections/*', async (c) => {
    needRole(c.get('principal'), 'write');
    queryOf(c.get('input'), []);
    refuseIdempotencyKey(c);
    const { name, action } = target(c);
    if (action === undefined || action === 'observe') throw notFound(c);
    const prefix = contendersOf(c, name);
    const body = await readJson(c.req.raw, 2 * 1024 * 1024);
    const max = c.get('config').maxValueBytes;
    if (action === 'campaign') {
      const o = obj(body, 'body', ['lease', 'value', 'value_base64', 'wait_ms']);
      const lease = requiredLease(o.lease, 'lease');
      const value = valueField(o, 'body', max) as Uint8Array;
      const waitMs = waitMsOf(o.wait_ms);
      const budget = c.get('client').remaining();
      const until = Date.now() + waitMs;
      const place = await enqueue(c, prefix, lease, value);
      // Campaigning again with the same lease keeps the place and takes the new value.
      if (!place.created) await proclaimAt(c, place, value);
      const turn = await waitTurn(c, prefix, place, until, budget);
      if (turn.status === 'turn')
        return c.json({ name, key: place.key, revision: place.revision, lease: String(lease) }, 200, {
          'X-Revision': String(turn.revision),
        });
      freshClient(c, budget);
      if (turn.status === 'timeout') await dequeue(c, place);
      throw busy('not_elected', `not elected within ${waitMs} ms${turn.status === 'gone' ? ': the lease ended' : ''}`);
    }
    const o = obj(body, 'body', ['key', 'revision', 'lease', 'value', 'value_base64']);
    const key = typeof o.key === 'string' ? o.key : '';
    if (!key.startsWith(prefix)) throw badRequest('key', `not a key of this election (${prefix}...)`);
    const revision = nat(o.revision, 'revision');
    if (action === 'resign') {
      if (o.lease !== undefined || o.value !== undefined || o.value_base64 !== undefined)
        throw badRequest('body', 'resign takes key and revision only');
      if (!(await dequeue(c, { key, revision, lease: 0 }))) throw notLeader(key);
      return c.json({ name, resigned: true });
    }
    const lease = requiredLease(o.lease, 'lease');
    const value = valueField(o, 'body', max) as Uint8Array;
    // The leader is the first contender; once first, a key stays first until it goes (later keys have later revisions).
    const first = await firstOf(c, prefix);
    if (first?.key !== key || first.createRevision !== revision || first.lease !== lease) throw notLeader(key);
    if (!(await proclaimAt(c, { key, revision, lease }, value))) throw notLeader(key);
    return c.json({ name, key, revision, lease: String(lease) });
  });
}

/** The name and the action of the path: `{name}` or `{name}/{action}`. */
function target(c: C): { name: string; action: string | undefined } {
  const tail = pathTail(c.get('input'), '/v1/elections/');
  const cut = tail.lastIndexOf('/');
  const last = tail.slice(cut + 1);
  if (cut > 0 && ACTIONS.has(last)) return { name: tail.slice(0, cut), action: last };
  return { name: tail, action: undefined };
}

function notFound(c: C): ApiError {
  return new ApiError(404, 'not_found', `no route ${c.req.method} ${c.get('input').rawPath}`);
}

function notLeader(key: string): ApiError {
  return new ApiError(412, 'not_leader', `${JSON.stringify(key)} is not the leader at that revision`);
}

/** Puts `value` at the place's key if it is still that place's, keeping its lease. */
async function proclaimAt(c: C, place: Place, value: Uint8Array): Promise<boolean> {
  const result = await write(c, {
    type: 'txn',
    compare: [
      { key: place.key, target: 'createRevision', op: '=', value: place.revision },
      { key: place.key, target: 'lease', op: '=', value: place.lease },
    ],
    success: [{ type: 'put', key: place.key, value, lease: place.lease }],
    failure: [],
  });
  return result.type === 'txn' && result.succeeded;
}

function leaderJson(kv: KeyValue): Record<string, unknown> {
  const { key: _, create_revision, ...rest } = kvJson(kv);
  return { key: kv.key, revision: create_revision, ...rest };
}

/** An observer's Server-Sent Events: `leader` (id = its mod revision), and comments while it waits. */
const SSE_OBSERVER: ObserverFrames = {
  leader: (kv) => `event: leader\nid: ${kv.modRevision}\ndata: ${JSON.stringify(leaderJson(kv))}\n\n`,
  waiting: () => ': waiting\n\n',
  unavailable: () => ': no leader with a quorum answered; retrying\n\n',
};
