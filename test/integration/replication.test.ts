import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import {
  allApplied,
  crash,
  leader,
  localValue,
  MEMBERS,
  newCluster,
  put,
  status,
  stub,
  waitFor,
} from './cluster-helpers.ts';

describe('RaftNode cluster in workerd: elections and replication', () => {
  for (const size of [3, 5]) {
    it(`a ${size}-node cluster elects exactly one leader and replicates to every node`, async () => {
      const names = await newCluster(Array.from({ length: size }, (_, i) => `node-${i}`));
      const l = await leader(names);
      const statuses = await Promise.all(names.map(status));
      const leaders = statuses.filter(
        (s) => s.role === 'leader' && s.term === statuses.find((x) => x.id === l.split(':')[1])?.term,
      );
      expect(leaders.length).toBe(1);
      for (let i = 0; i < 10; i++) expect(await put(names, `k${i}`, `v${i}`)).toBe('applied');
      const commit = (await status(l)).commit;
      await allApplied(names, commit);
      for (const n of names) expect(await localValue(n, 'k9')).toBe('v9');
    });
  }
});

describe('RaftNode cluster in workerd: batching concurrent proposals', () => {
  it('proposals arriving while an append is in flight share log rows on every node, the leader included', async () => {
    const names = await newCluster();
    const l = await leader(names);
    const before = (await status(l)).lastIndex;
    const outcomes = await Promise.all(Array.from({ length: 64 }, (_, i) => put(names, `b${i}`, `${i}`)));
    expect(outcomes.every((o) => o === 'applied')).toBe(true);
    const commit = (await status(l)).commit;
    await allApplied(names, commit);
    for (const n of names) {
      // Rows of raft_log written for the entries after `before` (compaction has not run: test vars compact after 500).
      const { rows, entries } = await runInDurableObject(stub(n), (_i, state) => {
        const r = state.storage.sql
          .exec('SELECT count(*) AS rows, sum(n) AS entries FROM raft_log WHERE idx > ?', before)
          .one();
        return { rows: Number(r.rows), entries: Number(r.entries) };
      });
      expect(entries, n).toBeGreaterThanOrEqual(64);
      // One row per entry would be 64; each round trip's proposals share one.
      expect(rows, n).toBeLessThan(entries / 4);
    }
  });
});

describe('RaftNode cluster in workerd: quorum-first replication (HOLD_BACK_ENTRIES)', () => {
  it('a spare follower held back under a burst has every entry within a few ticks of the last put, with no further write', async () => {
    const names = await newCluster();
    const l = await leader(names);
    // 8 writers of 8 puts each: the leader holds entries back from one follower and sends them at its ticks.
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 8; i++) expect(await put(names, `q${w}-${i}`, `${i}`)).toBe('applied');
      }),
    );
    const { commit } = await status(l);
    // The leader's alarm is at its next tick (20 ms here) while it holds anything back.
    await allApplied(names, commit, 500);
    for (const n of names) expect(await localValue(n, 'q7-7')).toBe('7');
  });
});

describe('RaftNode cluster in workerd: crash and restart (ctx.abort)', () => {
  it('a crashed follower catches up on every acknowledged write', async () => {
    const names = await newCluster();
    const l = await leader(names);
    const follower = names.find((n) => n !== l) as string;
    expect(await put(names, 'a', '1')).toBe('applied');
    await crash(follower);
    expect(await put(names, 'b', '2')).toBe('applied');
    const commit = (await status(l)).commit;
    await allApplied(names, commit);
    expect(await localValue(follower, 'a')).toBe('1');
    expect(await localValue(follower, 'b')).toBe('2');
  });

  it('after the leader crashes a leader serves again, and no acknowledged write is lost', async () => {
    const names = await newCluster();
    const first = await leader(names);
    for (let i = 0; i < 5; i++) expect(await put(names, `k${i}`, `v${i}`)).toBe('applied');
    await crash(first);
    expect(await put(names, 'after', 'crash', 5000)).toBe('applied');
    const l = await leader(names);
    await allApplied(names, (await status(l)).commit);
    for (const n of names) {
      for (let i = 0; i < 5; i++) expect(await localValue(n, `k${i}`)).toBe(`v${i}`);
      expect(await localValue(n, 'after')).toBe('crash');
    }
  });

  it('after every node crashes at once the cluster recovers its state and serves', async () => {
    const names = await newCluster();
    await leader(names);
    for (let i = 0; i < 5; i++) expect(await put(names, `k${i}`, `v${i}`)).toBe('applied');
    for (const n of names) await crash(n);
    expect(await put(names, 'k5', 'v5', 5000)).toBe('applied');
    const l = await leader(names);
    await allApplied(names, (await status(l)).commit);
    for (const n of names) for (let i = 0; i <= 5; i++) expect(await localValue(n, `k${i}`)).toBe(`v${i}`);
  });
});

describe('RaftNode internal routes', () => {
  it('a malformed internal message gets a 400 and changes nothing', async () => {
    const [name] = (await newCluster(MEMBERS)) as [string];
    const before = await status(name);
    for (const body of [new Uint8Array([0xc1]), new TextEncoder().encode('{}'), new Uint8Array(0)]) {
      const res = await stub(name).fetch('https://node/internal/raft', {
        method: 'POST',
        body,
        headers: { 'x-raft-node': name },
      });
      expect(res.status).toBe(400);
      const err = (await res.json()) as { error: { code: string } };
      expect(err.error.code).toBe('bad_message');
    }
    const after = await status(name);
    expect({ term: after.term, lastIndex: after.lastIndex, commit: after.commit }).toEqual({
      term: before.term,
      lastIndex: before.lastIndex,
      commit: before.commit,
    });
  });

  it('every event sends at most 40 messages (the platform fails subrequests past 50 per event)', async () => {
    const names = await newCluster(['node-0', 'node-1', 'node-2', 'node-3', 'node-4']);
    await leader(names);
    await Promise.all(Array.from({ length: 50 }, (_, i) => put(names, `k${i % 7}`, `v${i}`)));
    const max = await waitFor('statuses', async () =>
      Math.max(...(await Promise.all(names.map(status))).map((s) => s.maxSentPerEvent)),
    );
    expect(max).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(40);
  });
});
