import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { RaftNode } from '../../src/node/raft-node.ts';
import { leader, newCluster, put, sleep, status, stub } from './cluster-helpers.ts';

/**
 * Keeps the isolate busy for about `ms`: every node of the cluster lives in
 * this isolate, so none of them runs meanwhile, while their alarms fall due
 * and their messages queue. A SQLite query is synchronous CPU work that the
 * clock (which moves only between events) cannot cut short.
 */
async function stallIsolate(name: string, ms: number): Promise<number> {
  const spin = (rows: number) =>
    runInDurableObject(stub(name), (_obj: RaftNode, state) => {
      state.storage.sql
        .exec(
          'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c',
          rows,
        )
        .one();
    });
  // Calibrate on this machine: rows per millisecond.
  let rows = 20_000;
  let took = 0;
  for (; took < 50; rows *= 2) {
    const t0 = Date.now();
    await spin(rows);
    took = Date.now() - t0;
  }
  const perMs = rows / 2 / Math.max(1, took);
  const t0 = Date.now();
  await spin(Math.round(perMs * ms));
  return Date.now() - t0;
}

describe('issue 16: a stalled isolate judges the time it lost together with the messages that queued', () => {
  it('stalling every node for about three election timeouts starts no election and changes no term', async () => {
    const names = await newCluster();
    const l = await leader(names);
    const terms = async () => Promise.all(names.map(async (n) => (await status(n)).term));
    for (let i = 0; i < 3; i++) {
      // Writes keep the cluster awake (an idle one goes quiet and has no timer to fall due).
      expect(await put(names, `k${i}`, 'v')).toBe('applied');
      const before = await terms();
      const stalled = await stallIsolate(l, 1500);
      // Longer than the longest election timeout (20 ticks of 20 ms).
      expect(stalled).toBeGreaterThan(600);
      await sleep(300);
      expect(await terms()).toEqual(before);
      expect((await status(l)).role).toBe('leader');
    }
  });
});
