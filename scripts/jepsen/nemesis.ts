/**
 * The nemesis: one fault at a time on a schedule drawn from the seed, each
 * healed before the next, until the run's end. Network and process faults
 * (partition, slow, crash, restart) act on the nodes; operator faults
 * (transfer, member, compact: operator-faults.ts) go through the public API.
 * Faults act on the current members (the leader's voters and learners), so
 * nodes added during the run are partitioned and crashed like the others.
 *
 * With several groups (--groups), each fault hits more than one of them at
 * once: either every group with the same draws (so the same member index,
 * e.g. node-1 crashed in every group, or every group's leader isolated), or
 * two or more groups drawn from the seed, each with draws of its own (node-1
 * crashed in one, node-2 in another). A restart (kill -9 of workerd) hits
 * every group. Operator faults act on the groups under test, never on the
 * directory of groups. With one group the draws are what they always were.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import type { Cluster, FaultRules, RaftGroup } from './cluster.ts';
import { type FaultClock, type FaultEvent, type FaultKind, nowS, Rng } from './common.ts';
import { sleep } from './node-api.ts';
import { compactFault, memberFault, type Operator, transferFault } from './operator-faults.ts';

export interface NemesisOptions {
  readonly faults: readonly FaultKind[];
  /** Inject each of `faults` once first, in the order given (--cover), then draw from the seed. */
  readonly cover: boolean;
}

/** A Raft group the nemesis acts on. */
export interface Target {
  readonly cluster: RaftGroup;
  /** The voters the group should have (--nodes, --group-size): member faults restore it. */
  readonly size: number;
  /** Operator faults (transfer, member, compact) act on it too: false for the directory of groups. */
  readonly operated: boolean;
}

/** Faults that draw their choices from a generator of their own (so they never shift the schedule's draws). */
const OPERATOR_FAULTS: ReadonlySet<FaultKind> = new Set(['transfer', 'member', 'compact']);

function cut(groups: string[][]): string[] {
  const blocked: string[] = [];
  for (const g of groups)
    for (const h of groups) if (g !== h) for (const a of g) for (const b of h) blocked.push(`${a}>${b}`);
  return blocked;
}

function isolate(node: string, nodes: readonly string[]): string[] {
  return cut([[node], nodes.filter((n) => n !== node)]);
}

/** Sets every known node's rules (removed and added ones too), retrying each a little. */
async function setAll(cluster: RaftGroup, rules: (node: string) => FaultRules): Promise<void> {
  await Promise.all(
    cluster.nodes.map(async (n) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await cluster.setFaults(n, rules(n));
          return;
        } catch (e) {
          if (attempt === 2) console.error(`  ! faults on ${cluster.objectPrefix}${n}: ${(e as Error).message}`);
          await sleep(200);
        }
      }
    }),
  );
}

export async function heal(cluster: RaftGroup): Promise<void> {
  await setAll(cluster, () => ({ blocked: [], dropRate: 0, duplicateRate: 0, delayMs: 0 }));
}

/** One group a fault hits: its draws, the members and leader it saw, the operator acting on it. */
interface Hit {
  readonly target: Target;
  readonly rng: Rng;
  readonly op: Operator;
  nodes: string[];
  leader: string | undefined;
}

/** What the nemesis keeps per group between faults: its operator, and its members as last seen. */
interface TargetState {
  readonly target: Target;
  readonly op: Operator;
  /** The members as last seen (in the order the run learned of them), for when no leader answers. */
  nodes: string[];
}

function operatorOf(t: Target): Operator {
  const cluster = t.cluster;
  let fresh = t.size;
  return {
    cluster,
    size: t.size,
    fresh: () => {
      while (cluster.nodes.includes(`node-${fresh}`)) fresh++;
      return `node-${fresh++}`;
    },
    block: (blocked) => setAll(cluster, () => ({ blocked })),
    heal: () => heal(cluster),
  };
}

/**
 * Which groups the fault hits and with what draws: the only one with the
 * schedule's own generator (as a run of one group always did); else every
 * group with the same draws, or 2 or more of them with draws of their own.
 */
function spread(rng: Rng, eligible: readonly TargetState[]): { hits: TargetState[]; rngs: Rng[]; how: string } {
  const only = eligible[0];
  if (eligible.length === 1 && only) return { hits: [only], rngs: [rng], how: '' };
  if (rng.next() < 0.5) {
    const seed = rng.int(2 ** 31);
    return {
      hits: [...eligible],
      rngs: eligible.map(() => new Rng(seed)),
      how: `same draws in all ${eligible.length}`,
    };
  }
  const k = 2 + rng.int(eligible.length - 1);
  const hits = rng.shuffle(eligible).slice(0, k);
  return { hits, rngs: hits.map(() => new Rng(rng.int(2 ** 31))), how: `own draws in ${k} of ${eligible.length}` };
}

export async function nemesis(
  worker: Cluster,
  targets: readonly Target[],
  opts: NemesisOptions,
  rng: Rng,
  events: FaultEvent[],
  t0: number,
  endAt: number,
  live: FaultClock,
): Promise<void> {
  const states: TargetState[] = targets.map((target) => ({
    target,
    op: operatorOf(target),
    nodes: [...target.cluster.nodes],
  }));
  const operated = states.filter((s) => s.target.operated);
  const cover = opts.cover ? [...opts.faults] : [];
  let t = t0 + 2;
  while (opts.faults.length > 0) {
    const kind = cover.shift() ?? rng.pick(opts.faults);
    const dur = kind === 'restart' ? rng.between(0.3, 1.5) : rng.between(2, 5);
    const quiet = rng.between(1, 3);
    if (t + dur > endAt - 3) break;
    if (nowS() < t) await sleep((t - nowS()) * 1000);
    if (nowS() + dur > endAt - 3) break;
    const ev: FaultEvent = { kind, at: t - t0, detail: '', start: nowS() - t0, healed: 0, groups: [] };
    live.active = true;
    if (kind === 'restart') {
      ev.groups = targets.map((x) => x.cluster.name);
      ev.detail = `kill -9 all of workerd, down ${dur.toFixed(1)} s`;
      await worker.killAndWait();
      await sleep(dur * 1000);
      const up = nowS();
      await worker.start();
      ev.detail += `, wrangler back up in ${(nowS() - up).toFixed(1)} s`;
    } else {
      const s = spread(rng, OPERATOR_FAULTS.has(kind) ? operated : states);
      const hits: Hit[] = await Promise.all(
        s.hits.map(async (st, i) => {
          const c = st.target.cluster;
          const leader = await c.leader().catch(() => undefined);
          const m = await c.membership().catch(() => undefined);
          if (m) st.nodes = c.nodes.filter((n) => m.voters.includes(n) || m.learners.includes(n));
          return { target: st.target, rng: s.rngs[i] as Rng, op: st.op, nodes: st.nodes, leader };
        }),
      );
      ev.groups = hits.map((h) => h.target.cluster.name);
      const details = await Promise.all(hits.map((h) => inject(kind, h, dur)));
      ev.detail =
        s.how === ''
          ? (details[0] ?? '')
          : `${s.how} groups: ${hits.map((h, i) => `${h.target.cluster.name}: ${details[i]}`).join(' | ')}`;
    }
    ev.healed = nowS() - t0;
    live.active = false;
    live.lastHeal = nowS();
    events.push(ev);
    console.log(`  [${ev.start.toFixed(1)}s..${ev.healed.toFixed(1)}s] ${kind}: ${ev.detail}`);
    t = nowS() + quiet;
  }
}

/** Injects one fault (not a restart) into one group, with its draws, for `dur` s, and heals it; its detail. */
async function inject(kind: FaultKind, h: Hit, dur: number): Promise<string> {
  const { rng, nodes, leader } = h;
  const cluster = h.target.cluster;
  let detail: string;
  if (OPERATOR_FAULTS.has(kind)) {
    const frng = new Rng(rng.int(2 ** 31));
    if (kind === 'transfer') return transferFault(h.op, frng);
    if (kind === 'member') return memberFault(h.op, frng);
    return compactFault(h.op, frng, dur);
  }
  if (kind === 'partition') {
    const sub = rng.pick(['halves', 'leader', 'asymmetric', 'bridge'] as const);
    let blocked: string[];
    if (sub === 'leader' && leader) {
      blocked = isolate(leader, nodes);
      detail = `isolate leader ${leader}`;
    } else if (sub === 'asymmetric') {
      const victim = leader ?? rng.pick(nodes);
      // The victim hears nobody, but everybody hears it.
      blocked = nodes.filter((n) => n !== victim).map((n) => `${n}>${victim}`);
      detail = `asymmetric: ${victim} deaf`;
    } else if (sub === 'bridge') {
      const [bridge, ...rest] = rng.shuffle(nodes);
      const half = Math.ceil(rest.length / 2);
      const a = rest.slice(0, half);
      const b = rest.slice(half);
      blocked = cut([a, b]);
      detail = `bridge ${bridge} between [${a}] and [${b}]`;
    } else {
      const sh = rng.shuffle(nodes);
      const minority = sh.slice(0, Math.floor(nodes.length / 2));
      blocked = cut([minority, sh.slice(minority.length)]);
      detail = `halves [${minority}] | [${sh.slice(minority.length)}]`;
    }
    await setAll(cluster, () => ({ blocked }));
  } else if (kind === 'slow') {
    const victim = rng.next() < 0.5 && leader ? leader : rng.pick(nodes);
    const delayMs = Math.round(rng.between(100, 600));
    detail = `${victim} +${delayMs} ms per batch`;
    await setAll(cluster, (n) => (n === victim ? { delayMs } : {}));
  } else if (kind === 'crash') {
    const victim = rng.next() < 0.5 && leader ? leader : rng.pick(nodes);
    detail = `crash ${victim}${victim === leader ? ' (leader)' : ''}, down ${dur.toFixed(1)} s`;
    await cluster
      .crash(victim)
      .catch((e) => console.error(`  ! crash ${cluster.objectPrefix}${victim}: ${(e as Error).message}`));
    // Keep it cut off while "down" (it restarts from SQLite on its next event).
    const blocked = isolate(victim, nodes);
    await setAll(cluster, (n) => (n === victim ? {} : { blocked }));
  } else throw new Error(`inject: ${kind} is not a fault of one group`);
  await sleep(dur * 1000);
  await heal(cluster);
  return detail;
}
