/**
 * The OpenAPI 3.1 description of the public API, written by hand (no
 * generator dependency); test/integration/api-openapi.test.ts checks it
 * against the routes the app registers.
 */

const json = (schema: unknown) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const err = (description: string) => ({ description, content: json(ref('Error')) });

const common = {
  '400': err(
    'Bad input; `error.field` names the offending field. `invalid_utf8`: bytes that are not UTF-8 in the path, a query value, a header or a JSON body; `bad_request`: anything else, including a conditional header on a route where it has no meaning',
  ),
  '401': err('No or invalid bearer token'),
  '500': err('An internal failure; the answer and its X-Request-Id name it in the Worker logs'),
  '403': err('The token lacks the role, or the key is outside its prefixes'),
  '503': {
    description: 'No leader with a quorum within the deadline (nothing was applied); see Retry-After',
    headers: { 'Retry-After': { schema: { type: 'integer' } } },
    content: json(ref('Error')),
  },
};
const writeErrors = {
  ...common,
  '413': err('Value or command too large'),
  '422': err('Idempotency-Key reused with another request'),
  '504': {
    description: 'The outcome is unknown: the write may or may not have applied',
    content: json(ref('Unknown')),
  },
};

const keyParam = {
  name: 'key',
  in: 'path',
  required: true,
  description: '1-4096 UTF-8 bytes, no control characters; may contain `/`',
  schema: { type: 'string' },
};
const consistencyParam = {
  name: 'consistency',
  in: 'query',
  schema: { type: 'string', enum: ['linearizable', 'serializable'], default: 'linearizable' },
};
const groupNameSchema = { type: 'string', pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' };
const groupParam = { name: 'name', in: 'path', required: true, schema: groupNameSchema };

const timeoutHeader = {
  name: 'X-Request-Timeout-Ms',
  in: 'header',
  description: 'Lowers the per-request deadline (default 5000)',
  schema: { type: 'integer', minimum: 1 },
};
const etagsSchema = { type: 'string', description: '`*`, or ETags like `"12"` separated by commas' };
const ifMatch = (description: string) => ({ name: 'If-Match', in: 'header', description, schema: etagsSchema });
const ifNoneMatch = (description: string) => ({
  name: 'If-None-Match',
  in: 'header',
  description,
  schema: etagsSchema,
});
const idemHeader = {
  name: 'Idempotency-Key',
  in: 'header',
  description: 'A retried write with the same key applies once and returns the first result',
  schema: { type: 'string', maxLength: 200 },
};
const q = (name: string, schema: unknown, description?: string) => ({ name, in: 'query', schema, description });
const revisionParam = q(
  'revision',
  { type: 'integer', minimum: 0 },
  'Read the store as of this revision: 410 `compacted` (with `error.compact_revision`) below the compaction point, 400 `future_revision` past the current one',
);
const compacted = err('The revision is below the compaction point; `error.compact_revision` is the oldest kept');
const leaseIdSchema = { type: 'string', pattern: '^[0-9]{1,16}$', description: 'A lease id, in decimal' };
const leaseParam = { name: 'id', in: 'path', required: true, schema: leaseIdSchema };
const nameParam = (description: string) => ({
  name: 'name',
  in: 'path',
  required: true,
  description: `${description}; may contain \`/\``,
  schema: { type: 'string' },
});
const leaseNotFound = err('No such lease (`lease_not_found`): never granted, revoked, or expired');

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'durable-raft',
    version: '0.1.0',
    description: 'A linearizable, replicated key-value metadata store: Raft on Cloudflare Durable Objects.',
  },
  security: [{ bearer: [] }],
  paths: {
    '/': {
      get: {
        security: [],
        summary: 'The status page (HTML; its script reads /v1/cluster/events)',
        responses: { '200': { description: 'The page' } },
      },
    },
    '/status.js': {
      get: { security: [], summary: "The status page's script", responses: { '200': { description: 'JavaScript' } } },
    },
    '/healthz': {
      get: { security: [], summary: 'The Worker is up', responses: { '200': { description: 'ok' } } },
    },
    '/readyz': {
      get: {
        security: [],
        summary: 'A leader with a quorum exists',
        responses: { '200': { description: 'ready' }, '503': common['503'] },
      },
    },
    '/metrics': {
      get: {
        summary:
          "Every member's metrics in the Prometheus text format, each series labelled `node`; a member that does not answer in time is `durable_raft_member_up{node} 0` (admin or metrics role)",
        parameters: [timeoutHeader],
        responses: {
          '200': {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } },
          },
          '400': common['400'],
          '401': common['401'],
          '403': err('The token has neither the admin nor the metrics role'),
          '500': common['500'],
        },
      },
    },
    '/v1/openapi.json': {
      get: { security: [], summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } },
    },
    '/v1/kv/{key}': {
      get: {
        summary: 'Read a key (raw bytes, or JSON with Accept: application/json)',
        parameters: [
          keyParam,
          consistencyParam,
          revisionParam,
          timeoutHeader,
          ifMatch('412 unless the key exists with one of these ETags'),
          ifNoneMatch('304 if the key exists with one of these ETags'),
        ],
        responses: {
          '200': {
            description: 'The value; ETag is its mod_revision. Serializable reads carry `X-Stale: possible`.',
            headers: { ETag: { schema: { type: 'string' } }, 'X-Revision': { schema: { type: 'integer' } } },
            content: { 'application/octet-stream': {}, ...json(ref('KeyValue')) },
          },
          '304': { description: 'If-None-Match matched' },
          '410': compacted,
          '404': err('No such key'),
          '412': err('If-Match did not match; `current` holds the key as it is'),
          ...common,
        },
      },
      put: {
        summary: 'Write a key (raw body); If-Match for CAS, If-None-Match: * to create only',
        parameters: [
          keyParam,
          timeoutHeader,
          idemHeader,
          ifMatch('Write only if the key exists (`*`) or is at this one ETag'),
          ifNoneMatch('Write only if the key does not exist (`*`) or is at none of these ETags'),
          q('lease', leaseIdSchema, 'Attach the key to this lease (revoking or expiring it deletes the key); 0: none'),
        ],
        requestBody: { required: true, content: { 'application/octet-stream': {} } },
        responses: {
          '200': { description: 'Written', content: json(ref('Revision')) },
          '201': { description: 'Created (If-None-Match: *)', content: json(ref('Revision')) },
          '404': leaseNotFound,
          '412': err('The precondition failed; `current` holds the key as it is'),
          ...writeErrors,
        },
      },
      delete: {
        summary: 'Delete a key; If-Match / If-None-Match for a conditional delete',
        parameters: [
          keyParam,
          timeoutHeader,
          idemHeader,
          ifMatch('Delete only if the key exists (`*`) or is at this one ETag'),
          ifNoneMatch('Delete only if the key is at none of these ETags (`*`: never deletes)'),
        ],
        responses: {
          '200': { description: 'Deleted', content: json(ref('Deleted')) },
          '404': err('No such key'),
          '412': err('The precondition failed'),
          ...writeErrors,
        },
      },
    },
    '/v1/kv': {
      get: {
        summary: 'List a range: prefix, or start/end',
        parameters: [
          q('prefix', { type: 'string' }),
          q('start', { type: 'string' }),
          q('end', { type: 'string' }),
          q('limit', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }),
          q('cursor', { type: 'string' }, 'From the previous page'),
          q('keys_only', { type: 'boolean' }),
          q('count_only', { type: 'boolean' }),
          consistencyParam,
          revisionParam,
          timeoutHeader,
        ],
        responses: { '200': { description: 'A page', content: json(ref('RangePage')) }, '410': compacted, ...common },
      },
      delete: {
        summary: 'Delete a prefix, or [start, end)',
        parameters: [
          q('prefix', { type: 'string' }),
          q('start', { type: 'string' }),
          q('end', { type: 'string' }),
          timeoutHeader,
          idemHeader,
        ],
        responses: { '200': { description: 'Deleted', content: json(ref('Deleted')) }, ...writeErrors },
      },
    },
    '/v1/cas': {
      post: {
        summary: 'Compare-and-swap one key',
        parameters: [timeoutHeader, idemHeader],
        requestBody: { required: true, content: json(ref('CasRequest')) },
        responses: {
          '200': { description: 'Applied; see `succeeded`', content: json({ type: 'object' }) },
          ...writeErrors,
        },
      },
    },
    '/v1/txn': {
      post: {
        summary: "etcd's Txn: if every compare holds run success, else failure",
        parameters: [timeoutHeader, idemHeader],
        requestBody: { required: true, content: json(ref('TxnRequest')) },
        responses: {
          '200': { description: 'Applied; see `succeeded`', content: json({ type: 'object' }) },
          ...writeErrors,
        },
      },
    },
    '/v1/watch': {
      get: {
        summary:
          'Every change of a key, an interval or a prefix, as Server-Sent Events (one `change` message per revision, `id` = revision)',
        parameters: [
          q('key', { type: 'string' }, 'One key, or with range_end the interval [key, range_end)'),
          q('range_end', { type: 'string' }),
          q('prefix', { type: 'string' }, 'Every key under it'),
          q('start_revision', { type: 'integer', minimum: 0 }, 'Default: the next revision'),
          q('prev_kv', { type: 'boolean' }),
          q('filter', { type: 'string' }, '`noput`, `nodelete`, or both separated by a comma'),
          q('progress_notify', { type: 'boolean' }, 'A `progress` message every 10 s with the revision reached'),
          {
            name: 'Last-Event-ID',
            in: 'header',
            description: 'Resume after this revision',
            schema: { type: 'integer' },
          },
          timeoutHeader,
        ],
        responses: {
          '200': { description: 'The stream', content: { 'text/event-stream': {} } },
          '410': compacted,
          ...common,
        },
      },
    },
    '/v1/compact': {
      post: {
        summary: 'Drop the history below a revision, on every replica (admin); reads and watches below it answer 410',
        parameters: [timeoutHeader, idemHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['revision'],
            properties: { revision: { type: 'integer', minimum: 0 } },
          }),
        },
        responses: {
          '200': {
            description: 'Compacted: `compact_revision` is the new compaction point',
            content: json({ type: 'object' }),
          },
          '410': err('Already compacted at or past this revision'),
          ...writeErrors,
        },
      },
    },
    '/v1/leases': {
      get: {
        summary: 'Every lease, in id order, a page at a time',
        parameters: [
          timeoutHeader,
          q('after', leaseIdSchema, 'Start after this id (the `after` of the previous page)'),
          q('limit', { type: 'integer', minimum: 1, maximum: 1000, default: 1000 }),
        ],
        responses: {
          '200': { description: '`leases`: `{id, ttl}` each; `more`', content: json({ type: 'object' }) },
          ...common,
        },
      },
      post: {
        summary:
          "Grant a lease (etcd's LeaseGrant); a TTL below the minimum (1.5 election timeouts) is raised to it, and `ttl` says the TTL given",
        parameters: [timeoutHeader, idemHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['ttl'],
            properties: { ttl: { type: 'integer', minimum: 1 }, id: leaseIdSchema },
          }),
        },
        responses: {
          '200': { description: '`{id, ttl, revision}`', content: json({ type: 'object' }) },
          '409': err('`lease_exists`: the id asked for is in use'),
          ...writeErrors,
        },
      },
    },
    '/v1/leases/{id}': {
      get: {
        summary: "A lease's granted TTL and the seconds it has left by the leader's clock (etcd's LeaseTimeToLive)",
        parameters: [leaseParam, timeoutHeader, q('keys', { type: 'boolean' }, 'Also list the keys attached')],
        responses: {
          '200': { description: '`{id, granted_ttl, ttl, keys?}`', content: json({ type: 'object' }) },
          '404': leaseNotFound,
          ...common,
        },
      },
      delete: {
        summary: 'Revoke a lease: it and every key attached go in one revision',
        parameters: [leaseParam, timeoutHeader, idemHeader],
        responses: {
          '200': { description: '`{id, deleted, revision}`', content: json({ type: 'object' }) },
          '404': leaseNotFound,
          ...writeErrors,
        },
      },
    },
    '/v1/leases/{id}/keepalive': {
      post: {
        summary:
          "Renew a lease on the leader (etcd's LeaseKeepAlive): its keys live at least TTL seconds from this answer",
        parameters: [leaseParam, timeoutHeader],
        responses: {
          '200': { description: '`{id, ttl}`', content: json({ type: 'object' }) },
          '404': leaseNotFound,
          ...common,
        },
      },
    },
    '/v1/locks/{name}': {
      post: {
        summary:
          "Take a lock (etcd's Mutex): first come, first served; `revision` is a fencing token that grows with every acquisition",
        parameters: [nameParam('The lock; its keys are `{name}/{lease in hex}`'), timeoutHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            properties: {
              lease: leaseIdSchema,
              ttl: {
                type: 'integer',
                minimum: 1,
                description: 'Without a lease: the TTL of the one granted (default 60)',
              },
              wait_ms: { type: 'integer', minimum: 0, maximum: 300000, default: 0 },
            },
          }),
        },
        responses: {
          '200': {
            description: '`{key, revision, lease}`: held; keep the lease alive',
            content: json({ type: 'object' }),
          },
          '404': leaseNotFound,
          '409': err('`lock_busy`: not free within `wait_ms`; nothing was left behind'),
          ...writeErrors,
        },
      },
      delete: {
        summary: 'Release a lock: delete the holder key',
        parameters: [
          nameParam('The lock'),
          q('key', { type: 'string' }, 'The key the acquisition returned'),
          timeoutHeader,
        ],
        responses: {
          '200': { description: 'Released', content: json(ref('Deleted')) },
          '404': err('`key_not_found`: not held with that key'),
          ...writeErrors,
        },
      },
    },
    '/v1/elections/{name}': {
      get: {
        summary: 'The leader: its key, revision, lease and value',
        parameters: [nameParam('The election'), timeoutHeader],
        responses: {
          '200': { description: 'The leader', content: json({ type: 'object' }) },
          '404': err('`no_leader`'),
          ...common,
        },
      },
    },
    '/v1/elections/{name}/observe': {
      get: {
        summary: 'Each new leader or value, as Server-Sent Events (`leader`, id = its mod revision)',
        parameters: [nameParam('The election')],
        responses: { '200': { description: 'An event stream', content: { 'text/event-stream': {} } }, ...common },
      },
    },
    '/v1/elections/{name}/campaign': {
      post: {
        summary: 'Wait to lead (first come, first served); answers once elected, or 409 `not_elected` after `wait_ms`',
        parameters: [nameParam('The election'), timeoutHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['lease'],
            properties: {
              lease: leaseIdSchema,
              value: { type: 'string' },
              value_base64: { type: 'string' },
              wait_ms: { type: 'integer', minimum: 0, maximum: 300000, default: 0 },
            },
          }),
        },
        responses: {
          '200': { description: '`{name, key, revision, lease}`', content: json({ type: 'object' }) },
          '404': leaseNotFound,
          '409': err('`not_elected` within `wait_ms`; the campaign key was removed'),
          ...writeErrors,
        },
      },
    },
    '/v1/elections/{name}/proclaim': {
      post: {
        summary: 'A new value from the current leader only (its key, revision and lease, as campaign answered)',
        parameters: [nameParam('The election'), timeoutHeader],
        requestBody: { required: true, content: json(ref('LeaderKey')) },
        responses: {
          '200': { description: 'Proclaimed', content: json({ type: 'object' }) },
          '412': err('`not_leader`'),
          ...writeErrors,
        },
      },
    },
    '/v1/elections/{name}/resign': {
      post: {
        summary: 'Step down (or stop campaigning): delete the campaign key',
        parameters: [nameParam('The election'), timeoutHeader],
        requestBody: { required: true, content: json(ref('LeaderKey')) },
        responses: {
          '200': { description: 'Resigned', content: json({ type: 'object' }) },
          '412': err('`not_leader`: no such key at that revision'),
          ...writeErrors,
        },
      },
    },
    '/v1/cluster': {
      get: {
        summary: 'Members, their roles and indexes, and the leader (admin)',
        parameters: [timeoutHeader],
        responses: { '200': { description: 'Cluster status', content: json({ type: 'object' }) }, ...common },
      },
    },
    '/v1/cluster/events': {
      get: {
        summary:
          'GET /v1/cluster every second, as Server-Sent Events (`event: cluster`), while the client reads (admin)',
        responses: { '200': { description: 'An event stream', content: { 'text/event-stream': {} } }, ...common },
      },
    },
    '/v1/groups': {
      get: {
        summary:
          'Groups in name order, a page at a time (admin, a token not limited to groups). Every route of group G is served under /groups/G as well (e.g. /groups/G/v1/kv/{key}, /groups/G/v3/kv/range); a group that does not exist is 404 group_not_found',
        parameters: [
          { name: 'after', in: 'query', schema: groupNameSchema },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          timeoutHeader,
        ],
        responses: {
          '200': {
            description: '`groups` (records), `more`, and with more the `next` name to pass as `after`',
            content: json({ type: 'object' }),
          },
          ...common,
        },
      },
    },
    '/v1/groups/{name}': {
      put: {
        summary:
          'Create a group of 3 or 5 voters, each placed by its location hint, and wait for its first leader (admin). The same body again is 200 and finishes a create that was cut short',
        parameters: [groupParam, timeoutHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['size'],
            properties: {
              size: { type: 'integer', enum: [3, 5] },
              locations: {
                type: 'array',
                description: 'One location hint (wnam, enam, sam, weur, eeur, apac, oc, afr, me) or null per member',
                items: { type: ['string', 'null'] },
              },
            },
          }),
        },
        responses: {
          '200': { description: 'The group existed with this body', content: json({ type: 'object' }) },
          '201': { description: 'Created; it takes writes', content: json({ type: 'object' }) },
          '409': err('group_exists (another body), group_deleting, or default_group'),
          ...writeErrors,
        },
      },
      get: {
        summary: 'A group: its record, members with their roles and indexes, leader and term (admin)',
        parameters: [groupParam, timeoutHeader],
        responses: {
          '200': { description: 'The group', content: json({ type: 'object' }) },
          '404': err('group_not_found'),
          ...common,
        },
      },
      delete: {
        summary:
          "Delete a group: its members' storage is removed and the name may be created again (admin). A group holding keys needs force=true",
        parameters: [groupParam, { name: 'force', in: 'query', schema: { type: 'boolean' } }, timeoutHeader],
        responses: {
          '200': { description: 'Deleted', content: json({ type: 'object' }) },
          '404': err('group_not_found'),
          '409': err('group_not_empty (pass force=true), group_changed, or default_group'),
          ...writeErrors,
        },
      },
    },
    '/v1/groups/{name}/restore': {
      post: {
        summary:
          'Create group {name} from a dump (GET /v1/snapshot), streamed as the body (admin, a token not limited to groups). The group serves nothing (503 group_not_ready) until the whole dump is in and its trailer checks; leases keep their ids with the TTL they had left, keys get new revisions. A dump that is truncated, corrupted or of another format, or a failed write, removes the group again',
        parameters: [groupParam, { name: 'size', in: 'query', schema: { type: 'integer', enum: [3, 5], default: 3 } }],
        requestBody: { required: true, content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
        responses: {
          ...common,
          '201': {
            description:
              "The group, active, with `restored`: keys, leases, `revision` (the group's revision at which its key space is the source's at `source.revision`), `source` (group, revision, taken_at, keys, sha256), expired_leases and expired_keys (leases that ran out during the restore)",
            content: json({ type: 'object' }),
          },
          '400': err(
            '`bad_dump`: truncated, corrupted (JSON, count or checksum), another format or version, or a bad line; nothing was created',
          ),
          '409': err(
            'group_exists, group_restoring (a restore under way, or one cut short: DELETE removes it), default_group',
          ),
          '503': {
            description:
              '`restore_failed`: the store failed a write (the group was removed again), or `group_not_ready`; see Retry-After',
            headers: { 'Retry-After': { schema: { type: 'integer' } } },
            content: json(ref('Error')),
          },
        },
      },
    },
    '/v1/snapshot': {
      get: {
        summary:
          "The group's dump as of a revision, streamed as NDJSON (admin; 403 for a token limited to key prefixes): a header `{format, version, group, revision, taken_at}`, each lease a key names `{lease: {id, ttl, remaining}}` before that key, every key `{kv: {...}}` in key order, then `{end: {keys, leases, sha256}}` (SHA-256 of every byte before it). A dump the store cannot finish ends with `{error: {code, message}}` and no trailer",
        parameters: [
          q(
            'revision',
            { type: 'integer', minimum: 0 },
            'Dump the store as of this revision (default: its revision when the dump begins): 410 `compacted` below the compaction point, 400 `future_revision` past the current one',
          ),
          timeoutHeader,
        ],
        responses: {
          '200': {
            description: 'The dump; X-Revision is its revision',
            headers: { 'X-Revision': { schema: { type: 'integer' } } },
            content: { 'application/x-ndjson': { schema: { type: 'string' } } },
          },
          '410': compacted,
          ...common,
        },
      },
    },
    '/v1/cluster/members': {
      post: {
        summary: 'Add a learner, promote it to voter, or remove a member (admin)',
        parameters: [timeoutHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['action', 'node'],
            properties: {
              action: { type: 'string', enum: ['add_learner', 'promote', 'remove'] },
              node: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' },
            },
          }),
        },
        responses: {
          '200': { description: 'Applied' },
          '409': err('Refused (e.g. another change pending)'),
          ...writeErrors,
        },
      },
    },
    '/v1/cluster/leader': {
      post: {
        summary: 'Transfer leadership to a voter (admin)',
        parameters: [timeoutHeader],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            additionalProperties: false,
            required: ['to'],
            properties: { to: { type: 'string' } },
          }),
        },
        responses: { '200': { description: 'The new leader leads' }, '409': err('Not a voter'), ...common },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' } },
          },
        },
      },
      Unknown: {
        allOf: [ref('Error'), { type: 'object', required: ['outcome'], properties: { outcome: { const: 'unknown' } } }],
      },
      KeyValue: {
        type: 'object',
        required: ['key', 'create_revision', 'mod_revision', 'version'],
        properties: {
          key: { type: 'string' },
          value: { type: 'string', description: 'The value as UTF-8 text' },
          value_base64: { type: 'string', description: 'The value, if it is not UTF-8' },
          create_revision: { type: 'integer' },
          mod_revision: { type: 'integer' },
          version: { type: 'integer' },
          lease: { ...leaseIdSchema, description: 'The lease the key is attached to, if any' },
        },
      },
      Revision: { type: 'object', properties: { revision: { type: 'integer' } } },
      LeaderKey: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'revision'],
        properties: {
          key: { type: 'string' },
          revision: { type: 'integer' },
          lease: { ...leaseIdSchema, description: 'proclaim only' },
          value: { type: 'string', description: 'proclaim only' },
          value_base64: { type: 'string', description: 'proclaim only' },
        },
      },
      Deleted: { type: 'object', properties: { deleted: { type: 'integer' }, revision: { type: 'integer' } } },
      RangePage: {
        type: 'object',
        properties: {
          kvs: { type: 'array', items: ref('KeyValue') },
          count: { type: 'integer' },
          more: { type: 'boolean' },
          cursor: { type: 'string' },
          revision: { type: 'integer' },
        },
      },
      CasRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'expect'],
        properties: {
          key: { type: 'string' },
          value: { type: 'string' },
          value_base64: { type: 'string' },
          expect: {
            type: 'object',
            additionalProperties: false,
            description: 'Exactly one of these',
            properties: {
              value: { type: 'string' },
              value_base64: { type: 'string' },
              mod_revision: { type: 'integer' },
              version: { type: 'integer' },
              absent: { const: true },
            },
          },
          lease: leaseIdSchema,
        },
      },
      TxnRequest: {
        type: 'object',
        additionalProperties: false,
        properties: {
          compare: {
            type: 'array',
            maxItems: 128,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['key', 'target', 'op'],
              properties: {
                key: { type: 'string' },
                target: { type: 'string', enum: ['value', 'version', 'create_revision', 'mod_revision', 'lease'] },
                op: { type: 'string', enum: ['=', '!=', '<', '>'] },
                value: { type: ['string', 'integer'] },
                value_base64: { type: 'string' },
              },
            },
          },
          success: { type: 'array', maxItems: 128, items: ref('TxnOp') },
          failure: { type: 'array', maxItems: 128, items: ref('TxnOp') },
        },
      },
      TxnOp: {
        type: 'object',
        description: 'Exactly one of get, range, put, delete, delete_prefix, delete_range',
        minProperties: 1,
        maxProperties: 1,
        properties: {
          get: { type: 'object', properties: { key: { type: 'string' } } },
          range: { type: 'object' },
          put: {
            type: 'object',
            properties: {
              key: { type: 'string' },
              value: { type: 'string' },
              value_base64: { type: 'string' },
              lease: leaseIdSchema,
              prev_kv: { type: 'boolean' },
            },
          },
          delete: { type: 'object', properties: { key: { type: 'string' }, prev_kv: { type: 'boolean' } } },
          delete_prefix: { type: 'object', properties: { prefix: { type: 'string' }, prev_kv: { type: 'boolean' } } },
          delete_range: {
            type: 'object',
            properties: { start: { type: 'string' }, end: { type: 'string' }, prev_kv: { type: 'boolean' } },
          },
        },
      },
    },
  },
} as const;
