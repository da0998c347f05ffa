import { describe, expect, it } from 'vitest';
import {
  Counter,
  escapeLabelValue,
  Histogram,
  type HistogramSample,
  LATENCY_BUCKETS_S,
  MAX_SERIES_PER_FAMILY,
  type MetricFamily,
  NodeMetrics,
  Registry,
  renderExposition,
} from '../../src/node/metrics.ts';

/** The registry and the text exposition format (https://prometheus.io/docs/instrumenting/exposition_formats/). */

/** Every non-comment line: `name{labels} value`, label values quoted with \\, \" and \n escaped. */
const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;

function lines(text: string): string[] {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

describe('metrics: registry', () => {
  it('counts per label set, whatever the label order', () => {
    const c = new Counter('x_total', 'x');
    c.inc({ a: '1', b: '2' });
    c.inc({ b: '2', a: '1' }, 2);
    c.inc({ a: '2', b: '2' });
    expect(c.value({ a: '1', b: '2' })).toBe(3);
    expect(c.value({ a: '2', b: '2' })).toBe(1);
    expect(() => c.inc({}, -1)).toThrow(/cannot go down/);
  });

  it('bounds the series of a family', () => {
    const c = new Counter('x_total', 'x');
    for (let i = 0; i < MAX_SERIES_PER_FAMILY + 10; i++) c.inc({ i: String(i) });
    expect(c.family().samples).toHaveLength(MAX_SERIES_PER_FAMILY);
  });

  it('refuses bad names and duplicate families', () => {
    const r = new Registry();
    r.counter('ok_total', 'ok');
    expect(() => r.counter('ok_total', 'again')).toThrow(/twice/);
    expect(() => r.gauge('bad-name', 'x')).toThrow(/bad name/);
    expect(() => r.counter('y_total', 'y').inc({ le: '1' })).toThrow(/bad label/);
    expect(() => r.counter('z_total', 'z').inc({ 'a-b': '1' })).toThrow(/bad label/);
  });

  it('histograms count cumulatively into etcd-like buckets, 1 ms to 8.192 s', () => {
    expect(LATENCY_BUCKETS_S[0]).toBe(0.001);
    expect(LATENCY_BUCKETS_S.at(-1)).toBeCloseTo(8.192);
    const h = new Histogram('d_seconds', 'd', [0.1, 1]);
    for (const v of [0, 0.1, 0.5, 2, 3]) h.observe({ op: 'get' }, v);
    const f = h.family();
    expect(f.type).toBe('histogram');
    const s = f.samples[0] as HistogramSample;
    expect(s.cumulative).toEqual([2, 3, 5]);
    expect(s.count).toBe(5);
    expect(s.sum).toBeCloseTo(5.6);
    expect(() => new Histogram('e', 'e', [1, 0.5])).toThrow(/ascending/);
  });
});

describe('metrics: text exposition', () => {
  it('writes HELP and TYPE once per family, merging the series of every node', () => {
    const a = new NodeMetrics();
    const b = new NodeMetrics();
    a.isLeader.set({}, 1);
    b.isLeader.set({}, 0);
    a.sent('node-1', 100, ['app', 'heartbeat']);
    b.sent('node-0', 7, ['appResp']);
    a.requestDone('propose', 1000, 1003);
    const text = renderExposition([
      { labels: { node: 'node-0' }, families: a.snapshot() },
      { labels: { node: 'node-1' }, families: b.snapshot() },
    ]);
    const ls = lines(text);
    for (const name of [
      'durable_raft_server_is_leader',
      'durable_raft_network_peer_sent_bytes_total',
      'durable_raft_server_request_duration_seconds',
    ]) {
      expect(ls.filter((l) => l.startsWith(`# HELP ${name} `))).toHaveLength(1);
      expect(ls.filter((l) => l.startsWith(`# TYPE ${name} `))).toHaveLength(1);
    }
    expect(ls).toContain('# TYPE durable_raft_server_is_leader gauge');
    expect(ls).toContain('# TYPE durable_raft_network_peer_sent_bytes_total counter');
    expect(ls).toContain('# TYPE durable_raft_server_request_duration_seconds histogram');
    expect(ls).toContain('durable_raft_server_is_leader{node="node-0"} 1');
    expect(ls).toContain('durable_raft_server_is_leader{node="node-1"} 0');
    expect(ls).toContain('durable_raft_network_peer_sent_bytes_total{node="node-0",to="node-1"} 100');
    expect(ls).toContain('durable_raft_network_peer_sent_messages_total{node="node-0",to="node-1",type="heartbeat"} 1');
    expect(ls).toContain('durable_raft_network_peer_sent_bytes_total{node="node-1",to="node-0"} 7');
    // 3 ms: above the 2 ms bucket, within the 4 ms one; +Inf, sum and count follow.
    expect(ls).toContain(
      'durable_raft_server_request_duration_seconds_bucket{node="node-0",op="propose",le="0.002"} 0',
    );
    expect(ls).toContain(
      'durable_raft_server_request_duration_seconds_bucket{node="node-0",op="propose",le="0.004"} 1',
    );
    expect(ls).toContain('durable_raft_server_request_duration_seconds_bucket{node="node-0",op="propose",le="+Inf"} 1');
    expect(ls).toContain('durable_raft_server_request_duration_seconds_sum{node="node-0",op="propose"} 0.003');
    expect(ls).toContain('durable_raft_server_request_duration_seconds_count{node="node-0",op="propose"} 1');
    // The series of a family follow its TYPE line, before the next family's HELP.
    const typeAt = ls.indexOf('# TYPE durable_raft_server_is_leader gauge');
    expect(ls[typeAt + 1]).toMatch(/^durable_raft_server_is_leader\{node="node-0"\}/);
    expect(ls[typeAt + 2]).toMatch(/^durable_raft_server_is_leader\{node="node-1"\}/);
    for (const l of ls) if (!l.startsWith('#')) expect(l, l).toMatch(SAMPLE_LINE);
  });

  it('escapes label values and help text, and writes special values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    const f: MetricFamily = {
      name: 'odd',
      help: 'two\nlines \\ here',
      type: 'gauge',
      samples: [
        { labels: { v: 'say "hi"\n' }, value: Number.NaN },
        { labels: { v: 'inf' }, value: Number.POSITIVE_INFINITY },
        { labels: { v: 'neg' }, value: Number.NEGATIVE_INFINITY },
      ],
    };
    const ls = lines(renderExposition([{ labels: { node: 'x' }, families: [f] }]));
    expect(ls).toEqual([
      '# HELP odd two\\nlines \\\\ here',
      '# TYPE odd gauge',
      'odd{node="x",v="say \\"hi\\"\\n"} NaN',
      'odd{node="x",v="inf"} +Inf',
      'odd{node="x",v="neg"} -Inf',
    ]);
    for (const l of ls.slice(2)) expect(l).toMatch(SAMPLE_LINE);
  });

  it('skips a family whose type differs from the first of its name, and renders nothing for nothing', () => {
    const g: MetricFamily = { name: 'm', help: 'm', type: 'gauge', samples: [{ labels: {}, value: 1 }] };
    const c: MetricFamily = { name: 'm', help: 'm', type: 'counter', samples: [{ labels: {}, value: 2 }] };
    const text = renderExposition([
      { labels: { node: 'a' }, families: [g] },
      { labels: { node: 'b' }, families: [c] },
    ]);
    expect(lines(text)).toEqual(['# HELP m m', '# TYPE m gauge', 'm{node="a"} 1']);
    expect(renderExposition([])).toBe('');
  });

  it('a node reports every family the issue names, even before anything happened', () => {
    const names = new NodeMetrics().snapshot().map((f) => f.name);
    for (const want of [
      'durable_raft_server_has_leader',
      'durable_raft_server_is_leader',
      'durable_raft_server_leader_changes_seen_total',
      'durable_raft_server_term',
      'durable_raft_server_alarms_total',
      'durable_raft_server_proposals_committed_total',
      'durable_raft_server_proposals_applied_total',
      'durable_raft_server_proposals_pending',
      'durable_raft_server_proposals_failed_total',
      'durable_raft_server_read_indexes_total',
      'durable_raft_network_peer_sent_bytes_total',
      'durable_raft_network_peer_received_bytes_total',
      'durable_raft_network_peer_sent_messages_total',
      'durable_raft_network_peer_received_messages_total',
      'durable_raft_snapshot_sends_total',
      'durable_raft_snapshot_installs_total',
      'durable_raft_log_size_in_bytes',
      'durable_raft_mvcc_db_total_size_in_bytes',
      'durable_raft_mvcc_watchers',
      'durable_raft_lease_active',
      'durable_raft_server_request_duration_seconds',
    ])
      expect(names, want).toContain(want);
  });
});
