import { afterEach, describe, expect, it } from 'vitest';
import { NodeMetrics } from '../../src/node/metrics.ts';
import { type Host, NodeRuntime } from '../../src/node/runtime.ts';
import { readSettings } from '../../src/node/settings.ts';
import { decodeEnvelope } from '../../src/transport/index.ts';
import { ListMachine, seededRng } from '../raft/harness.ts';
import { bytes } from '../raft/raw.ts';
import { nodeSql } from '../support/node-sql.ts';

/**
 * Three NodeRuntimes in one process, as the Durable Object runs them (SQLite
 * log, the fetch transport, the same settings), but on a clock the test
 * holds still, so no tick or heartbeat runs unless asked: each peer's fetch
 * calls the other runtime's `receive` and answers with its reply.
 */
function cluster(env: Record<string, string> = {}) {
  const ids = ['n0', 'n1', 'n2'];
  const runtimes = new Map<string, NodeRuntime<string>>();
  /** Outermost storage transactions per node. */
  const txns = new Map<string, number>();
  /** Appends (bodies with an `app` message carrying entries) each node received. */
  const appends = new Map<string, number[][]>();
  /** Nodes whose incoming posts never answer. */
  const silent = new Set<string>();
  /** `delayMs`: how long a post takes to reach its peer. */
  /** The times each node armed its alarm for, in order. */
  const alarms = new Map<string, number[]>();
  const c = {
    node: (id: string) => runtimes.get(id) as NodeRuntime<string>,
    txns,
    appends,
    silent,
    alarms,
    delayMs: 0,
    /** The clock every node reads: moved only by the test. */
    now: 1_000_000,
  };
  const settings = readSettings({ CLUSTER_NODES: ids.join(','), RPC_TIMEOUT_MS: '200', ...env });
  for (const id of ids) {
    const base = nodeSql();
    let depth = 0;
    const sql = {
      exec: base.exec,
      transaction<T>(fn: () => T): T {
        if (depth === 0) txns.set(id, (txns.get(id) ?? 0) + 1);
        depth++;
        try {
          return base.transaction(fn);
        } finally {
          depth--;
        }
      },
    };
    const host: Host = {
      sql,
      now: () => c.now,
      setAlarm: (at) => {
        if (at !== undefined) alarms.set(id, [...(alarms.get(id) ?? []), at]);
      },
      peer: (to) => ({
        fetch: (_url: string, init: RequestInit) => {
          // Recorded as it is sent; received in a task of its own, as another object's request is.
          const body = init.body as Uint8Array;
          const entries = decodeEnvelope(body)
            .msgs.filter((m) => m.type === 'app' && m.entries.length > 0)
            .map((m) => (m.type === 'app' ? m.entries.map((e) => e.index) : []));
          if (entries.length > 0) appends.set(to, [...(appends.get(to) ?? []), ...entries]);
          if (silent.has(to)) return new Promise<Response>(() => {});
          return new Promise<Response>((resolve) =>
            setTimeout(() => {
              const reply = runtimes.get(to)?.receive(body);
              resolve(new Response(reply ?? null, { status: reply ? 200 : 204 }));
            }, c.delayMs),
          );
        },
      }),
      rng: seededRng(ids.indexOf(id) + 1),
      faults: undefined,
      metrics: new NodeMetrics(),
      reset: (reason) => {
        throw reason;
      },
    };
    runtimes.set(id, new NodeRuntime<string>(id, host, settings, new ListMachine(), ids));
  }
  return c;
}

/** Lets every fetch and reply in flight land (they are promises and timers of 0 ms). */
async function settle(ms = 20): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function elected(env: Record<string, string> = {}) {
  const c = cluster(env);
  c.node('n0').campaign();
  for (let i = 0; i < 100 && c.node('n0').status().role !== 'leader'; i++) await settle(10);
  expect(c.node('n0').status()).toMatchObject({ role: 'leader', unstableEntries: 0 });
  // A first write commits the leader's term, so later ones see settled followers.
  expect(await c.node('n0').propose(bytes('warm-up'), 1000)).toMatchObject({ status: 'applied' });
  await settle();
  c.txns.clear();
  c.appends.clear();
  c.alarms.clear();
  return c;
}

describe('NodeRuntime: the leader sends before it persists (SEND_BEFORE_PERSIST_MS)', () => {
  const pending: Promise<unknown>[] = [];
  afterEach(async () => {
    await Promise.allSettled(pending.splice(0));
  });

  it('one put at a time costs the leader one transaction: the ack persists and applies it', async () => {
    // A timer long enough never to beat the ack, however slow the machine (the next test covers it).
    const c = await elected({ SEND_BEFORE_PERSIST_MS: '1000' });
    for (let i = 0; i < 5; i++) {
      expect(await c.node('n0').propose(bytes(`v${i}`), 1000)).toMatchObject({ status: 'applied' });
    }
    expect(c.txns.get('n0')).toBe(5);
  });

  it('with it off (0), the leader persists first: two transactions per put', async () => {
    const c = await elected({ SEND_BEFORE_PERSIST_MS: '0' });
    for (let i = 0; i < 5; i++)
      expect(await c.node('n0').propose(bytes(`v${i}`), 1000)).toMatchObject({ status: 'applied' });
    expect(c.txns.get('n0')).toBe(10);
  });

  it('a timer armed for one put does not cut the next one short', async () => {
    const c = await elected({ SEND_BEFORE_PERSIST_MS: '60' });
    const n0 = c.node('n0');
    // Each put's ack comes 5 ms after it is sent: the first put's timer (60 ms) fires while a later put waits.
    c.delayMs = 5;
    for (let i = 0; i < 20; i++) expect(await n0.propose(bytes(`v${i}`), 1000)).toMatchObject({ status: 'applied' });
    expect(c.txns.get('n0')).toBe(20);
  });

  it('entries nobody answers for are persisted by the timer, not left in memory', async () => {
    const c = await elected({ SEND_BEFORE_PERSIST_MS: '5' });
    c.silent.add('n1');
    c.silent.add('n2');
    pending.push(c.node('n0').propose(bytes('unanswered'), 100));
    // Sent, not yet durable: the clock stands still, so no tick or heartbeat will persist it.
    expect(c.node('n0').status().unstableEntries).toBe(1);
    expect(c.txns.get('n0') ?? 0).toBe(0);
    await settle(50);
    expect(c.node('n0').status().unstableEntries).toBe(0);
    expect(c.txns.get('n0')).toBe(1);
  });
});

describe('NodeRuntime: proposals wait for a burst (BATCH_WAIT_MS)', () => {
  it('after a batch of several, a lone proposal waits for the next one and both go in one append', async () => {
    const c = await elected();
    const n0 = c.node('n0');
    // The first goes alone; the two that arrive while it is in flight make a batch of two.
    const first = [n0.propose(bytes('a'), 1000), n0.propose(bytes('b'), 1000), n0.propose(bytes('c'), 1000)];
    await Promise.all(first);
    await settle();
    c.appends.clear();
    const x = n0.propose(bytes('x'), 1000);
    // Held: appended in memory, nothing sent.
    expect(n0.status().unstableEntries).toBe(1);
    expect(c.appends.size).toBe(0);
    const y = n0.propose(bytes('y'), 1000);
    await Promise.all([x, y]);
    const [sent] = [...c.appends.values()];
    expect(sent?.[0]).toHaveLength(2);
  });

  it('a held proposal goes out alone once BATCH_WAIT_MS passes', async () => {
    const c = await elected({ BATCH_WAIT_MS: '5' });
    const n0 = c.node('n0');
    await Promise.all([n0.propose(bytes('a'), 1000), n0.propose(bytes('b'), 1000), n0.propose(bytes('c'), 1000)]);
    await settle();
    const x = n0.propose(bytes('x'), 1000);
    expect(n0.status().unstableEntries).toBe(1);
    expect(await x).toMatchObject({ status: 'applied' });
  });

  it('a leader whose last batch held one proposal never waits', async () => {
    const c = await elected();
    const n0 = c.node('n0');
    expect(await n0.propose(bytes('a'), 1000)).toMatchObject({ status: 'applied' });
    await settle();
    c.appends.clear();
    const x = n0.propose(bytes('x'), 1000);
    // Sent at once (before being persisted, as the leader may).
    expect([...c.appends.values()].flat()).toHaveLength(1);
    expect(await x).toMatchObject({ status: 'applied' });
  });
});

describe("NodeRuntime: the leader's alarm and heartbeat rounds that send nothing", () => {
  const ROUND_MS = 250; // the defaults: a heartbeat every 5 ticks of 50 ms
  /** Awake through every round here: what is tested is the alarm of a leader that has not gone quiet. */
  const AWAKE = { QUIESCE_AFTER_TICKS: '1000' };

  /** Moves the clock by a round and fires the leader's alarm, as the Durable Object would; its messages land. */
  async function round(c: Awaited<ReturnType<typeof elected>>): Promise<void> {
    c.now += ROUND_MS;
    c.node('n0').alarm();
    await settle();
  }

  it('idle, the leader arms its alarm past a round in which it would send nothing', async () => {
    const c = await elected(AWAKE);
    // A round without requests first: only then may the alarm move later.
    for (let i = 0; i < 3; i++) await round(c);
    c.alarms.clear();
    await round(c);
    await round(c);
    const armed = c.alarms.get('n0') ?? [];
    // Its last word: wake two rounds on, the round between sends nothing.
    expect(armed[armed.length - 1]).toBe(c.now + 2 * ROUND_MS);
  });

  it('with the defaults, a group goes quiet 0.5 s after its last write (QUIESCE_AFTER_TICKS 10)', async () => {
    const c = await elected();
    expect(await c.node('n0').propose(bytes('x'), 1000)).toMatchObject({ status: 'applied' });
    await settle();
    await round(c);
    expect(c.node('n0').isQuiet()).toBe(false);
    await round(c);
    for (const id of ['n0', 'n1', 'n2']) expect(c.node(id).status()).toMatchObject({ quiet: true, alarmAt: null });
    // The followers have the write and know it committed.
    for (const id of ['n1', 'n2']) expect(c.node(id).status().commit).toBe(c.node('n0').status().commit);
  });

  it('serving reads, the leader does not move its alarm back and forth at each one', async () => {
    const c = await elected(AWAKE);
    for (let i = 0; i < 3; i++) await round(c);
    c.alarms.clear();
    for (let i = 0; i < 20; i++) {
      expect(await c.node('n0').readBarrier(1000)).toMatchObject({ status: 'ready' });
      await settle(2);
    }
    // Each read's round makes the next periodic round due while it is in flight, and skippable
    // once answered: following that would re-arm (a storage write) twice per read.
    expect((c.alarms.get('n0') ?? []).length).toBeLessThanOrEqual(2);
  });
});
