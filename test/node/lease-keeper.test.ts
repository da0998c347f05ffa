import { describe, expect, it } from 'vitest';
import { decodeCommand, type KvCommand } from '../../src/kv/index.ts';
import { LeaseClockStore } from '../../src/node/lease-clock-store.ts';
import { LeaseKeeper } from '../../src/node/lease-keeper.ts';
import { Lessor } from '../../src/node/lessor.ts';
import { migrate } from '../../src/storage/index.ts';
import { Harness } from '../kv/harness.ts';
import { nodeSql } from '../support/node-sql.ts';

/** A keeper over a real state machine, with a node whose leadership, term and proposals the test drives. */
function setup() {
  const h = new Harness();
  const sql = nodeSql();
  migrate(sql);
  const proposed: KvCommand[] = [];
  const answers: ((outcome: 'applied' | 'refused' | 'pending') => void)[] = [];
  const node = {
    leads: true,
    quiet: false,
    term: 2,
    prior: 1 as number | undefined,
  };
  let now = 0;
  const lessor = new Lessor({ extendMs: 500, checkpointMs: 60_000, retryMs: 1_000 });
  const store = new LeaseClockStore(sql);
  const keeper = new LeaseKeeper(
    lessor,
    h.sm,
    {
      leading: () => node.leads,
      quiet: () => node.quiet,
      term: () => node.term,
      priorTerm: () => node.prior,
      otherLeader: () => other,
      propose: (data) => {
        proposed.push(decodeCommand(data).cmd);
        return new Promise<'applied' | 'refused' | 'pending'>((r) => answers.push(r));
      },
    },
    store,
    () => now,
  );
  h.sm.onLeases = (cs) => keeper.onLeases(cs);
  const tick = async (at: number) => {
    now = at;
    keeper.upkeep();
    // Proposals leave in a microtask, after the event.
    await Promise.resolve();
  };
  return { h, node, keeper, lessor, store, proposed, answers, tick };
}

describe('LeaseKeeper: the leader side of leases', () => {
  it('proposes an expiry once, however many events follow; again after retryMs only if it was refused before the log', async () => {
    const { h, proposed, answers, tick } = setup();
    await tick(0);
    h.run({ type: 'leaseGrant', id: 5, ttl: 2 });
    for (let t = 1_000; t < 2_000; t += 100) await tick(t);
    expect(proposed).toEqual([]);
    for (let t = 2_000; t < 2_600; t += 50) await tick(t);
    expect(proposed).toEqual([{ type: 'leaseRevoke', id: 5 }]);
    (answers[0] as (a: 'refused') => void)('refused');
    await Promise.resolve();
    await tick(2_700);
    expect(proposed).toHaveLength(1);
    await tick(3_650);
    expect(proposed).toHaveLength(2);
    // In the log but not seen to apply: never proposed again (it may still apply).
    (answers[1] as (a: 'pending') => void)('pending');
    await Promise.resolve();
    await tick(9_000);
    expect(proposed).toHaveLength(2);
    // It applies: the lease is gone from the clock, nothing more is proposed.
    h.run({ type: 'leaseRevoke', id: 5 });
    await tick(10_000);
    expect(proposed).toHaveLength(2);
  });

  it('follows leadership: a follower proposes nothing; a new leader extends every lease by the election timeout', async () => {
    const { h, node, proposed, tick, keeper } = setup();
    node.leads = false;
    h.run({ type: 'leaseGrant', id: 1, ttl: 1 });
    await tick(5_000);
    expect(proposed).toEqual([]);
    expect(keeper.wakeAt(true)).toBeUndefined();
    node.leads = true;
    await tick(6_000);
    expect(keeper.wakeAt(true)).toBe(7_500);
    await tick(7_499);
    expect(proposed).toEqual([]);
    await tick(7_500);
    expect(proposed).toEqual([{ type: 'leaseRevoke', id: 1 }]);
  });

  it('saves its deadlines when it goes quiet, and reuses them only as the leader of the term just before', async () => {
    const { h, node, store, tick } = setup();
    await tick(0);
    h.run({ type: 'leaseGrant', id: 1, ttl: 10 });
    node.quiet = true;
    await tick(1_000);
    expect(store.load()).toEqual({ term: 2, deadlines: new Map([[1, 10_000]]) });
    // A fresh instance of this node campaigns at once (see RaftNode.makeUpkeep).
    expect(keeperOf(store).sleptAsLeader()).toBe(true);

    // A fresh instance (memory lost) that led term 2 and now leads term 3 with nothing in between: reused.
    const again = setup();
    again.h.sm.restore({
      data: h.sm.snapshot(),
      meta: { index: h.index, term: 2, conf: { voters: [], learners: [] } },
    });
    const fresh = new LeaseKeeper(
      new Lessor({ extendMs: 500, checkpointMs: 60_000, retryMs: 1_000 }),
      again.h.sm,
      {
        leading: () => true,
        quiet: () => false,
        term: () => 3,
        priorTerm: () => 2,
        otherLeader: () => false,
        propose: async () => 'applied' as const,
      },
      store,
      () => 5_000,
    );
    fresh.upkeep();
    expect(fresh.wakeAt(true)).toBe(10_000);
    // Awake, it forgets them.
    expect(store.load()).toBeUndefined();

    // Another leader's entries came between (prior term 3, saved in 2): every lease restarts from its TTL.
    store.save(2, [[1, 10_000]]);
    const other = new LeaseKeeper(
      new Lessor({ extendMs: 500, checkpointMs: 60_000, retryMs: 1_000 }),
      again.h.sm,
      {
        leading: () => true,
        quiet: () => false,
        term: () => 4,
        priorTerm: () => 3,
        otherLeader: () => false,
        propose: async () => 'applied' as const,
      },
      store,
      () => 5_000,
    );
    other.upkeep();
    expect(other.wakeAt(true)).toBe(15_500);
  });

  it('checkpoints long leases, and a renewal of a checkpointed lease must clear it first', async () => {
    const { h, proposed, answers, tick, lessor } = setup();
    await tick(0);
    h.run({ type: 'leaseGrant', id: 9, ttl: 600 });
    await tick(60_000);
    expect(proposed).toEqual([{ type: 'leaseCheckpoint', checkpoints: [{ id: 9, remaining: 540 }] }]);
    (answers[0] as (a: 'applied') => void)('applied');
    expect(lessor.renew(9, 61_000)).toEqual({ ttl: 600, clearCheckpoint: true });
  });

  it('forgets saved deadlines once another leader is known', async () => {
    const { h, node, store, tick, keeper } = setup();
    await tick(0);
    h.run({ type: 'leaseGrant', id: 1, ttl: 10 });
    node.quiet = true;
    await tick(1_000);
    expect(keeper.sleptAsLeader()).toBe(true);
    node.leads = false;
    await tick(2_000);
    expect(keeper.sleptAsLeader()).toBe(true);
    other = true;
    await tick(3_000);
    expect(store.load()).toBeUndefined();
  });
});

let other = false;

/** A keeper over `store` alone (its other parts unused). */
function keeperOf(store: LeaseClockStore): LeaseKeeper {
  return new LeaseKeeper(
    new Lessor({ extendMs: 0, checkpointMs: 60_000, retryMs: 1_000 }),
    new Harness().sm,
    {
      leading: () => false,
      quiet: () => false,
      term: () => 0,
      priorTerm: () => 0,
      otherLeader: () => other,
      propose: async () => 'applied' as const,
    },
    store,
    () => 0,
  );
}
