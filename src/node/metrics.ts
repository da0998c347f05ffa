/**
 * Metrics of one node, and the Prometheus text exposition format (version
 * 0.0.4) they are scraped in. Names follow etcd's (`etcd_server_has_leader`
 * becomes `durable_raft_server_has_leader`, and so on).
 *
 * Counters live in the Durable Object's memory: they start at 0 when the
 * object starts and vanish with it (Prometheus reads a drop as a counter
 * reset). What Raft persists (term, commit and applied index, sizes) is read
 * from the node at scrape time, so it survives restarts. Nothing here reads a
 * clock or sets a timer: a metric costs nothing until it is scraped.
 *
 * No Cloudflare API: the runtime and the Worker both use this file.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

/** One series of a counter or a gauge. */
export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

/** One series of a histogram: cumulative counts per upper bound (`le`), then the sum and count of observations. */
export interface HistogramSample {
  readonly labels: Labels;
  /** Upper bounds in ascending order, without +Inf. */
  readonly bounds: readonly number[];
  /** `cumulative[i]`: observations <= bounds[i]; one more entry for +Inf (= count). */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/** A metric family as a plain, serializable value (what a node's metrics RPC returns). */
export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly samples: readonly HistogramSample[];
    };

/**
 * Request latency buckets in seconds, as etcd's (1 ms doubling to 8.192 s,
 * `prometheus.ExponentialBuckets(0.001, 2, 14)`).
 */
export const LATENCY_BUCKETS_S: readonly number[] = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

/** The Content-Type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** At most this many series per family: a bound on memory whatever the label values are. */
export const MAX_SERIES_PER_FAMILY = 1024;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A stable key for a label set (label order does not matter): `name="value"`
 * pairs (names are word characters, values JSON strings) in name order. It
 * is built on every count of the hot path, so it avoids arrays where it can.
 */
function keyOf(labels: Labels): string {
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  let key = '';
  for (const k of names) key += `${k}=${JSON.stringify(labels[k])},`;
  return key;
}

function checkLabels(labels: Labels): void {
  for (const k of Object.keys(labels)) {
    if (!LABEL_NAME.test(k) || k.startsWith('__') || k === 'le') throw new Error(`metrics: bad label name ${k}`);
  }
}

/** Series by label set, at most MAX_SERIES_PER_FAMILY of them (past that, new label sets are not recorded). */
class Series<T> {
  private readonly map = new Map<string, { labels: Labels; value: T }>();
  private readonly init: () => T;

  constructor(init: () => T) {
    this.init = init;
  }

  get(labels: Labels): { labels: Labels; value: T } | undefined {
    const key = keyOf(labels);
    let s = this.map.get(key);
    if (!s) {
      if (this.map.size >= MAX_SERIES_PER_FAMILY) return undefined;
      checkLabels(labels);
      s = { labels: { ...labels }, value: this.init() };
      this.map.set(key, s);
    }
    return s;
  }

  values(): IterableIterator<{ labels: Labels; value: T }> {
    return this.map.values();
  }

  clear(): void {
    this.map.clear();
  }
}

/** A number per label set, rendered as one family of `type`: what counters and gauges share. */
abstract class Scalar {
  readonly name: string;
  readonly help: string;
  protected readonly series = new Series(() => 0);
  protected abstract readonly type: 'counter' | 'gauge';

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  family(): MetricFamily {
    const samples = [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, samples };
  }
}

/** A value that only goes up (until the process restarts). */
export class Counter extends Scalar {
  protected readonly type = 'counter';

  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new Error(`metrics: ${this.name} cannot go down (by ${by})`);
    const s = this.series.get(labels);
    if (s) s.value += by;
  }

  /** For a total kept elsewhere in memory since the start (read at scrape time): it must only grow. */
  setTotal(labels: Labels, total: number): void {
    const s = this.series.get(labels);
    if (s) s.value = total;
  }

  value(labels: Labels = {}): number {
    return this.series.get(labels)?.value ?? 0;
  }
}

/** A value read at scrape time: the series set at the last collection. */
export class Gauge extends Scalar {
  protected readonly type = 'gauge';

  set(labels: Labels, value: number): void {
    const s = this.series.get(labels);
    if (s) s.value = value;
  }

  /** Drops every series (a gauge only some nodes report, e.g. the leader's). */
  clear(): void {
    this.series.clear();
  }
}

/** Observations counted in fixed buckets. */
export class Histogram {
  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];
  private readonly series: Series<{ counts: number[]; sum: number; count: number }>;

  constructor(name: string, help: string, bounds: readonly number[] = LATENCY_BUCKETS_S) {
    if (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] ?? 0))))
      throw new Error(`metrics: ${name}: bounds must be finite and ascending`);
    this.name = name;
    this.help = help;
    this.bounds = bounds;
    this.series = new Series(() => ({ counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 }));
  }

  observe(labels: Labels, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.series.get(labels);
    if (!s) return;
    let i = this.bounds.findIndex((b) => value <= b);
    if (i < 0) i = this.bounds.length;
    s.value.counts[i] = (s.value.counts[i] ?? 0) + 1;
    s.value.sum += value;
    s.value.count++;
  }

  family(): MetricFamily {
    const samples = [...this.series.values()].map(({ labels, value }) => {
      let acc = 0;
      const cumulative = value.counts.map((c) => {
        acc += c;
        return acc;
      });
      return { labels, bounds: this.bounds, cumulative, sum: value.sum, count: value.count };
    });
    return { name: this.name, help: this.help, type: 'histogram', samples };
  }
}

type Metric = Counter | Gauge | Histogram;

/** The metrics of one process, in the order they were made. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }

  histogram(name: string, help: string, bounds?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, bounds));
  }

  /** Every family as it is now. */
  snapshot(): MetricFamily[] {
    return [...this.metrics.values()].map((m) => m.family());
  }

  private add<M extends Metric>(m: M): M {
    if (!METRIC_NAME.test(m.name)) throw new Error(`metrics: bad name ${m.name}`);
    if (this.metrics.has(m.name)) throw new Error(`metrics: ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
}

/** A number as the exposition format writes it. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** A label value escaped as the exposition format requires: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** The families of several sources (nodes), each tagged with its labels. */
export interface LabelledFamilies {
  /** Labels added in front of every series of these families, e.g. `{ node: "node-0" }`. */
  readonly labels: Labels;
  readonly families: readonly MetricFamily[];
}

/**
 * Renders families in the text exposition format: one `# HELP` and one
 * `# TYPE` line per family name (families of the same name from several
 * sources are merged, in the order first seen), then its series. A family
 * whose type differs from the first one of its name is skipped: an
 * exposition may not mix types under one name.
 */
export function renderExposition(sources: readonly LabelledFamilies[]): string {
  const merged = new Map<string, { family: MetricFamily; lines: string[] }>();
  for (const src of sources) {
    checkLabels(src.labels);
    for (const f of src.families) {
      if (!METRIC_NAME.test(f.name)) continue;
      let m = merged.get(f.name);
      if (!m) {
        m = { family: f, lines: [] };
        merged.set(f.name, m);
      }
      if (m.family.type !== f.type) continue;
      m.lines.push(...seriesLines(f, src.labels));
    }
  }
  const out: string[] = [];
  for (const { family, lines } of merged.values()) {
    out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    out.push(`# TYPE ${family.name} ${family.type}`);
    out.push(...lines);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function seriesLines(f: MetricFamily, extra: Labels): string[] {
  const lines: string[] = [];
  if (f.type !== 'histogram') {
    for (const s of f.samples) lines.push(`${f.name}${labelText({ ...extra, ...s.labels })} ${formatValue(s.value)}`);
    return lines;
  }
  for (const s of f.samples) {
    const labels = { ...extra, ...s.labels };
    s.bounds.forEach((b, i) => {
      lines.push(`${f.name}_bucket${labelText({ ...labels, le: formatValue(b) })} ${s.cumulative[i] ?? 0}`);
    });
    lines.push(`${f.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${s.count}`);
    lines.push(`${f.name}_sum${labelText(labels)} ${formatValue(s.sum)}`);
    lines.push(`${f.name}_count${labelText(labels)} ${s.count}`);
  }
  return lines;
}

/**
 * The instruments of one Raft node. Counters are incremented where things
 * happen (the runtime, the transport's callbacks, the object's RPCs); gauges
 * are set from the node's state when a scrape asks (NodeRuntime.collectMetrics).
 */
export class NodeMetrics {
  readonly registry = new Registry();

  // ---- server (etcd_server_*) ----
  readonly hasLeader = this.registry.gauge(
    'durable_raft_server_has_leader',
    'Whether this node knows a leader (1) or not (0); a sleeping follower counts the leader it will wake.',
  );
  readonly isLeader = this.registry.gauge(
    'durable_raft_server_is_leader',
    'Whether this node is the leader (1) or not (0).',
  );
  readonly leaderChanges = this.registry.counter(
    'durable_raft_server_leader_changes_seen_total',
    'Leaders (a node in a term) this node has seen since it started.',
  );
  readonly term = this.registry.gauge('durable_raft_server_term', 'The Raft term of this node.');
  readonly quiet = this.registry.gauge(
    'durable_raft_server_quiet',
    'Whether this node sleeps (1): no ticks, no heartbeats, no alarm until the next request.',
  );
  readonly alarms = this.registry.counter(
    'durable_raft_server_alarms_total',
    'Alarms this node ran (its own timeouts: heartbeat rounds, elections, lease expiries); each is a billed request.',
  );
  readonly proposalsCommitted = this.registry.counter(
    'durable_raft_server_proposals_committed_total',
    "Consensus proposals committed: this node's commit index, as etcd reports it (persisted: survives restarts).",
  );
  readonly proposalsApplied = this.registry.counter(
    'durable_raft_server_proposals_applied_total',
    "Consensus proposals applied: this node's applied index, as etcd reports it (persisted: survives restarts).",
  );
  readonly proposalsPending = this.registry.gauge(
    'durable_raft_server_proposals_pending',
    'Proposals made on this node that wait to apply.',
  );
  readonly proposalsFailed = this.registry.counter(
    'durable_raft_server_proposals_failed_total',
    'Proposals made on this node that did not apply, by reason (timeout, dropped, unknown, refused).',
  );
  readonly readIndexes = this.registry.counter(
    'durable_raft_server_read_indexes_total',
    'Linearizable read barriers (ReadIndex) on this node, by result (ready, not_leader, timeout).',
  );
  readonly requestDuration = this.registry.histogram(
    'durable_raft_server_request_duration_seconds',
    'Time this node took to serve a request from the Worker, by operation (redirects to the leader are not counted).',
  );

  // ---- network (etcd_network_*) ----
  readonly sentBytes = this.registry.counter(
    'durable_raft_network_peer_sent_bytes_total',
    'Bytes of Raft messages and snapshot chunks sent to each peer.',
  );
  readonly receivedBytes = this.registry.counter(
    'durable_raft_network_peer_received_bytes_total',
    'Bytes of Raft messages and snapshot chunks received from each peer.',
  );
  readonly sentMessages = this.registry.counter(
    'durable_raft_network_peer_sent_messages_total',
    'Raft messages sent to each peer, by type.',
  );
  readonly receivedMessages = this.registry.counter(
    'durable_raft_network_peer_received_messages_total',
    'Raft messages received from each peer, by type.',
  );
  readonly sentFailures = this.registry.counter(
    'durable_raft_network_peer_sent_failures_total',
    'Sends to each peer that failed or got no answer in time.',
  );

  // ---- snapshots (etcd_debugging_snap_*, etcd_network_snapshot_*) ----
  readonly snapshotSends = this.registry.counter(
    'durable_raft_snapshot_sends_total',
    'Snapshots this leader finished streaming to a follower (the install message sent).',
  );
  readonly snapshotChunksSent = this.registry.counter(
    'durable_raft_snapshot_chunks_sent_total',
    'Snapshot chunks this leader sent.',
  );
  readonly snapshotInstalls = this.registry.counter(
    'durable_raft_snapshot_installs_total',
    'Snapshots this node installed in place of its state.',
  );

  // ---- storage (etcd_mvcc_db_total_size_in_bytes, etcd_debugging_mvcc_*) ----
  readonly dbSize = this.registry.gauge(
    'durable_raft_mvcc_db_total_size_in_bytes',
    "The size of this node's SQLite database: log, state machine, history and leases.",
  );
  readonly logSize = this.registry.gauge(
    'durable_raft_log_size_in_bytes',
    'Bytes of entry data in the Raft log (compacted behind the applied index).',
  );
  readonly logEntries = this.registry.gauge('durable_raft_log_entries', 'Entries in the Raft log.');
  readonly watchers = this.registry.gauge('durable_raft_mvcc_watchers', 'Watchers this node serves.');

  // ---- leases (etcd_debugging_lease_*) ----
  readonly leasesGranted = this.registry.counter('durable_raft_lease_granted_total', 'Lease grants this node applied.');
  readonly leasesRevoked = this.registry.counter(
    'durable_raft_lease_revoked_total',
    'Lease revocations (and expiries) this node applied.',
  );
  readonly leasesRenewed = this.registry.counter(
    'durable_raft_lease_renewed_total',
    'Lease keepalives this leader answered.',
  );
  readonly leasesActive = this.registry.gauge(
    'durable_raft_lease_active',
    "Leases on the leader's clock; only the leader reports it.",
  );

  /** Raft messages from `from`, `bytes` long on the wire. */
  received(from: string, bytes: number, types: readonly string[]): void {
    this.receivedBytes.inc({ from }, bytes);
    for (const type of types) this.receivedMessages.inc({ from, type });
  }

  /** A body sent to `to` carrying messages of `types` (none for a snapshot chunk). */
  sent(to: string, bytes: number, types: readonly string[]): void {
    this.sentBytes.inc({ to }, bytes);
    for (const type of types) this.sentMessages.inc({ to, type });
  }

  /**
   * Records how long a request took, in seconds, from `startMs` (Date.now()).
   * In Workers the clock moves only across I/O, so a request served without
   * waiting on the network records 0.
   */
  requestDone(op: string, startMs: number, nowMs: number): void {
    this.requestDuration.observe({ op }, Math.max(0, nowMs - startMs) / 1000);
  }

  snapshot(): MetricFamily[] {
    return this.registry.snapshot();
  }
}
