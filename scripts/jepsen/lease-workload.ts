/**
 * `--workload lease`: each client, over and over, grants a lease
 * (POST /v1/leases, the minimum TTL), attaches 1-3 keys to it
 * (PUT /v1/kv/jepsen-lease/...?lease=ID), keeps it alive every ttl/3 for a
 * random while (recording each acknowledged keepalive's call and return
 * times), then stops renewing and reads its keys (linearizable GETs) until
 * they are gone.
 *
 * Checks:
 *   (a) never before TTL: no read that found a key absent returned before
 *       T + TTL, where T is the call time of the last keepalive acknowledged
 *       before the read was called (or the grant's call time); likewise no
 *       keepalive answered lease_not_found before that bound;
 *   (b) expiry happens: every key is observed gone within 3*TTL + 10 s of the
 *       later of the end of the last renewal attempt (acknowledged or not: an
 *       unanswered keepalive may have renewed) and the heal of every fault
 *       that began before that bound passed (a new leader adds an election
 *       timeout, a restart restarts the clock);
 *   (c) atomic: in the store's own history (a watch from revision 1 after
 *       the run), each lease's keys are all deleted in one revision, and every
 *       acknowledged put is there with its lease.
 */
import {
  type Check,
  errorCode,
  type FaultEvent,
  http,
  nowNs,
  nowS,
  outcomeOf,
  Rng,
  statusOf,
  type Workload,
  type WorkloadContext,
} from './common.ts';
import { sleep } from './node-api.ts';
import { type HistEvent, historyValues, keyLives, readStoreHistory } from './store-history.ts';

const PREFIX = 'jepsen-lease/';
/** The TTL asked for; the store raises it to its minimum (2 s with the jepsen timing) and says so. */
const ASK_TTL = 2;
/** How long a client keeps a lease alive before letting it go, in seconds. */
const HOLD_S: [number, number] = [0.5, 5];
const POLL_MS = 150;
/** How many leases are renewed late (0.75-1.1 TTLs after the previous renewal) rather than every ttl/3. */
const LATE_RATE = 0.5;

/** The expiry bound of check (b), in seconds, for a lease of `ttl` seconds. */
export function expiryBoundS(ttl: number): number {
  return 3 * ttl + 10;
}

interface Timed {
  call: number;
  return: number;
}

interface LeaseKey {
  key: string;
  /** The value put (`<tag>c<client>-l<n>-k<j>`). */
  value: string;
  put: Timed & { outcome: 'ok' | 'failed' | 'unknown'; revision?: number; detail: string };
  /** The return time of the first read that found it absent. */
  goneAt?: number;
}

export interface LeaseRun {
  client: number;
  n: number;
  grant: Timed & { outcome: 'ok' | 'failed' | 'unknown'; detail: string };
  id?: string;
  ttl: number;
  /** Renewed late (see LATE_RATE). */
  late: boolean;
  keys: LeaseKey[];
  keepalives: (Timed & { outcome: 'ok' | 'not_found' | 'failed' | 'unknown'; detail: string })[];
  /** Reads that answered (found, with the value read, or not). */
  reads: (Timed & { key: string; found: boolean; value?: string })[];
  /** When the last renewal attempt ended (its answer, or the client gave up on it), or the grant's return. */
  renewEnd: number;
  /** The keys with an acknowledged put were all seen gone. */
  expired: boolean;
  /** The polling gave up (its bound passed, or the run's end). */
  gaveUp: boolean;
}

export interface State {
  readonly runs: LeaseRun[];
  history?: { revisions: number; events: number; connections: number };
  /** The store's history of jepsen-* read after the run (for the history file). */
  store?: readonly HistEvent[];
  stats?: { observed: number; maxAfterAck: number; minMargin: number };
}

export function leaseWorkload(ctx: WorkloadContext): Workload {
  const st: State = { runs: [] };
  const running = Promise.all(
    Array.from({ length: ctx.clients }, (_, i) => leaseClient(i, ctx, new Rng(ctx.seed * 1000 + i + 1), st)),
  ).then(() => undefined);
  return {
    running,
    check: () => check(ctx, st),
    summary: () => summary(st),
    written: () =>
      st.runs.flatMap((r) =>
        r.keys.map((k) => ({ value: k.value, what: `${name(r)} put ${k.key}=${k.value} (${k.put.outcome})` })),
      ),
    observed: () => [
      ...st.runs.flatMap((r) =>
        r.reads.flatMap((x) =>
          x.value ? [{ value: x.value, what: `${name(r)} read ${x.key} [${sec(x.call)}s..${sec(x.return)}s]` }] : [],
        ),
      ),
      ...historyValues(st.store ?? []),
    ],
    // One line per lease (grant, keys, keepalives, reads), in grant order, then the store's history ("store").
    lines: () => [
      ...[...st.runs].sort((x, y) => x.grant.call - y.grant.call).map((r) => JSON.stringify({ type: 'lease', ...r })),
      ...(st.store ?? []).map((e) =>
        JSON.stringify({ type: 'store', revision: e.revision, event: e.type, kv: e.kv, prev_kv: e.prev_kv }),
      ),
    ],
  };
}

// ---- clients ----

async function leaseClient(id: number, ctx: WorkloadContext, rng: Rng, st: State): Promise<void> {
  for (let n = 0; nowS() < ctx.stop.at - 0.5; n++) {
    const call = nowNs();
    const g = await http(ctx.base, 'POST', '/v1/leases', JSON.stringify({ ttl: ASK_TTL }), ctx.opTimeoutMs, {
      json: true,
    });
    const run: LeaseRun = {
      client: id,
      n,
      grant: { call, return: nowNs(), outcome: outcomeOf(g), detail: statusOf(g) },
      ttl: ASK_TTL,
      late: false,
      keys: [],
      keepalives: [],
      reads: [],
      renewEnd: 0,
      expired: false,
      gaveUp: false,
    };
    run.renewEnd = run.grant.return;
    st.runs.push(run);
    if ('error' in g || g.status !== 200) {
      await sleep(100 + rng.int(200));
      continue;
    }
    const body = JSON.parse(g.text) as { id: string; ttl: number };
    run.id = body.id;
    run.ttl = body.ttl;
    // Attach 1-3 keys.
    const count = 1 + rng.int(3);
    for (let j = 0; j < count; j++) {
      const key = `${PREFIX}c${id}-l${n}-k${j}`;
      const value = `${ctx.tag}c${id}-l${n}-k${j}`;
      const pc = nowNs();
      const r = await http(
        ctx.base,
        'PUT',
        `/v1/kv/${encodeURIComponent(key)}?lease=${run.id}`,
        value,
        ctx.opTimeoutMs,
      );
      const k: LeaseKey = {
        key,
        value,
        put: { call: pc, return: nowNs(), outcome: outcomeOf(r), detail: statusOf(r) },
      };
      if (!('error' in r) && r.status === 200) k.put.revision = (JSON.parse(r.text) as { revision: number }).revision;
      run.keys.push(k);
    }
    // Keep it alive for a while: every ttl/3, or (some leases) late, 0.75 to 1.1 TTLs after the previous
    // renewal was asked for, so renewals race the expiry (one after it may find the lease gone).
    run.late = rng.next() < LATE_RATE;
    const holdUntil = Math.min(nowS() + rng.between(HOLD_S[0], HOLD_S[1]), ctx.stop.at);
    let gone = false;
    let prevCall = run.grant.call;
    while (!gone && nowS() < holdUntil) {
      if (run.late) await sleep(Math.max(0, prevCall / 1e6 + run.ttl * 1000 * rng.between(0.75, 1.1) - nowNs() / 1e6));
      else await sleep((run.ttl * 1000) / 3);
      const kc = nowNs();
      prevCall = kc;
      const r = await http(ctx.base, 'POST', `/v1/leases/${run.id}/keepalive`, undefined, ctx.opTimeoutMs);
      const ret = nowNs();
      run.renewEnd = ret;
      let outcome: LeaseRun['keepalives'][number]['outcome'];
      if (!('error' in r) && r.status === 200) outcome = 'ok';
      else if (!('error' in r) && r.status === 404 && errorCode(r) === 'lease_not_found') {
        outcome = 'not_found';
        gone = true;
      } else outcome = outcomeOf(r) === 'unknown' ? 'unknown' : 'failed';
      run.keepalives.push({ call: kc, return: ret, outcome, detail: statusOf(r) });
    }
    // Let it go, and read the keys until they are gone.
    const bound = expiryBoundS(run.ttl);
    const pending = run.keys.filter((k) => k.put.outcome === 'ok');
    for (;;) {
      for (const k of [...pending]) {
        const rc = nowNs();
        const r = await http(ctx.base, 'GET', `/v1/kv/${encodeURIComponent(k.key)}`, undefined, ctx.opTimeoutMs);
        const ret = nowNs();
        if ('error' in r) continue;
        if (r.status === 200) run.reads.push({ key: k.key, call: rc, return: ret, found: true, value: r.text });
        else if (r.status === 404 && errorCode(r) === 'key_not_found') {
          run.reads.push({ key: k.key, call: rc, return: ret, found: false });
          k.goneAt = ret;
          pending.splice(pending.indexOf(k), 1);
        }
      }
      if (pending.length === 0) {
        run.expired = true;
        break;
      }
      // Poll while the bound (from the last renewal, or from the last heal) has not passed.
      const from = Math.max(run.renewEnd / 1e9, ctx.faults.active ? nowS() : ctx.faults.lastHeal);
      if (nowS() > from + bound + 1) {
        run.gaveUp = true;
        break;
      }
      await sleep(POLL_MS);
    }
  }
}

// ---- checks ----

const sec = (ns: number) => (ns / 1e9).toFixed(3);

/**
 * The latest time (s) by which `run`'s keys must be gone: 3*TTL + 10 s after
 * the end of its last renewal, pushed to the heal of each fault that began
 * before that time.
 */
function expiryDeadline(run: LeaseRun, events: readonly FaultEvent[], t0: number): number {
  const bound = expiryBoundS(run.ttl);
  let from = run.renewEnd / 1e9;
  for (const ev of [...events].sort((a, b) => a.start - b.start)) {
    if (t0 + ev.start < from + bound && t0 + ev.healed > from) from = t0 + ev.healed;
  }
  return from + bound;
}

function name(run: LeaseRun): string {
  return `c${run.client} lease ${run.id} (#${run.n}, ttl ${run.ttl} s)`;
}

async function check(ctx: WorkloadContext, st: State): Promise<Check[]> {
  const h = await readStoreHistory(ctx.base, 'jepsen-', 'jepsen-probe', nowS() + 40, ctx.tag);
  if (h.ok) {
    st.history = { revisions: h.revisions, events: h.events.length, connections: h.connections };
    st.store = h.events;
  }
  return checkLease(st, h.ok ? h.events : h.error, ctx.events, ctx.t0);
}

/**
 * Checks (a), (b), (c) of what the clients saw (`st`), with the faults that
 * were injected and the store's history `events` (or why it could not be read) (pure).
 */
export function checkLease(
  st: State,
  history: readonly HistEvent[] | string,
  faults: readonly FaultEvent[],
  t0: number,
): Check[] {
  const names = ['lease: never expires before TTL', 'lease: expiry happens', 'lease: keys deleted atomically'];
  const granted = st.runs.filter((r) => r.id !== undefined);
  // (a) no key seen gone (and no lease_not_found) before the last acknowledged renewal's call + TTL
  const a: string[] = [];
  let minMargin = Number.POSITIVE_INFINITY;
  // Where the history deletes each key (for the reports of (a)).
  const deletedAt = new Map<string, number>();
  if (typeof history !== 'string')
    for (const l of keyLives(history).lives) if (l.key.startsWith(PREFIX)) deletedAt.set(l.key, l.deleted);
  const timeline = (run: LeaseRun): string =>
    [
      `grant [${sec(run.grant.call)}s..${sec(run.grant.return)}s] ${run.grant.outcome}`,
      ...run.keys.map(
        (k) => `put ${k.key} [${sec(k.put.call)}s..${sec(k.put.return)}s] ${k.put.outcome} at ${k.put.revision}`,
      ),
      ...run.keepalives.map((k) => `keepalive [${sec(k.call)}s..${sec(k.return)}s] ${k.outcome}`),
      `keys deleted at revision ${[...new Set(run.keys.map((k) => deletedAt.get(k.key) ?? '?'))].join(',')}`,
    ].join('; ');
  for (const run of granted) {
    const before = a.length;
    const lastAckBefore = (t: number): number => {
      let at = run.grant.call;
      for (const k of run.keepalives) if (k.outcome === 'ok' && k.return < t) at = Math.max(at, k.call);
      return at;
    };
    const ttlNs = run.ttl * 1e9;
    for (const rd of run.reads) {
      if (rd.found) continue;
      const earliest = lastAckBefore(rd.call) + ttlNs;
      minMargin = Math.min(minMargin, (rd.return - earliest) / 1e9);
      if (rd.return < earliest)
        a.push(
          `${name(run)}: ${rd.key} read absent [${sec(rd.call)}s..${sec(rd.return)}s], before ${sec(earliest)}s (last acknowledged renewal called ${sec(earliest - ttlNs)}s)`,
        );
    }
    for (const k of run.keepalives) {
      if (k.outcome !== 'not_found') continue;
      const earliest = lastAckBefore(k.call) + ttlNs;
      if (k.return < earliest)
        a.push(
          `${name(run)}: keepalive [${sec(k.call)}s..${sec(k.return)}s] answered lease_not_found before ${sec(earliest)}s`,
        );
    }
    if (a.length > before) a.push(`  ${name(run)}: ${timeline(run)}`);
  }
  // (b) every acknowledged key observed gone within the bound
  const b: string[] = [];
  let maxAfterAck = 0;
  let observed = 0;
  let worstBound = 0;
  for (const run of granted) {
    const keys = run.keys.filter((k) => k.put.outcome === 'ok');
    if (keys.length === 0) continue;
    const deadline = expiryDeadline(run, faults, t0);
    worstBound = Math.max(worstBound, deadline - run.renewEnd / 1e9);
    const lastAck = Math.max(
      run.grant.return,
      ...run.keepalives.filter((k) => k.outcome === 'ok').map((k) => k.return),
    );
    if (run.expired) {
      observed++;
      const at = Math.max(...keys.map((k) => k.goneAt ?? 0));
      maxAfterAck = Math.max(maxAfterAck, (at - lastAck) / 1e9);
      if (at / 1e9 > deadline)
        b.push(`${name(run)}: keys gone by ${sec(at)}s, after the bound ${deadline.toFixed(3)}s`);
    } else {
      const left = keys.filter((k) => k.goneAt === undefined).map((k) => k.key);
      b.push(
        `${name(run)}: ${left.join(', ')} still there at the last read (bound ${deadline.toFixed(3)}s; renewals ended ${sec(run.renewEnd)}s)`,
      );
    }
  }
  st.stats = { observed, maxAfterAck, minMargin };
  // (c) atomic, from the store's history
  const c: string[] = [];
  let cDetail = '';
  if (typeof history === 'string') c.push(`could not read the history: ${history}`);
  else {
    const { lives, problems } = keyLives(history);
    c.push(...problems);
    const byLease = new Map<string, typeof lives>();
    for (const l of lives) {
      if (!l.key.startsWith(PREFIX)) continue;
      if (l.lease === undefined) c.push(`${l.key}@${l.create}: put without a lease`);
      else byLease.set(l.lease, [...(byLease.get(l.lease) ?? []), l]);
    }
    let leases = 0;
    for (const [lease, ls] of byLease) {
      const at = new Set(ls.map((l) => l.deleted));
      if (at.size > 1)
        c.push(
          `lease ${lease}: keys deleted at different revisions: ${ls.map((l) => `${l.key}@${l.deleted}`).join(', ')}`,
        );
      else leases++;
    }
    for (const run of granted) {
      const ls = byLease.get(run.id ?? '') ?? [];
      for (const k of run.keys) {
        if (k.put.outcome !== 'ok') continue;
        const l = ls.find((x) => x.key === k.key && x.create === k.put.revision);
        if (!l)
          c.push(`${name(run)}: acknowledged put of ${k.key} at ${k.put.revision} not in the history with its lease`);
        else if (run.expired && !Number.isFinite(l.deleted))
          c.push(`${name(run)}: ${k.key} read as gone, but the history never deletes it`);
      }
    }
    cDetail = `${leases} leases with keys, each lease's keys deleted in one revision; every acknowledged put there`;
  }
  const show = (xs: string[]) => (xs.length > 10 ? [...xs.slice(0, 10), `... (${xs.length - 10} more)`] : xs);
  const reads = granted.reduce((s, r) => s + r.reads.filter((x) => !x.found).length, 0);
  return [
    {
      name: names[0] as string,
      ok: a.length === 0,
      detail:
        a.length === 0
          ? `${reads} absent reads, none early; closest ${Number.isFinite(minMargin) ? minMargin.toFixed(3) : '-'} s after renewal call + TTL`
          : show(a).join('\n      '),
    },
    {
      name: names[1] as string,
      ok: b.length === 0,
      detail:
        b.length === 0
          ? `${observed} leases seen gone, at most ${maxAfterAck.toFixed(3)} s after the last ack; bound 3*TTL+10 s after the last renewal or the last heal (at most ${worstBound.toFixed(1)} s here)`
          : show(b).join('\n      '),
    },
    { name: names[2] as string, ok: c.length === 0, detail: c.length === 0 ? cDetail : show(c).join('\n      ') },
  ];
}

function summary(st: State): string[] {
  const runs = st.runs;
  const granted = runs.filter((r) => r.id !== undefined);
  const count = <T>(xs: T[], f: (x: T) => boolean) => xs.filter(f).length;
  const kas = granted.flatMap((r) => r.keepalives);
  const keys = granted.flatMap((r) => r.keys);
  const ttls = [...new Set(granted.map((r) => r.ttl))];
  const lines = [
    `  leases       ${runs.length} grants: ${granted.length} ok, ${count(runs, (r) => r.grant.outcome === 'failed')} failed, ${count(runs, (r) => r.grant.outcome === 'unknown')} unknown; ttl ${ttls.join(',') || '?'} s (asked ${ASK_TTL})`,
    `  keys         ${keys.length} puts: ${count(keys, (k) => k.put.outcome === 'ok')} ok, ${count(keys, (k) => k.put.outcome === 'failed')} failed, ${count(keys, (k) => k.put.outcome === 'unknown')} unknown`,
    `  keepalives   ${kas.length} (${count(granted, (r) => r.late)} leases renewed late): ${count(kas, (k) => k.outcome === 'ok')} ok, ${count(kas, (k) => k.outcome === 'failed')} failed, ${count(kas, (k) => k.outcome === 'unknown')} unknown, ${count(kas, (k) => k.outcome === 'not_found')} lease_not_found`,
    `  expiries     ${st.stats?.observed ?? count(granted, (r) => r.expired)} observed (${count(granted, (r) => r.gaveUp)} gave up), max ${(st.stats?.maxAfterAck ?? 0).toFixed(3)} s from last ack to observed expiry; ${granted.reduce((s, r) => s + r.reads.length, 0)} reads`,
  ];
  if (st.history)
    lines.push(
      `  store        ${st.history.revisions} revisions of jepsen-*, ${st.history.events} events (${st.history.connections} watch connections)`,
    );
  return lines;
}
