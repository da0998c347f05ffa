import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { readSettings, type SettingsEnv } from '../../src/node/settings.ts';
import {
  allApplied,
  command,
  leader,
  localValue,
  type NodeStatus,
  newCluster,
  sleep,
  status,
  stub,
} from './cluster-helpers.ts';

/**
 * Bounded memory and disk under a long log: tens of thousands of puts
 * through a 3-node cluster. While they run, every node is sampled: the
 * entries it holds in memory because they are not durable yet
 * (`unstableEntries`: a leader keeps up to 256 proposals in memory while
 * every follower has an append in flight, then persists them as one batch)
 * stay bounded, and the log it keeps
 * on disk stays bounded by compaction.
 *
 * Size: 100,000 entries. Here (workerd under vitest) a 3-node cluster
 * commits about 1,500 puts/s, so this test takes about 70 s, the longest in
 * `npm test`; `BOUNDS_ENTRIES=20000 npx vitest run --project workers
 * test/integration/bounds.test.ts` (passed on as a binding by vitest.config.ts)
 * runs a smaller one while working on it.
 *
 * Concurrency: 250 proposals per round. With 500-1,000 per round the leader,
 * busy with the burst, falls silent past the test's 200-400 ms election
 * timeout, leadership churns, and proposals caught at a deposed leader wait
 * out their deadline (see the report that came with this test).
 */
function knob(name: string, dflt: number): number {
  const fromEnv = (import.meta as unknown as { env?: Record<string, unknown> }).env?.[`VITE_${name}`];
  const fromBinding = (env as unknown as Record<string, unknown>)[name];
  const v = Number(fromEnv ?? fromBinding ?? dflt);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name}: expected a positive integer, got ${String(v)}`);
  return v;
}
const ENTRIES = knob('BOUNDS_ENTRIES', 100_000);
/** Concurrent proposals per round (one RPC each, all to the leader). */
const BATCH = knob('BOUNDS_BATCH', 250);
/** A proposal caught at a deposed leader waits this long before it is retried. */
const PROPOSE_TIMEOUT_MS = 3000;
/** Entries a node may hold in memory before they are durable: the leader defers at most 256 proposals (MAX_DEFERRED_PROPOSALS in src/node/runtime.ts). */
const MAX_UNSTABLE = 256;
/** Compaction threshold the workers project runs with (vitest.config.ts vars, else the default). */
const COMPACT_AFTER = readSettings(env as unknown as SettingsEnv).compactAfterEntries;

interface Sampled {
  samples: number;
  maxUnstable: number;
  maxRetained: number;
  worst: string;
}

describe('bounds: a long log', () => {
  it(`${ENTRIES} puts apply on every node with bounded unstable entries and a compacted log`, async () => {
    expect(COMPACT_AFTER).toBeGreaterThan(0);
    const names = await newCluster();
    let target = await leader(names);
    const cluster = target.slice(0, target.lastIndexOf(':') + 1);

    const seen: Sampled = { samples: 0, maxUnstable: 0, maxRetained: 0, worst: '' };
    const record = (s: NodeStatus) => {
      seen.samples++;
      const retained = s.lastIndex - s.firstIndex;
      if (s.unstableEntries > seen.maxUnstable || retained > seen.maxRetained) seen.worst = JSON.stringify(s);
      seen.maxUnstable = Math.max(seen.maxUnstable, s.unstableEntries);
      seen.maxRetained = Math.max(seen.maxRetained, retained);
    };
    // The sampler runs alongside the load, so it sees nodes mid-run, not only between rounds.
    let running = true;
    const sampler = (async () => {
      while (running) {
        for (const s of await Promise.all(names.map(status))) record(s);
        await sleep(20);
      }
    })();

    const started = Date.now();
    let retries = 0;
    let lastIndex = 0;
    const value = new TextEncoder().encode('v');
    try {
      for (let base = 0; base < ENTRIES; base += BATCH) {
        let pending = Array.from({ length: Math.min(BATCH, ENTRIES - base) }, (_, i) => base + i);
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt > 20) throw new Error(`round at ${base}: ${pending.length} puts never applied`);
          const leaderNow = target;
          const outs = await Promise.all(
            pending.map((i) =>
              stub(leaderNow)
                .propose(command({ type: 'put', key: `k${i}`, value }), PROPOSE_TIMEOUT_MS)
                .catch((e: unknown) => ({ status: 'error', error: String(e) }) as const),
            ),
          );
          const failed: number[] = [];
          outs.forEach((o, j) => {
            if (o.status === 'applied') lastIndex = Math.max(lastIndex, o.index);
            else failed.push(pending[j] as number);
            if (o.status === 'notLeader' && o.leader) target = cluster + o.leader;
          });
          if (failed.length > 0) {
            const why = new Map<string, number>();
            for (const o of outs) if (o.status !== 'applied') why.set(o.status, (why.get(o.status) ?? 0) + 1);
            console.log(
              `bounds: round ${base} attempt ${attempt} at ${Date.now() - started} ms: ${JSON.stringify([...why])}`,
              JSON.stringify(
                (await Promise.all(names.map(status))).map((x) => [x.id, x.role, x.term, x.commit, x.unstableEntries]),
              ),
            );
            // A put is idempotent here (same key, same value): retrying one whose outcome was unknown is safe.
            retries += failed.length;
            await sleep(50);
            if (!outs.some((o) => o.status === 'notLeader' && o.leader)) target = await leader(names);
          }
          pending = failed;
        }
        if ((base / BATCH) % 40 === 39)
          console.log(
            `bounds: ${base + BATCH} puts after ${Date.now() - started} ms, ${retries} retries, max unstable ${seen.maxUnstable}, max retained ${seen.maxRetained}`,
          );
        // workerd: an unbroken chain of RPCs starves timers (ours, the nodes' and vitest's own).
        await sleep(1);
      }
    } finally {
      running = false;
      await sampler;
    }
    const loadMs = Date.now() - started;

    await allApplied(names, lastIndex, 30_000);
    const totalMs = Date.now() - started;
    for (const s of await Promise.all(names.map(status))) record(s);
    console.log(
      `bounds: ${ENTRIES} puts committed in ${loadMs} ms (${Math.round((ENTRIES / loadMs) * 1000)}/s), ` +
        `applied everywhere after ${totalMs} ms; ${retries} retries; last index ${lastIndex}; ` +
        `${seen.samples} samples: max unstable ${seen.maxUnstable}, max retained ${seen.maxRetained} ` +
        `(compact after ${COMPACT_AFTER})`,
    );

    expect(lastIndex).toBeGreaterThanOrEqual(ENTRIES);
    expect(seen.samples).toBeGreaterThan(names.length * 10);
    expect(seen.maxUnstable, seen.worst).toBeLessThanOrEqual(MAX_UNSTABLE);
    expect(seen.maxRetained, seen.worst).toBeLessThan(2 * COMPACT_AFTER);

    for (const n of names) {
      // Every put applied on every node: all the keys are there, first and last readable.
      const r = await stub(n).range({ prefix: 'k', countOnly: true }, 'serializable', 5000);
      expect(r.status).toBe('ok');
      if (r.status === 'ok') expect(r.value.count, n).toBe(ENTRIES);
      expect(await localValue(n, 'k0')).toBe('v');
      expect(await localValue(n, `k${ENTRIES - 1}`)).toBe('v');
      // The log on disk, counted in SQLite itself, is bounded by compaction too. A row holds a segment of
      // n entries; compaction deletes whole segments, so besides the retained log the disk may keep the
      // compacted head of the one segment straddling the snapshot index.
      const disk = await runInDurableObject(stub(n), (_i, state) => {
        const r = state.storage.sql
          .exec('SELECT count(*) AS rows, coalesce(sum(n), 0) AS entries, coalesce(max(n), 0) AS widest FROM raft_log')
          .one();
        return { rows: Number(r.rows), entries: Number(r.entries), widest: Number(r.widest) };
      });
      console.log(`bounds: ${n}: raft_log holds ${disk.entries} entries in ${disk.rows} rows (widest ${disk.widest})`);
      expect(disk.entries, n).toBeLessThan(2 * COMPACT_AFTER + disk.widest);
    }
  }, 240_000);
});
