/**
 * The seeded random gateway calls of the differential test: kv put, range,
 * deleterange, txn and compaction on a few keys under one prefix, with the
 * edge cases etcd answers in particular ways (a missing key, a range end of
 * "\0", limits, sorts, filters, future and compacted revisions, duplicate
 * keys in a txn, ignore_value, a missing lease); and etcd's lock and
 * election recipes on names under a prefix of their own. The same calls go
 * to both stores, so each call is fixed in advance, except the leader key a
 * proclaim or resign sends, which is what etcd answered to an earlier
 * campaign (both stores answered the same, or the run has already failed).
 * The generator keeps a model of which leases are granted and who holds each
 * lock and election, so that it never sends a lock or campaign that would
 * wait for another holder: a sequential run would wait forever.
 */
import { Rng } from '../jepsen/common.ts';

export interface Call {
  readonly path: string;
  /** The body, or how to make it from the leader keys etcd's earlier campaigns answered (see `remember`). */
  readonly body: Record<string, unknown> | ((leaders: ReadonlyMap<string, unknown>) => Record<string, unknown>);
  /** A campaign's tag: the leader key etcd answers is kept under it for later proclaims and resigns. */
  readonly remember?: string;
  /** A streamed answer (observe): its lines are read for a while, then the call is cut. */
  readonly stream?: boolean;
  /** A malformed body, sent as it is: only the status and the gRPC code are compared (the messages are Go's). */
  readonly raw?: string;
}

/** Bodies etcd's gateway refuses (or, for some, takes), whatever route they go to. */
const MALFORMED = [
  '',
  '{',
  '[]',
  'null',
  '5',
  '1.5',
  '1e3',
  '"x"',
  '{"key":1}',
  '{"key":"not base64!"}',
  '{"key":"YQ==","limit":"x"}',
  '{"key":"YQ==","limit":1.5}',
  '{"key":"YQ==","unknown_field":true}',
  '{"ID":"x"}',
  '{"ID":[]}',
  '{"TTL":"60","ID":"-0"}',
  '{"key":"YQ==","sort_order":"SIDEWAYS"}',
  '{"compare":{}}',
  '{"success":[{}]}',
  '{"success":[1.5]}',
  '{"key":"YQ==","limit":1.0}',
  '{"key":"YQ==","limit":1e3}',
  '{"key":"YQ==","limit":"01"}',
  '{"key":"YQ==","limit":" 1 "}',
  '{"key":"YQ"}',
  '{"key":"_-8="}',
  '{"key":"YQ==\\n"}',
  '{"key":"YQ==","unknown":1.5}',
  '{"ID":" 77"}',
];

const enc = new TextEncoder();
const b64 = (s: string): string => btoa(String.fromCharCode(...enc.encode(s)));
/** The smallest key above every key with prefix `p` (etcd's clientv3.GetPrefixRangeEnd, for ASCII). */
const prefixEnd = (p: string): string => p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);

const NAMES = ['a', 'b', 'c', 'd', 'f/x', 'f/y', 'f/z'];
const ORDERS = ['NONE', 'ASCEND', 'DESCEND'];
const TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const RESULTS = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];

export function callsFor(rng: Rng, seed: number, prefix: string, n: number): Call[] {
  const key = () => prefix + rng.pick(NAMES);
  const value = () => `v${rng.int(5)}`;
  /** A small revision: real ones early in a run, future ones, compacted ones. */
  const REVISIONS = [0, 0, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 10_000];
  const revision = () => rng.pick(REVISIONS);
  // Its own stream, so that the calls drawn before it came stay as they were.
  const txnReads = new Rng(seed ^ 0x7a11);
  const interval = (): Record<string, unknown> => {
    switch (rng.int(5)) {
      case 0:
        return { key: b64(key()) };
      case 1:
        return { key: b64(prefix), range_end: b64(prefixEnd(prefix)) };
      case 2:
        return { key: b64(`${prefix}f/`), range_end: b64(prefixEnd(`${prefix}f/`)) };
      case 3:
        return { key: b64(key()), range_end: b64('\u0000') };
      default: {
        const [lo, hi] = [key(), key()].sort();
        return { key: b64(lo as string), range_end: b64(hi as string) };
      }
    }
  };
  const rangeBody = (): Record<string, unknown> => {
    const body: Record<string, unknown> = interval();
    if (rng.next() < 0.4) body.limit = rng.int(4);
    if (rng.next() < 0.2) body.revision = revision();
    if (rng.next() < 0.1) body.count_only = true;
    if (rng.next() < 0.1) body.keys_only = true;
    if (rng.next() < 0.2) {
      body.sort_order = rng.pick(ORDERS);
      body.sort_target = rng.pick(TARGETS);
    }
    if (rng.next() < 0.1)
      body[rng.pick(['min_mod_revision', 'max_mod_revision', 'min_create_revision', 'max_create_revision'])] =
        revision();
    return body;
  };
  /** Lease ids of this run's own (etcd would pick random ones): a few per seed, granted and revoked at random. */
  const leaseIds = Array.from({ length: 4 }, (_, i) => String(seed * 100 + i + 1));
  const lease = () => rng.pick(leaseIds);
  const granted = new Set<string>();
  /** Lock and election names under `c{seed}/`, which no kv call's interval reaches, and their holders' leases. */
  const holders = new Map<string, string>();
  const revoke = (id: string) => {
    granted.delete(id);
    for (const [name, holder] of holders) if (holder === id) holders.delete(name);
  };
  const putBody = (): Record<string, unknown> => {
    const body: Record<string, unknown> = { key: b64(key()), value: b64(value()) };
    if (rng.next() < 0.3) body.prev_kv = true;
    if (rng.next() < 0.05) {
      body.ignore_value = true;
      if (rng.next() < 0.7) delete body.value;
    }
    if (rng.next() < 0.1) body.lease = lease();
    if (rng.next() < 0.03) body.ignore_lease = true;
    return body;
  };
  const leaseCall = (): Call => {
    switch (rng.int(5)) {
      case 0: {
        // Long TTLs only: nothing expires during a run, where the two clocks would disagree.
        const [id, ttl] = [lease(), rng.pick(['600', '1200', 3600, '9000000001'])];
        if (ttl !== '9000000001') granted.add(id); // etcd's largest TTL is 9,000,000,000 s
        return { path: '/v3/lease/grant', body: { ID: id, TTL: ttl } };
      }
      case 1: {
        const id = lease();
        revoke(id);
        return { path: rng.pick(['/v3/lease/revoke', '/v3/kv/lease/revoke']), body: { ID: id } };
      }
      case 2:
        return { path: '/v3/lease/keepalive', body: { ID: lease() } };
      case 3:
        return { path: '/v3/lease/timetolive', body: { ID: lease(), ...(rng.next() < 0.5 ? { keys: true } : {}) } };
      default:
        return { path: '/v3/lease/leases', body: {} };
    }
  };
  const coordinationCall = (): Call => {
    const isLock = rng.next() < 0.5;
    const name = `c${seed}/${isLock ? 'lock' : 'election'}/${rng.pick(['a', 'b'])}`;
    const id = lease();
    const key = `${name}/${BigInt(id).toString(16)}`;
    if (!granted.has(id) && rng.next() < 0.6) {
      // Mostly a lease first, so that most locks and campaigns get somewhere.
      granted.add(id);
      return { path: '/v3/lease/grant', body: { ID: id, TTL: '600' } };
    }
    const holder = holders.get(name);
    // A lock or campaign that would wait (another lease holds the name) is not sent.
    const mayContend = !granted.has(id) || holder === undefined || holder === id;
    const x = rng.next();
    if (mayContend && x < 0.35) {
      if (granted.has(id)) holders.set(name, id);
      if (isLock) return { path: '/v3/lock/lock', body: { name: b64(name), lease: id } };
      return {
        path: '/v3/election/campaign',
        body: { name: b64(name), lease: id, value: b64(value()) },
        remember: `${name}|${id}`,
      };
    }
    if (isLock) {
      if (x < 0.7) {
        if (holder === id) holders.delete(name);
        return { path: '/v3/lock/unlock', body: { key: b64(key) } };
      }
      return { path: '/v3/kv/range', body: { key: b64(`${name}/`), range_end: b64(prefixEnd(`${name}/`)) } };
    }
    // A remembered leader key is current while its lease still holds the name; an invented one never is.
    const leader = (leaders: ReadonlyMap<string, unknown>) =>
      leaders.get(`${name}|${id}`) ?? { name: b64(name), key: b64(key), rev: '1', lease: id };
    if (x < 0.55) return { path: '/v3/election/proclaim', body: (l) => ({ leader: leader(l), value: b64(value()) }) };
    if (x < 0.7) {
      if (holder === id) holders.delete(name);
      return { path: '/v3/election/resign', body: (l) => ({ leader: leader(l) }) };
    }
    if (x < 0.9) return { path: '/v3/election/leader', body: { name: b64(name) } };
    return { path: '/v3/election/observe', body: { name: b64(name) }, stream: true };
  };
  const deleteBody = (): Record<string, unknown> => ({ ...interval(), ...(rng.next() < 0.4 ? { prev_kv: true } : {}) });
  const compare = (): Record<string, unknown> => {
    const target = rng.pick(['VERSION', 'CREATE', 'MOD', 'VALUE']);
    const c: Record<string, unknown> = { key: b64(key()), target, result: rng.pick(RESULTS) };
    if (rng.next() < 0.2) Object.assign(c, interval());
    if (target === 'VALUE') c.value = b64(value());
    else if (target === 'VERSION') c.version = String(rng.int(4));
    else c[target === 'CREATE' ? 'create_revision' : 'mod_revision'] = String(revision());
    return c;
  };
  const op = (depth = 0): Record<string, unknown> => {
    if (depth < 2 && rng.next() < 0.1)
      return {
        request_txn: {
          compare: Array.from({ length: rng.int(2) }, compare),
          success: Array.from({ length: rng.int(3) }, () => op(depth + 1)),
          failure: Array.from({ length: rng.int(3) }, () => op(depth + 1)),
        },
      };
    switch (rng.int(3)) {
      case 0: {
        const r: Record<string, unknown> = interval();
        if (rng.next() < 0.3) r.limit = rng.int(3);
        // As etcd's concurrency recipes read in a txn (the oldest waiter: sorted by create revision, limit 1).
        if (rng.next() < 0.25) {
          r.sort_order = rng.pick(ORDERS);
          r.sort_target = rng.pick(TARGETS);
        }
        if (rng.next() < 0.1)
          r[rng.pick(['min_mod_revision', 'max_mod_revision', 'min_create_revision', 'max_create_revision'])] =
            revision();
        if (rng.next() < 0.1) r.keys_only = true;
        if (txnReads.next() < 0.2) r.revision = String(txnReads.pick(REVISIONS));
        return { request_range: r };
      }
      case 1:
        return {
          request_put: { key: b64(key()), value: b64(value()), ...(rng.next() < 0.3 ? { prev_kv: true } : {}) },
        };
      default:
        return { request_delete_range: { key: b64(key()), ...(rng.next() < 0.3 ? { prev_kv: true } : {}) } };
    }
  };
  const out: Call[] = [];
  for (let i = 0; i < n; i++) {
    const x = rng.next();
    if (x < 0.015)
      out.push({
        // Not grant: without an ID etcd picks a random one.
        path: rng.pick(['/v3/kv/range', '/v3/kv/put', '/v3/kv/txn', '/v3/lease/revoke', '/v3/lease/timetolive']),
        body: {},
        raw: rng.pick(MALFORMED),
      });
    else if (x < 0.1) out.push(leaseCall());
    else if (x < 0.2) out.push(coordinationCall());
    else if (x < 0.34) out.push({ path: '/v3/kv/put', body: putBody() });
    else if (x < 0.6) out.push({ path: '/v3/kv/range', body: rangeBody() });
    else if (x < 0.72) out.push({ path: '/v3/kv/deleterange', body: deleteBody() });
    else if (x < 0.97) {
      const body = {
        compare: Array.from({ length: rng.int(3) }, compare),
        success: Array.from({ length: rng.int(4) }, () => op()),
        failure: Array.from({ length: rng.int(3) }, () => op()),
      };
      out.push({ path: '/v3/kv/txn', body });
    } else if (x < 0.99) {
      // Not 0 or 1: etcd records a compaction there (so a second one fails), the store does not yet (see README).
      out.push({ path: '/v3/kv/compaction', body: { revision: String(Math.max(2, revision())) } });
    } else out.push({ path: '/v3/kv/range', body: { key: '' } });
  }
  return out;
}
