/**
 * `--workload lock`: N clients contend for the lock `jepsen-lock`
 * (POST /v1/locks/jepsen-lock) with short leases, and the holder writes the
 * register `jepsen-register` through a fenced txn:
 *
 *   compare create_revision(lock key) == token, success: put register "<tag>c<client>-t<token>-n<n>"
 *
 * Each client mostly contends with a lease of its own (granted at the
 * minimum TTL, kept alive every ttl/3 while it waits and holds, as etcd's
 * session does), sometimes (30%) lets the lock route grant one (`ttl`), which
 * nobody renews while it waits. After an attempt with an unclear outcome (a
 * 504, a 503, a lost connection) it drops its session (stops renewing, revokes),
 * so a key the attempt may have queued does not block the lock forever.
 * Holding the lock it renews, makes 1-4 fenced
 * writes, and releases (DELETE ?key=). About 20% of acquisitions (seeded)
 * pause instead: they stop renewing for longer than the TTL but keep making
 * fenced writes with the old token until several are refused (the key is gone).
 *
 * Checks, from the store's own history of the lock prefix and the register
 * (a watch from revision 1 after the run, faults healed). A lock key's life
 * created at r holds the lock over the revisions [s, d): s = the largest
 * delete revision of the keys created before r (or r), d = its own delete
 * revision (or Infinity).
 *   (a) every acknowledged acquisition (key K, token r, X-Revision x) is a
 *       life of K created at r, with its lease, whose holder interval contains
 *       x; the intervals of distinct acquisitions are disjoint; an
 *       acknowledged release deleted K at the revision it answered;
 *   (b) tokens strictly increase in order of interval start, and in real
 *       time (an acquisition acknowledged before another was asked for has
 *       the smaller token);
 *   (c) every accepted fenced write (and every register write in the
 *       history, acknowledged or not) at revision w with token t lies in t's
 *       holder interval; no write with a token is accepted after one with the
 *       same token was refused.
 */
import {
  type Check,
  errorCode,
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
import { type HistEvent, historyValues, type KeyLife, keyLives, readStoreHistory } from './store-history.ts';

const LOCK = 'jepsen-lock';
const PREFIX = `${LOCK}/`;
const REGISTER = 'jepsen-register';
/** The TTL asked for; the store raises it to its minimum (2 s with the jepsen timing) and says so. */
const ASK_TTL = 2;
const WAIT_MS = 3000;
const PAUSE_RATE = 0.2;
/** How often a contender lets the lock route grant its lease (`ttl`) instead of bringing its own. */
const ROUTE_LEASE_RATE = 0.3;

export interface Acquisition {
  client: number;
  call: number;
  return: number | null;
  outcome: 'held' | 'busy' | 'failed' | 'unknown';
  /** The status of a failed or unknown attempt. */
  detail: string;
  /** The lease came from the route (`ttl`), not the client's own session. */
  routeLease: boolean;
  key?: string;
  token?: number;
  seen?: number;
  lease?: string;
  paused: boolean;
  release?: { outcome: 'ok' | 'gone' | 'failed' | 'unknown'; revision?: number; detail: string };
}

export interface FencedWrite {
  client: number;
  key: string;
  token: number;
  value: string;
  call: number;
  return: number;
  outcome: 'accepted' | 'refused' | 'failed' | 'unknown';
  revision?: number;
  /** Made after the holder stopped renewing (a pause). */
  paused: boolean;
}

/** A lease a client keeps alive in the background (etcd's session). */
interface Session {
  readonly lease: string;
  ttl: number;
  renewing: boolean;
  /** A keepalive answered lease_not_found. */
  lost: boolean;
  loop: Promise<void>;
}

export interface State {
  readonly acqs: Acquisition[];
  readonly writes: FencedWrite[];
  keepalives: { ok: number; failed: number; notFound: number };
  grants: { ok: number; failed: number };
  /** The TTL the store granted (the answer's ttl), once known. */
  ttl: number | undefined;
  history?: { revisions: number; lives: number; events: number; connections: number };
  /** The store's history of jepsen-* read after the run (for the history file). */
  store?: readonly HistEvent[];
}

export function lockWorkload(ctx: WorkloadContext): Workload {
  const st: State = {
    acqs: [],
    writes: [],
    keepalives: { ok: 0, failed: 0, notFound: 0 },
    grants: { ok: 0, failed: 0 },
    ttl: undefined,
  };
  const running = Promise.all(
    Array.from({ length: ctx.clients }, (_, i) => lockClient(i, ctx, new Rng(ctx.seed * 1000 + i + 1), st)),
  ).then(() => undefined);
  return {
    running,
    check: () => check(ctx, st),
    summary: () => summary(st),
    lines: () => lines(st),
    written: () =>
      st.writes.map((w) => ({ value: w.value, what: `c${w.client} fenced write ${w.value} (${w.outcome})` })),
    observed: () => historyValues(st.store ?? []),
  };
}

/**
 * One line per acquisition attempt ("acquire") and per fenced write ("write"),
 * in call order, then the store's history of jepsen-* ("store", one per event).
 */
function lines(st: State): string[] {
  const all: { call: number; line: Record<string, unknown> }[] = [
    ...st.acqs.map((a) => ({ call: a.call, line: { type: 'acquire', ...a } })),
    ...st.writes.map((w) => ({ call: w.call, line: { type: 'write', ...w } })),
  ];
  return [
    ...all.sort((x, y) => x.call - y.call).map((x) => JSON.stringify(x.line)),
    ...(st.store ?? []).map((e) =>
      JSON.stringify({ type: 'store', revision: e.revision, event: e.type, kv: e.kv, prev_kv: e.prev_kv }),
    ),
  ];
}

// ---- clients ----

function json(text: string): Record<string, unknown> {
  return JSON.parse(text) as Record<string, unknown>;
}

/** Renews `s` every ttl/3 until told to stop or the lease is gone. */
async function renew(ctx: WorkloadContext, s: Session, st: State): Promise<void> {
  while (s.renewing) {
    const r = await http(ctx.base, 'POST', `/v1/leases/${s.lease}/keepalive`, undefined, ctx.opTimeoutMs);
    if (!('error' in r) && r.status === 200) {
      st.keepalives.ok++;
      s.ttl = Number(json(r.text).ttl);
      st.ttl = s.ttl;
    } else if (!('error' in r) && r.status === 404) {
      st.keepalives.notFound++;
      s.lost = true;
      return;
    } else st.keepalives.failed++;
    const next = nowS() + s.ttl / 3;
    while (s.renewing && nowS() < next) await sleep(25);
  }
}

function startSession(ctx: WorkloadContext, lease: string, ttl: number, st: State): Session {
  const s: Session = { lease, ttl, renewing: true, lost: false, loop: Promise.resolve() };
  s.loop = renew(ctx, s, st);
  return s;
}

async function stopRenewing(s: Session): Promise<void> {
  s.renewing = false;
  await s.loop;
}

/** Grants a lease of the minimum TTL and keeps it alive, or undefined if the grant did not answer 200. */
async function openSession(ctx: WorkloadContext, st: State): Promise<Session | undefined> {
  const r = await http(ctx.base, 'POST', '/v1/leases', JSON.stringify({ ttl: ASK_TTL }), ctx.opTimeoutMs, {
    json: true,
  });
  if ('error' in r || r.status !== 200) {
    st.grants.failed++;
    return undefined;
  }
  st.grants.ok++;
  const b = json(r.text);
  st.ttl = Number(b.ttl);
  return startSession(ctx, String(b.id), Number(b.ttl), st);
}

/** Ends a session: no more renewals, and the lease revoked (best effort: if not, it expires). */
async function closeSession(ctx: WorkloadContext, s: Session): Promise<void> {
  await stopRenewing(s);
  if (!s.lost) await http(ctx.base, 'DELETE', `/v1/leases/${s.lease}`, undefined, ctx.opTimeoutMs);
}

async function lockClient(id: number, ctx: WorkloadContext, rng: Rng, st: State): Promise<void> {
  let n = 0;
  let session: Session | undefined;
  while (nowS() < ctx.stop.at - 0.5) {
    const routeLease = rng.next() < ROUTE_LEASE_RATE;
    const paused = rng.next() < PAUSE_RATE;
    if (session?.lost) {
      await stopRenewing(session);
      session = undefined;
    }
    if (!routeLease && !session) {
      session = await openSession(ctx, st);
      if (!session) {
        await sleep(100 + rng.int(200));
        continue;
      }
    }
    const waitMs = Math.round(Math.min(WAIT_MS, Math.max(300, (ctx.stop.at - nowS()) * 1000)));
    const body = routeLease ? { ttl: ASK_TTL, wait_ms: waitMs } : { lease: session?.lease, wait_ms: waitMs };
    const acq: Acquisition = {
      client: id,
      call: nowNs(),
      return: null,
      outcome: 'unknown',
      detail: '',
      routeLease,
      paused: false,
    };
    st.acqs.push(acq);
    // Each step of the route gets the usual budget; the wait comes on top, and a few steps follow it.
    const r = await http(ctx.base, 'POST', `/v1/locks/${LOCK}`, JSON.stringify(body), waitMs + 4 * ctx.opTimeoutMs, {
      json: true,
      requestTimeoutMs: Math.max(200, ctx.opTimeoutMs - 700),
    });
    acq.return = nowNs();
    if (!('error' in r) && r.status === 200) {
      const b = json(r.text);
      acq.outcome = 'held';
      acq.key = String(b.key);
      acq.token = Number(b.revision);
      acq.lease = String(b.lease);
      acq.seen = r.revision;
      acq.paused = paused;
      // The route's own lease is renewed from now on like a session's (the first renewal tells its TTL).
      const holding = routeLease ? startSession(ctx, acq.lease, st.ttl ?? ASK_TTL, st) : (session as Session);
      n = await hold(id, n, ctx, rng, st, acq, holding);
      if (routeLease) await closeSession(ctx, holding);
      else if (paused || acq.release?.outcome !== 'ok') {
        // The session stopped renewing (a pause), or its key may still be there: start afresh.
        await stopRenewing(holding);
        session = undefined;
      }
      await sleep(rng.int(100));
    } else if (!('error' in r) && r.status === 409 && errorCode(r) === 'lock_busy') {
      acq.outcome = 'busy';
      await sleep(rng.int(100));
    } else {
      acq.outcome = outcomeOf(r) === 'unknown' ? 'unknown' : 'failed';
      acq.detail = statusOf(r);
      if (!('error' in r) && r.status === 404 && errorCode(r) === 'lease_not_found' && session) session.lost = true;
      // The attempt may have left our key in the queue (a 504, or a 503 after the enqueue): renewed,
      // it would wait there for an acquisition nobody asks for and block everyone behind it. Let it go.
      if (!routeLease && session && !('error' in r && r.refused)) {
        await closeSession(ctx, session);
        session = undefined;
      }
      await sleep(50 + rng.int(200));
    }
  }
  if (session) await closeSession(ctx, session);
}

/** Holds the lock: fenced writes (and a pause, for some), then the release. Returns the next write number. */
async function hold(
  id: number,
  n: number,
  ctx: WorkloadContext,
  rng: Rng,
  st: State,
  acq: Acquisition,
  s: Session,
): Promise<number> {
  let next = n;
  const write = async (paused: boolean): Promise<FencedWrite> => {
    const w = await fencedWrite(ctx, id, acq, next++, paused);
    st.writes.push(w);
    return w;
  };
  if (!acq.paused) {
    const k = 1 + rng.int(4);
    for (let i = 0; i < k; i++) {
      if ((await write(false)).outcome === 'refused') break; // the key is gone: the lock is lost
      if (i < k - 1) await sleep(50 + rng.int(250));
    }
  } else {
    await write(false);
    // The pause: no more renewals, but writes with the old token go on until the key is gone
    // (three refusals, at least a TTL in) or the expiry bound has passed.
    await stopRenewing(s);
    const since = nowS();
    let refused = 0;
    while (nowS() < since + 3 * s.ttl + 10 && (refused < 3 || nowS() < since + s.ttl)) {
      await sleep(150 + rng.int(250));
      if ((await write(true)).outcome === 'refused') refused++;
    }
  }
  const r = await http(
    ctx.base,
    'DELETE',
    `/v1/locks/${LOCK}?key=${encodeURIComponent(acq.key ?? '')}`,
    undefined,
    ctx.opTimeoutMs,
  );
  if (!('error' in r) && r.status === 200)
    acq.release = { outcome: 'ok', revision: Number(json(r.text).revision), detail: '200' };
  else if (!('error' in r) && r.status === 404 && errorCode(r) === 'key_not_found')
    acq.release = { outcome: 'gone', detail: '404' };
  else acq.release = { outcome: outcomeOf(r) === 'unknown' ? 'unknown' : 'failed', detail: statusOf(r) };
  return next;
}

async function fencedWrite(
  ctx: WorkloadContext,
  id: number,
  acq: Acquisition,
  n: number,
  paused: boolean,
): Promise<FencedWrite> {
  const key = acq.key ?? '';
  const token = acq.token ?? 0;
  const value = `${ctx.tag}c${id}-t${token}-n${n}`;
  const w: FencedWrite = { client: id, key, token, value, call: nowNs(), return: 0, outcome: 'unknown', paused };
  const body = {
    compare: [{ key, target: 'create_revision', op: '=', value: token }],
    success: [{ put: { key: REGISTER, value } }],
    failure: [],
  };
  const r = await http(ctx.base, 'POST', '/v1/txn', JSON.stringify(body), ctx.opTimeoutMs, { json: true });
  w.return = nowNs();
  if (!('error' in r) && r.status === 200) {
    const b = json(r.text);
    w.outcome = b.succeeded === true ? 'accepted' : 'refused';
    if (b.succeeded === true) w.revision = Number(b.revision);
  } else w.outcome = outcomeOf(r) === 'unknown' ? 'unknown' : 'failed';
  return w;
}

// ---- checks ----

/** A life of a lock key with its holder interval [start, end) (start >= end: it never held the lock). */
interface Holder {
  readonly life: KeyLife;
  readonly start: number;
  readonly end: number;
}

const fmt = (n: number) => (Number.isFinite(n) ? String(n) : 'inf');
const sec = (ns: number | null) => (ns === null ? '-' : (ns / 1e9).toFixed(3));

function describeAcq(a: Acquisition): string {
  return `c${a.client} ${a.key} token ${a.token} seen ${a.seen} lease ${a.lease} [${sec(a.call)}s..${sec(a.return)}s]${a.paused ? ' paused' : ''}`;
}

const NAMES = ['lock: holders never overlap', 'lock: fencing tokens increase', 'lock: fenced writes by the holder'];

async function check(ctx: WorkloadContext, st: State): Promise<Check[]> {
  const h = await readStoreHistory(ctx.base, 'jepsen-', 'jepsen-probe', nowS() + 40, ctx.tag);
  if (!h.ok) return NAMES.map((name) => ({ name, ok: false, detail: `could not read the history: ${h.error}` }));
  st.history = { revisions: h.revisions, lives: 0, events: h.events.length, connections: h.connections };
  st.store = h.events;
  return checkLock(st, h.events);
}

/** Checks (a), (b), (c) of what the clients saw (`st`) against the store's history `events` (pure). */
export function checkLock(st: State, events: readonly HistEvent[]): Check[] {
  const names = NAMES;
  const { lives: all, problems: historyProblems } = keyLives(events);
  const lockLives = all.filter((l) => l.key.startsWith(PREFIX)).sort((a, b) => a.create - b.create);
  if (st.history) st.history.lives = lockLives.length;
  // Holder intervals: a life holds the lock once every life created before it has ended.
  const holders = new Map<number, Holder>();
  let ended = 0;
  for (const life of lockLives) {
    holders.set(life.create, { life, start: Math.max(life.create, ended), end: life.deleted });
    ended = Math.max(ended, life.deleted);
  }
  const holds = (hd: Holder, rev: number) => hd.start < hd.end && rev >= hd.start && rev < hd.end;
  const span = (hd: Holder) => `[${fmt(hd.start)}, ${fmt(hd.end)})`;

  // (a) acknowledged acquisitions against the history
  const a: string[] = [...historyProblems];
  const held = st.acqs.filter((x) => x.outcome === 'held');
  const byLife = new Map<number, Acquisition[]>();
  for (const acq of held) {
    const hd = holders.get(acq.token ?? -1);
    if (!hd || hd.life.key !== acq.key) {
      a.push(`${describeAcq(acq)}: no life of ${acq.key} created at ${acq.token} in the history`);
      continue;
    }
    byLife.set(hd.life.create, [...(byLife.get(hd.life.create) ?? []), acq]);
    if (hd.life.lease !== acq.lease) a.push(`${describeAcq(acq)}: the history's key has lease ${hd.life.lease}`);
    if (acq.seen === undefined || !holds(hd, acq.seen))
      a.push(`${describeAcq(acq)}: X-Revision ${acq.seen} outside its holder interval ${span(hd)}`);
    if (acq.release?.outcome === 'ok' && acq.release.revision !== hd.life.deleted)
      a.push(
        `${describeAcq(acq)}: release acknowledged at ${acq.release.revision}, history deletes at ${fmt(hd.life.deleted)}`,
      );
  }
  const acked = [...byLife.keys()]
    .map((create) => holders.get(create) as Holder)
    .filter((hd) => hd.start < hd.end)
    .sort((x, y) => x.start - y.start);
  for (let i = 1; i < acked.length; i++) {
    const p = acked[i - 1] as Holder;
    const q = acked[i] as Holder;
    if (q.start < p.end)
      a.push(`${p.life.key}@${p.life.create} ${span(p)} overlaps ${q.life.key}@${q.life.create} ${span(q)}`);
  }
  // (b) tokens increase in interval order and in real time
  const b: string[] = [];
  for (let i = 1; i < acked.length; i++) {
    const p = acked[i - 1] as Holder;
    const q = acked[i] as Holder;
    if (q.life.create <= p.life.create)
      b.push(`token ${q.life.create} (from ${q.start}) after token ${p.life.create} (from ${p.start})`);
  }
  const byReturn = [...held].sort((x, y) => (x.return ?? 0) - (y.return ?? 0));
  const byCall = [...held].sort((x, y) => x.call - y.call);
  // Sweep: for each acquisition, the largest token acknowledged before it was called.
  let maxBefore: Acquisition | undefined;
  let j = 0;
  for (const q of byCall) {
    while (j < byReturn.length && ((byReturn[j] as Acquisition).return ?? 0) < q.call) {
      const p = byReturn[j] as Acquisition;
      if (!maxBefore || (p.token ?? 0) > (maxBefore.token ?? 0)) maxBefore = p;
      j++;
    }
    if (maxBefore && (q.token ?? 0) < (maxBefore.token ?? 0))
      b.push(`${describeAcq(q)} asked after ${describeAcq(maxBefore)} was acknowledged, with a smaller token`);
  }
  // (c) fenced writes
  const c: string[] = [];
  const registerPuts = all.filter((l) => l.key === REGISTER).flatMap((l) => l.puts);
  const putAt = new Map(registerPuts.map((p) => [p.revision, p.value]));
  for (const p of registerPuts) {
    const m = /^(?:[a-z0-9-]+\/)?c(\d+)-t(\d+)-n(\d+)$/.exec(p.value ?? '');
    const hd = m ? holders.get(Number(m[2])) : undefined;
    if (!hd) c.push(`register put ${JSON.stringify(p.value)} at ${p.revision}: no lock key life with that token`);
    else if (!holds(hd, p.revision))
      c.push(
        `register put ${p.value} at ${p.revision}: outside ${hd.life.key}@${hd.life.create}'s holder interval ${span(hd)}`,
      );
  }
  const refusedAt = new Map<number, number>();
  for (const w of st.writes)
    if (w.outcome === 'refused') refusedAt.set(w.token, Math.min(refusedAt.get(w.token) ?? Infinity, w.return));
  for (const w of st.writes) {
    if (w.outcome !== 'accepted') continue;
    const desc = `c${w.client} write ${w.value}${w.paused ? ' (paused)' : ''} at ${w.revision} [${sec(w.call)}s..${sec(w.return)}s]`;
    if (putAt.get(w.revision ?? -1) !== w.value)
      c.push(`${desc}: the history has ${JSON.stringify(putAt.get(w.revision ?? -1) ?? null)} at ${w.revision}`);
    const hd = holders.get(w.token);
    if (!hd || w.revision === undefined || !holds(hd, w.revision))
      c.push(`${desc}: outside its token's holder interval ${hd ? span(hd) : '(no such life)'}`);
    const refused = refusedAt.get(w.token);
    if (refused !== undefined && refused < w.call)
      c.push(`${desc}: asked after a write with token ${w.token} was refused (at ${sec(refused)}s)`);
  }
  const accepted = st.writes.filter((w) => w.outcome === 'accepted');
  const show = (xs: string[]) => (xs.length > 10 ? [...xs.slice(0, 10), `... (${xs.length - 10} more)`] : xs);
  return [
    {
      name: names[0] as string,
      ok: a.length === 0,
      detail:
        a.length === 0
          ? `${held.length} acquisitions, ${acked.length} holder intervals disjoint, each containing its X-Revision; ${lockLives.length} lock key lives in the history`
          : show(a).join('\n      '),
    },
    {
      name: names[1] as string,
      ok: b.length === 0,
      detail:
        b.length === 0
          ? `${acked.length} tokens increase in interval order and in real time${acked.length ? ` (${acked[0]?.life.create}..${acked[acked.length - 1]?.life.create})` : ''}`
          : show(b).join('\n      '),
    },
    {
      name: names[2] as string,
      ok: c.length === 0,
      detail:
        c.length === 0
          ? `${accepted.length} accepted writes and all ${registerPuts.length} register puts in the history inside their token's interval`
          : show(c).join('\n      '),
    },
  ];
}

function summary(st: State): string[] {
  const acq = (o: Acquisition['outcome']) => st.acqs.filter((a) => a.outcome === o).length;
  const held = st.acqs.filter((a) => a.outcome === 'held');
  const w = (o: FencedWrite['outcome'], paused?: boolean) =>
    st.writes.filter((x) => x.outcome === o && (paused === undefined || x.paused === paused)).length;
  const rel = (o: string) => held.filter((a) => a.release?.outcome === o).length;
  const lines = [
    `  lock         ${st.acqs.length} attempts: ${acq('held')} acquired (${held.filter((a) => a.routeLease).length} with the route's lease), ${acq('busy')} lock_busy, ${acq('failed')} failed (${st.acqs.filter((a) => a.detail === 'ECONNREFUSED').length} connection refused), ${acq('unknown')} unknown; ttl ${st.ttl ?? '?'} s, wait_ms <= ${WAIT_MS}`,
    `  pauses       ${held.filter((a) => a.paused).length} (renewals stopped > TTL): ${w('accepted', true)} writes accepted before the key went, ${w('refused', true)} refused after`,
    `  fenced       ${st.writes.length} writes: ${w('accepted')} accepted, ${w('refused')} refused, ${w('failed')} failed, ${w('unknown')} unknown`,
    `  releases     ${rel('ok')} ok, ${rel('gone')} key gone, ${rel('failed')} failed, ${rel('unknown')} unknown`,
    `  leases       ${st.grants.ok} granted (${st.grants.failed} failed); keepalives ${st.keepalives.ok} ok, ${st.keepalives.failed} failed, ${st.keepalives.notFound} lease_not_found`,
  ];
  if (st.history)
    lines.push(
      `  store        ${st.history.revisions} revisions of jepsen-*, ${st.history.events} events, ${st.history.lives} lock key lives (${st.history.connections} watch connections)`,
    );
  return lines;
}
