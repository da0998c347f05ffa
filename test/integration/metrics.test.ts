import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { newApi, type TestApi } from './api-helpers.ts';
import { crash, leader, MEMBERS, sleep, status, stub, waitFor } from './cluster-helpers.ts';

/** GET /metrics: every member's metrics in the Prometheus text format, on a real cluster. */

interface Series {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;

/**
 * A small parser of the text exposition format, strict enough to fail on
 * what Prometheus would refuse: every line is a comment or `name{labels}
 * value`; every series follows the one TYPE line of its family.
 */
function parse(text: string): Series[] {
  expect(text.endsWith('\n'), 'ends with a newline').toBe(true);
  const types = new Map<string, string>();
  const out: Series[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      expect(types.has(name ?? ''), `one TYPE for ${name}`).toBe(false);
      expect(['counter', 'gauge', 'histogram']).toContain(type);
      types.set(name ?? '', type ?? '');
      continue;
    }
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const [, name = '', labelText = '', valueText = ''] = m;
    const labels: Record<string, string> = {};
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < labelText.length) {
      const l = LABEL.exec(labelText);
      if (!l) throw new Error(`bad labels: ${line}`);
      labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (valueText !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value: ${line}`);
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    expect(types.get(family), `a TYPE line before ${name}`).toBeDefined();
    if (family !== name) expect(types.get(family)).toBe('histogram');
    out.push({ name, labels, value });
  }
  return out;
}

async function scrape(api: TestApi, headers: Record<string, string> = {}): Promise<Series[]> {
  const res = await api.fetch('/metrics', { headers });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parse(text);
}

/** The value of the one series of `name` on `node` matching `labels` (0 if none). */
function one(s: readonly Series[], name: string, node: string, labels: Record<string, string> = {}): number {
  const found = s.filter(
    (x) => x.name === name && x.labels.node === node && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  expect(found.length, `${name} on ${node}`).toBeLessThanOrEqual(1);
  return found[0]?.value ?? 0;
}

/** The sum of every series of `name` on `node` matching `labels`. */
function sum(s: readonly Series[], name: string, node: string, labels: Record<string, string> = {}): number {
  return s
    .filter(
      (x) => x.name === name && x.labels.node === node && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
    )
    .reduce((a, x) => a + x.value, 0);
}

async function put(api: TestApi, key: string, value: string): Promise<void> {
  const res = await api.fetch(`/v1/kv/${key}`, { method: 'PUT', body: value });
  expect(res.status, await res.text()).toBe(200);
}

/** Scrapes until every member has applied what the leader committed, and returns that scrape. */
async function settled(api: TestApi): Promise<Series[]> {
  return waitFor('every member applied the same index', async () => {
    const s = await scrape(api);
    const applied = MEMBERS.map((m) => one(s, 'durable_raft_server_proposals_applied_total', m));
    const commit = Math.max(...MEMBERS.map((m) => one(s, 'durable_raft_server_proposals_committed_total', m)));
    return applied.every((a) => a === commit) ? s : undefined;
  });
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('GET /metrics', () => {
  it('every member with a node label, one leader, the same applied index, counters that grow', async () => {
    const api = await newApi();
    for (let i = 0; i < 5; i++) await put(api, `m/k${i}`, `v${i}`);
    const s1 = await settled(api);
    const lead = (await leader(api.names)).slice(api.prefix.length);

    for (const m of MEMBERS) {
      expect(one(s1, 'durable_raft_member_up', m), m).toBe(1);
      expect(one(s1, 'durable_raft_server_has_leader', m), m).toBe(1);
      expect(one(s1, 'durable_raft_server_leader_changes_seen_total', m), m).toBeGreaterThanOrEqual(1);
      expect(one(s1, 'durable_raft_mvcc_db_total_size_in_bytes', m), m).toBeGreaterThan(0);
    }
    const leaders = s1.filter((x) => x.name === 'durable_raft_server_is_leader' && x.value === 1);
    expect(leaders.map((x) => x.labels.node)).toEqual([lead]);
    expect(s1.filter((x) => x.name === 'durable_raft_server_is_leader')).toHaveLength(MEMBERS.length);
    const terms = new Set(MEMBERS.map((m) => one(s1, 'durable_raft_server_term', m)));
    expect(terms.size).toBe(1);
    // Every series names its node, and only members.
    expect(s1.every((x) => MEMBERS.includes(x.labels.node ?? ''))).toBe(true);

    const applied1 = one(s1, 'durable_raft_server_proposals_applied_total', lead);
    expect(applied1).toBeGreaterThanOrEqual(5);
    const sent1 = sum(s1, 'durable_raft_network_peer_sent_bytes_total', lead);
    expect(sent1).toBeGreaterThan(0);
    expect(sum(s1, 'durable_raft_network_peer_sent_messages_total', lead, { type: 'app' })).toBeGreaterThan(0);
    for (const m of MEMBERS.filter((x) => x !== lead))
      expect(one(s1, 'durable_raft_network_peer_received_bytes_total', m, { from: lead }), m).toBeGreaterThan(0);
    const proposes1 = one(s1, 'durable_raft_server_request_duration_seconds_count', lead, { op: 'propose' });
    expect(proposes1).toBeGreaterThanOrEqual(5);
    expect(one(s1, 'durable_raft_server_request_duration_seconds_bucket', lead, { op: 'propose', le: '+Inf' })).toBe(
      proposes1,
    );
    expect(one(s1, 'durable_raft_server_proposals_pending', lead)).toBe(0);

    for (let i = 0; i < 5; i++) await put(api, `m/k${i}`, `w${i}`);
    const res = await api.fetch('/v1/kv/m/k0');
    expect(new TextDecoder().decode(await res.arrayBuffer())).toBe('w0');
    const s2 = await settled(api);
    expect(one(s2, 'durable_raft_server_proposals_applied_total', lead)).toBeGreaterThanOrEqual(applied1 + 5);
    expect(one(s2, 'durable_raft_server_proposals_committed_total', lead)).toBeGreaterThanOrEqual(applied1 + 5);
    expect(sum(s2, 'durable_raft_network_peer_sent_bytes_total', lead)).toBeGreaterThan(sent1);
    expect(
      one(s2, 'durable_raft_server_request_duration_seconds_count', lead, { op: 'propose' }),
    ).toBeGreaterThanOrEqual(proposes1 + 5);
    expect(one(s2, 'durable_raft_server_read_indexes_total', lead, { result: 'ready' })).toBeGreaterThanOrEqual(1);
    expect(one(s2, 'durable_raft_server_request_duration_seconds_count', lead, { op: 'get' })).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('a member that does not answer in time is member_up 0, and the scrape still answers', async () => {
    const api = await newApi();
    await put(api, 'm/x', '1');
    await settled(api);
    const lead = (await leader(api.names)).slice(api.prefix.length);
    const stuck = MEMBERS.find((m) => m !== lead) ?? '';
    // Hold the member's input gate: every call to it waits, as to an overloaded or unreachable object.
    let blocking = false;
    const held = runInDurableObject(stub(api.prefix + stuck), async (_instance, state) => {
      await state.blockConcurrencyWhile(async () => {
        blocking = true;
        await sleep(3000);
      });
    });
    await waitFor('the member to block', async () => (blocking ? true : undefined));
    const started = Date.now();
    const s = await scrape(api, { 'x-request-timeout-ms': '1000' });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(one(s, 'durable_raft_member_up', stuck)).toBe(0);
    for (const m of MEMBERS.filter((x) => x !== stuck)) expect(one(s, 'durable_raft_member_up', m), m).toBe(1);
    expect(s.filter((x) => x.labels.node === stuck).map((x) => x.name)).toEqual(['durable_raft_member_up']);
    expect(one(s, 'durable_raft_server_is_leader', lead)).toBe(1);
    await held;
    // Once it answers again, it is back.
    await waitFor('the member answers again', async () => {
      const again = await scrape(api);
      return one(again, 'durable_raft_member_up', stuck) === 1 ? true : undefined;
    });
  });

  it('quorum reads: each linearizable read round asks one follower of two, the one that confirmed the last round', async () => {
    const api = await newApi();
    await put(api, 'm/read', 'v');
    const before = await settled(api);
    const lead = (await leader(api.names)).slice(api.prefix.length);
    const followers = MEMBERS.filter((m) => m !== lead);
    const beats = (s: readonly Series[], m: string) =>
      sum(s, 'durable_raft_network_peer_received_messages_total', m, { from: lead, type: 'heartbeat' });
    for (let i = 0; i < 30; i++) {
      const res = await api.fetch('/v1/kv/m/read');
      expect(res.status, await res.text()).toBe(200);
    }
    const after = await scrape(api);
    const got = followers.map((m) => beats(after, m) - beats(before, m));
    // One follower takes a heartbeat per read round; the other only the periodic ones.
    expect(Math.max(...got)).toBeGreaterThanOrEqual(30);
    expect(Math.min(...got)).toBeLessThan(Math.max(...got) / 2);
  });

  it('appends stand in for heartbeats: followers taking a stream of writes get almost no periodic heartbeat', async () => {
    const api = await newApi();
    await put(api, 'm/w', 'v');
    const before = await settled(api);
    const lead = (await leader(api.names)).slice(api.prefix.length);
    const followers = MEMBERS.filter((m) => m !== lead);
    const got = (s: readonly Series[], m: string, type: string) =>
      sum(s, 'durable_raft_network_peer_received_messages_total', m, { from: lead, type });
    // Writes one after another, each far sooner than a heartbeat interval (2 ticks of 20 ms).
    const started = Date.now();
    let writes = 0;
    while (Date.now() - started < 800) await put(api, `m/w${writes++ % 10}`, 'v');
    const rounds = Math.floor((Date.now() - started) / 40);
    const after = await scrape(api);
    expect(rounds).toBeGreaterThanOrEqual(15);
    for (const m of followers) {
      // Each follower took appends all along (the spare one its backlog at each round)...
      expect(got(after, m, 'app') - got(before, m, 'app'), m).toBeGreaterThanOrEqual(rounds / 2);
      // ... and so needed almost none of the rounds' heartbeats (every one of them without the rule).
      expect(got(after, m, 'heartbeat') - got(before, m, 'heartbeat'), m).toBeLessThan(rounds / 4);
    }
  });

  it('a restart resets in-memory counters; what Raft persists survives', async () => {
    const api = await newApi();
    for (let i = 0; i < 10; i++) await put(api, `m/r${i}`, `${i}`);
    const before = await settled(api);
    const lead = (await leader(api.names)).slice(api.prefix.length);
    const follower = MEMBERS.find((m) => m !== lead) ?? '';
    const received = sum(before, 'durable_raft_network_peer_received_messages_total', follower);
    const applied = one(before, 'durable_raft_server_proposals_applied_total', follower);
    expect(received).toBeGreaterThanOrEqual(10);
    await crash(api.prefix + follower);
    const after = await scrape(api);
    expect(one(after, 'durable_raft_member_up', follower)).toBe(1);
    expect(sum(after, 'durable_raft_network_peer_received_messages_total', follower)).toBeLessThan(received);
    expect(one(after, 'durable_raft_server_proposals_applied_total', follower)).toBeGreaterThanOrEqual(applied);
    expect(one(after, 'durable_raft_server_term', follower)).toBeGreaterThanOrEqual(
      one(before, 'durable_raft_server_term', follower),
    );
  });

  it('scrapes do not wake a quiet cluster: it goes quiet while scraped, and stays so', async () => {
    const api = await newApi();
    await put(api, 'm/q', '1');
    // Scraped all along: if a scrape ticked or woke a node, the cluster would never go quiet.
    await waitFor('every node quiet', async () => {
      const s = await scrape(api);
      return MEMBERS.every((m) => one(s, 'durable_raft_server_quiet', m) === 1) ? true : undefined;
    });
    await waitFor('no alarm left', async () =>
      (await Promise.all(api.names.map(status))).every((st) => st.alarmAt === null) ? true : undefined,
    );
    for (let i = 0; i < 5; i++) {
      const s = await scrape(api);
      for (const m of MEMBERS) {
        expect(one(s, 'durable_raft_server_quiet', m), m).toBe(1);
        expect(one(s, 'durable_raft_server_has_leader', m), m).toBe(1);
      }
      await sleep(100);
    }
    for (const st of await Promise.all(api.names.map(status))) {
      expect(st.quiet).toBe(true);
      expect(st.alarmAt).toBeNull();
    }
  });

  it('needs the admin or metrics role; a metrics token reads nothing else', async () => {
    const tokens = 'metrics:metrics-token-01, read:read-token-0001, write:write-token-001, admin:admin-token-001';
    const api = await newApi({ allowAnonymous: false, authTokens: tokens });
    const matrix: [string | undefined, string, RequestInit, number][] = [
      [undefined, '/metrics', {}, 401],
      ['metrics-token-01', '/metrics', {}, 200],
      ['admin-token-001', '/metrics', {}, 200],
      ['read-token-0001', '/metrics', {}, 403],
      ['write-token-001', '/metrics', {}, 403],
      ['metrics-token-01', '/v1/kv/x', {}, 403],
      ['metrics-token-01', '/v1/kv?prefix=a', {}, 403],
      ['metrics-token-01', '/v1/kv/x', { method: 'PUT', body: 'v' }, 403],
      ['metrics-token-01', '/v1/cluster', {}, 403],
      ['metrics-token-01', '/v1/leases', {}, 403],
      ['metrics-token-01', '/v3/kv/range', { method: 'POST', body: JSON.stringify({ key: 'eA==' }) }, 403],
      ['read-token-0001', '/v1/kv/x', {}, 404],
    ];
    for (const [token, path, init, want] of matrix) {
      const res = await api.fetch(path, { ...init, headers: token ? bearer(token) : {} });
      const text = await res.text();
      expect(res.status, `${token} ${init.method ?? 'GET'} ${path}: ${text}`).toBe(want);
      if (want === 200) expect(parse(text).some((x) => x.name === 'durable_raft_member_up')).toBe(true);
    }
    // The query is read strictly, as on every route.
    const res = await api.fetch('/metrics?x=1', { headers: bearer('metrics-token-01') });
    expect(res.status).toBe(400);
    await res.body?.cancel();
  });
});
