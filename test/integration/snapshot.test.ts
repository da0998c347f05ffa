import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { beforeRevision, type KvCommand, type KvEvent } from '../../src/kv/index.ts';
import { durableObjectSql } from '../../src/node/do-sql.ts';
import { SqliteKvTable } from '../../src/storage/index.ts';
import {
  command,
  crash,
  heal,
  leader,
  localValue,
  newCluster,
  partition,
  put,
  setFaults,
  sleep,
  status,
  stub,
  waitFor,
} from './cluster-helpers.ts';

/** Settings of the workers project (vitest.config.ts): compaction every 500 entries, keeping 100. */
const COMPACT_AFTER = 500;

/** Many puts through the leader, `parallel` at a time, paced so timers still run. */
async function putMany(
  names: string[],
  count: number,
  parallel: number,
  value: (i: number) => Uint8Array,
  prefix = 'k',
) {
  const l = await leader(names);
  for (let i = 0; i < count; i += parallel) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + parallel); j++) {
      batch.push(stub(l).propose(command({ type: 'put', key: `${prefix}${j}`, value: value(j) }), 10_000));
    }
    const outs = await Promise.all(batch);
    for (const o of outs) expect(o.status).toBe('applied');
    await sleep(1);
  }
}

/** A node's whole history and compaction point, read from its SQLite. */
async function historyOf(name: string): Promise<{ compacted: number; revision: number; events: KvEvent[] }> {
  return runInDurableObject(stub(name), (_instance, state) => {
    const t = new SqliteKvTable(durableObjectSql(state.storage));
    const events: KvEvent[] = [];
    for (let page = t.events(beforeRevision(0), 500); page.length > 0; ) {
      events.push(...page);
      page = t.events(page[page.length - 1] as KvEvent, 500);
    }
    const { compacted, revision } = t.meta();
    return { compacted, revision, events };
  });
}

/** A node's leases, and the keys attached to each, read from its SQLite. */
async function leasesOf(name: string) {
  return runInDurableObject(stub(name), (_instance, state) => {
    const t = new SqliteKvTable(durableObjectSql(state.storage));
    const leased = t.range('', undefined).flatMap((kv) => (kv.lease === undefined ? [] : [[kv.key, kv.lease]]));
    return { leases: t.leases(), leased, keys: t.leases().map((l) => t.leaseKeys(l.id)) };
  });
}

/** Cuts `f` off, writes while it is away until the leader has compacted past it, then heals. */
async function lagBehindCompaction(names: string[], f: string, write: () => Promise<void>): Promise<void> {
  await partition(
    [f],
    names.filter((n) => n !== f),
  );
  await write();
  const l = await leader(names.filter((n) => n !== f));
  const ls = await status(l);
  expect(ls.firstIndex).toBeGreaterThan((await status(f)).lastIndex + 1);
  await heal(names);
}

describe('log compaction and snapshots streamed in chunks (§7)', () => {
  it('a follower behind the compacted log catches up by snapshot and serves every write', async () => {
    const names = await newCluster();
    const l0 = await leader(names);
    const f = names.find((n) => n !== l0) as string;
    expect(await put(names, 'before', 'b')).toBe('applied');
    const enc = new TextEncoder();
    await lagBehindCompaction(names, f, () => putMany(names, 2 * COMPACT_AFTER, 50, (i) => enc.encode(`v${i}`)));
    const commit = (await status(await leader(names))).commit;
    await waitFor('follower caught up', async () => ((await status(f)).applied >= commit ? true : undefined), 20_000);
    const fs = await status(f);
    expect(fs.firstIndex).toBeGreaterThan(1); // it holds a snapshot, not the whole log
    expect(await localValue(f, 'before')).toBe('b');
    expect(await localValue(f, 'k0')).toBe('v0');
    expect(await localValue(f, `k${2 * COMPACT_AFTER - 1}`)).toBe(`v${2 * COMPACT_AFTER - 1}`);
    // And it keeps replicating afterwards.
    expect(await put(names, 'after', 'a')).toBe('applied');
    await waitFor('follower applies new writes', async () =>
      (await localValue(f, 'after')) === 'a' ? true : undefined,
    );
  });

  it('a follower installed from a snapshot serves the same history and compaction point as the leader', {
    timeout: 60_000,
  }, async () => {
    const names = await newCluster();
    const l0 = await leader(names);
    const f = names.find((n) => n !== l0) as string;
    const enc = new TextEncoder();
    expect(await put(names, 'before', 'b')).toBe('applied');
    await lagBehindCompaction(names, f, async () => {
      // Past the kept history (HISTORY_KEEP_REVISIONS, 200 in tests): the leader compacts it on its own.
      await putMany(names, COMPACT_AFTER + 50, 50, (i) => enc.encode(`v${i}`));
      // A max-size value, put twice: the second event carries a 1 MiB prev.
      const l = await leader(names);
      for (const fill of [1, 2]) {
        const value = new Uint8Array(1024 * 1024).fill(fill);
        expect((await stub(l).propose(command({ type: 'put', key: 'big', value }), 10_000)).status).toBe('applied');
      }
    });
    const commit = (await status(await leader(names))).commit;
    await waitFor(
      'every node caught up',
      async () => {
        const all = await Promise.all(names.map(status));
        return all.every((st) => st.applied >= commit) ? true : undefined;
      },
      30_000,
    );
    expect((await status(f)).firstIndex).toBeGreaterThan(1); // it installed a snapshot
    // An automatic compaction may still be on its way to one of them: wait until both are at the same point.
    const [ours, theirs] = await waitFor('the same revision and compaction point on both', async () => {
      const both = await Promise.all([historyOf(await leader(names)), historyOf(f)]);
      const [a, b] = both;
      return a.revision === b.revision && a.compacted === b.compacted ? both : undefined;
    });
    expect(theirs.compacted).toBeGreaterThan(1);
    expect(theirs.events.length).toBeGreaterThan(100);
    expect(theirs.events[0]?.revision).toBe(theirs.compacted);
    expect(theirs.events).toEqual(ours.events);
    const big = theirs.events.filter((e) => e.kv.key === 'big');
    expect(big.map((e) => [e.kv.value.byteLength, e.prev?.value.byteLength])).toEqual([
      [1024 * 1024, undefined],
      [1024 * 1024, 1024 * 1024],
    ]);
  });

  it("a follower installed from a snapshot has the leader's leases, and its keys the leader's leases", {
    timeout: 60_000,
  }, async () => {
    const names = await newCluster();
    const l0 = await leader(names);
    const f = names.find((n) => n !== l0) as string;
    const enc = new TextEncoder();
    const big = 2 ** 50;
    const apply = async (cmd: KvCommand) =>
      expect((await stub(await leader(names)).propose(command(cmd), 10_000)).status).toBe('applied');
    // Before the follower falls behind: a lease and a key on it, which the snapshot must take away again.
    await apply({ type: 'leaseGrant', id: 7, ttl: 3600 });
    await apply({ type: 'put', key: 'was-on-7', value: enc.encode('x'), lease: 7 });
    await apply({ type: 'leaseGrant', id: 9, ttl: 3600 });
    await apply({ type: 'put', key: 'on-9', value: enc.encode('x'), lease: 9 });
    await waitFor('the follower to have lease 9', async () =>
      (await leasesOf(f)).leases.length === 2 ? true : undefined,
    );
    await lagBehindCompaction(names, f, async () => {
      await apply({ type: 'leaseGrant', id: big, ttl: 3600 });
      await apply({ type: 'put', key: 'on-big', value: enc.encode('y'), lease: big });
      await apply({ type: 'put', key: 'was-on-7', value: enc.encode('z') });
      await apply({ type: 'leaseRevoke', id: 9 });
      await putMany(names, COMPACT_AFTER + 50, 50, (i) => enc.encode(`v${i}`));
    });
    const commit = (await status(await leader(names))).commit;
    await waitFor('follower caught up', async () => ((await status(f)).applied >= commit ? true : undefined), 30_000);
    expect((await status(f)).firstIndex).toBeGreaterThan(1); // it installed a snapshot
    // A checkpoint of the leader's may be on its way: wait until both hold the same.
    const [ours, theirs] = await waitFor('the same leases on both', async () => {
      const both = await Promise.all([leasesOf(await leader(names)), leasesOf(f)]);
      return JSON.stringify(both[0]) === JSON.stringify(both[1]) ? both : undefined;
    });
    expect(theirs).toEqual(ours);
    expect(theirs.leases.map((l) => [l.id, l.ttl])).toEqual([
      [7, 3600],
      [big, 3600],
    ]);
    expect(theirs.leased).toEqual([['on-big', big]]);
    expect(theirs.keys).toEqual([[], ['on-big']]);
    expect(await localValue(f, 'on-9')).toBeUndefined();
  });

  it('a 50 MB table reaches a lagging follower in chunks under 1 MiB', { timeout: 180_000 }, async () => {
    const names = await newCluster();
    const l0 = await leader(names);
    const f = names.find((n) => n !== l0) as string;
    const VALUE = 256 * 1024;
    const COUNT = 205; // 205 x 256 KiB = 51.25 MiB
    const big = (i: number) => {
      const v = new Uint8Array(VALUE);
      v.fill(i % 251);
      return v;
    };
    const t0 = Date.now();
    await lagBehindCompaction(names, f, async () => {
      await putMany(names, COUNT, 5, big);
      // Small writes on top, so the leader compacts past the follower.
      const enc = new TextEncoder();
      for (let i = 0; i < COMPACT_AFTER + 50; i += 50) {
        const l = await leader(names);
        await Promise.all(
          Array.from({ length: 50 }, (_, j) =>
            stub(l).propose(command({ type: 'put', key: `s${i + j}`, value: enc.encode('x') }), 10_000),
          ),
        );
      }
    });
    const t1 = Date.now();
    const commit = (await status(await leader(names))).commit;
    await waitFor('follower caught up', async () => ((await status(f)).applied >= commit ? true : undefined), 150_000);
    const t2 = Date.now();
    // Whoever led while the follower lagged streamed it (heavy local I/O may move leadership).
    const all = await Promise.all(names.map(status));
    const chunks = all.reduce((n, st) => n + (st.snapshotStream?.chunks ?? 0), 0);
    const maxChunk = Math.max(...all.map((st) => st.snapshotStream?.maxChunkBytes ?? 0));
    const installs = all.reduce((n, st) => n + (st.snapshotStream?.installs ?? 0), 0);
    console.log(
      `50 MB snapshot: writes ${t1 - t0} ms, catch-up ${t2 - t1} ms, ${chunks} chunks, largest ${maxChunk} bytes`,
    );
    expect(chunks).toBeGreaterThanOrEqual(50);
    expect(maxChunk).toBeLessThan(1024 * 1024);
    expect(installs).toBeGreaterThanOrEqual(1);
    for (const st of all) expect(st.maxSentPerEvent).toBeLessThanOrEqual(40);
    expect((await status(f)).firstIndex).toBeGreaterThan(1);
    const r = await stub(f).get(`k${COUNT - 1}`, 'serializable', 1000);
    expect(r.status).toBe('ok');
    if (r.status === 'ok') {
      expect(r.value?.value.byteLength).toBe(VALUE);
      expect(r.value?.value[0]).toBe((COUNT - 1) % 251);
    }
  });

  it('a follower that crashes mid-stream still installs a complete snapshot, never a partial one', {
    timeout: 120_000,
  }, async () => {
    const names = await newCluster();
    const l0 = await leader(names);
    const f = names.find((n) => n !== l0) as string;
    const big = (i: number) => new Uint8Array(256 * 1024).fill(i % 251);
    const COUNT = 40; // 10 MiB: a dozen chunks
    await lagBehindCompaction(names, f, async () => {
      await putMany(names, COUNT, 5, big);
      const enc = new TextEncoder();
      await putMany(names, COMPACT_AFTER + 50, 50, (i) => enc.encode(`s${i}`), 's');
    });
    // Slow every message down so the crash lands mid-stream, then crash the follower once it is under way.
    for (const n of names) await setFaults(n, { delayMs: 40 });
    await waitFor(
      'the stream to start',
      async () => {
        const all = await Promise.all(names.map(status));
        return all.some((st) => (st.snapshotStream?.chunks ?? 0) >= 3) ? true : undefined;
      },
      30_000,
    );
    await crash(f);
    const installsAtCrash = (await Promise.all(names.map(status))).reduce(
      (n, st) => n + (st.snapshotStream?.installs ?? 0),
      0,
    );
    expect(installsAtCrash).toBe(0); // the crash came before the last chunk
    for (const n of names) await setFaults(n, { delayMs: 0 });
    const commit = (await status(await leader(names))).commit;
    await waitFor('follower caught up', async () => ((await status(f)).applied >= commit ? true : undefined), 90_000);
    // Every big value arrived whole.
    for (const i of [0, COUNT - 1]) {
      const r = await stub(f).get(`k${i}`, 'serializable', 1000);
      expect(r.status === 'ok' && r.value?.value.byteLength).toBe(256 * 1024);
    }
    expect(await localValue(f, `s${COMPACT_AFTER + 49}`)).toBe(`s${COMPACT_AFTER + 49}`);
    const all = await Promise.all(names.map(status));
    expect(all.reduce((n, st) => n + (st.snapshotStream?.chunks ?? 0), 0)).toBeGreaterThan(10);
  });
});
