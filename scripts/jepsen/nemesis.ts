/**
 * The nemesis: one fault at a time on a schedule drawn from the seed, each
 * healed before the next, until the run's end. Network and process faults
 * (partition, slow, crash, restart) act on the nodes; operator faults
 * (transfer, member, compact: operator-faults.ts) go through the public API.
 * Faults act on the current members (the leader's voters and learners), so
 * nodes added during the run are partitioned and crashed like the others.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import type { Cluster, FaultRules } from './cluster.ts';
import { type FaultClock, type FaultEvent, type FaultKind, nowS, Rng } from './common.ts';
import { sleep } from './node-api.ts';
import { compactFault, memberFault, type Operator, transferFault } from './operator-faults.ts';

export interface NemesisOptions {
  readonly faults: readonly FaultKind[];
  /** The voters the cluster should have (--nodes). */
  readonly size: number;
  /** Inject each of `faults` once first, in the order given (--cover), then draw from the seed. */
  readonly cover: boolean;
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
async function setAll(cluster: Cluster, rules: (node: string) => FaultRules): Promise<void> {
  await Promise.all(
    cluster.nodes.map(async (n) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await cluster.setFaults(n, rules(n));
          return;
        } catch (e) {
          if (attempt === 2) console.error(`  ! faults on ${n}: ${(e as Error).message}`);
          await sleep(200);
        }
      }
    }),
  );
}

export async function heal(cluster: Cluster): Promise<void> {
  await setAll(cluster, () => ({ blocked: [], dropRate: 0, duplicateRate: 0, delayMs: 0 }));
}

export async function nemesis(
  cluster: Cluster,
  opts: NemesisOptions,
  rng: Rng,
  events: FaultEvent[],
  t0: number,
  endAt: number,
  live: FaultClock,
): Promise<void> {
  let fresh = opts.size;
  const op: Operator = {
    cluster,
    size: opts.size,
    fresh: () => {
      while (cluster.nodes.includes(`node-${fresh}`)) fresh++;
      return `node-${fresh++}`;
    },
    block: (blocked) => setAll(cluster, () => ({ blocked })),
    heal: () => heal(cluster),
  };
  const cover = opts.cover ? [...opts.faults] : [];
  // The members as last seen (in the order the run learned of them), for when no leader answers.
  let nodes: string[] = [...cluster.nodes];
  let t = t0 + 2;
  while (opts.faults.length > 0) {
    const kind = cover.shift() ?? rng.pick(opts.faults);
    const dur = kind === 'restart' ? rng.between(0.3, 1.5) : rng.between(2, 5);
    const quiet = rng.between(1, 3);
    if (t + dur > endAt - 3) break;
    if (nowS() < t) await sleep((t - nowS()) * 1000);
    if (nowS() + dur > endAt - 3) break;
    const ev: FaultEvent = { kind, at: t - t0, detail: '', start: nowS() - t0, healed: 0 };
    live.active = true;
    const leader = await cluster.leader().catch(() => undefined);
    const m = await cluster.membership().catch(() => undefined);
    if (m) nodes = cluster.nodes.filter((n) => m.voters.includes(n) || m.learners.includes(n));
    if (OPERATOR_FAULTS.has(kind)) {
      const frng = new Rng(rng.int(2 ** 31));
      if (kind === 'transfer') ev.detail = await transferFault(op, frng);
      else if (kind === 'member') ev.detail = await memberFault(op, frng);
      else ev.detail = await compactFault(op, frng, dur);
    } else if (kind === 'partition') {
      const sub = rng.pick(['halves', 'leader', 'asymmetric', 'bridge'] as const);
      let blocked: string[];
      if (sub === 'leader' && leader) {
        blocked = isolate(leader, nodes);
        ev.detail = `isolate leader ${leader}`;
      } else if (sub === 'asymmetric') {
        const victim = leader ?? rng.pick(nodes);
        // The victim hears nobody, but everybody hears it.
        blocked = nodes.filter((n) => n !== victim).map((n) => `${n}>${victim}`);
        ev.detail = `asymmetric: ${victim} deaf`;
      } else if (sub === 'bridge') {
        const [bridge, ...rest] = rng.shuffle(nodes);
        const half = Math.ceil(rest.length / 2);
        const a = rest.slice(0, half);
        const b = rest.slice(half);
        blocked = cut([a, b]);
        ev.detail = `bridge ${bridge} between [${a}] and [${b}]`;
      } else {
        const sh = rng.shuffle(nodes);
        const minority = sh.slice(0, Math.floor(nodes.length / 2));
        blocked = cut([minority, sh.slice(minority.length)]);
        ev.detail = `halves [${minority}] | [${sh.slice(minority.length)}]`;
      }
      await setAll(cluster, () => ({ blocked }));
      await sleep(dur * 1000);
      await heal(cluster);
    } else if (kind === 'slow') {
      const victim = rng.next() < 0.5 && leader ? leader : rng.pick(nodes);
      const delayMs = Math.round(rng.between(100, 600));
      ev.detail = `${victim} +${delayMs} ms per batch`;
      await setAll(cluster, (n) => (n === victim ? { delayMs } : {}));
      await sleep(dur * 1000);
      await heal(cluster);
    } else if (kind === 'crash') {
      const victim = rng.next() < 0.5 && leader ? leader : rng.pick(nodes);
      ev.detail = `crash ${victim}${victim === leader ? ' (leader)' : ''}, down ${dur.toFixed(1)} s`;
      await cluster.crash(victim).catch((e) => console.error(`  ! crash ${victim}: ${(e as Error).message}`));
      // Keep it cut off while "down" (it restarts from SQLite on its next event).
      const blocked = isolate(victim, nodes);
      await setAll(cluster, (n) => (n === victim ? {} : { blocked }));
      await sleep(dur * 1000);
      await heal(cluster);
    } else {
      ev.detail = `kill -9 all of workerd, down ${dur.toFixed(1)} s`;
      await cluster.killAndWait();
      await sleep(dur * 1000);
      const up = nowS();
      await cluster.start();
      ev.detail += `, wrangler back up in ${(nowS() - up).toFixed(1)} s`;
    }
    ev.healed = nowS() - t0;
    live.active = false;
    live.lastHeal = nowS();
    events.push(ev);
    console.log(`  [${ev.start.toFixed(1)}s..${ev.healed.toFixed(1)}s] ${kind}: ${ev.detail}`);
    t = nowS() + quiet;
  }
}
