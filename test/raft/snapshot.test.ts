import { describe, expect, it } from 'vitest';
import type { Message, Snapshot, SnapshotMsg } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';
import { Cluster } from './harness.ts';
import { appMsg, appResp, bytes, entriesOf, heartbeatResp, ofType, Peer, RawNet, text } from './raw.ts';

const ABC = ['a', 'b', 'c'];
const CONF = { voters: ABC, learners: [] };

function snap(index: number, term: number, data = 'S', conf = CONF): Snapshot {
  return { meta: { index, term, conf }, data: bytes(data) };
}

function snapMsg(s: Snapshot, term: number, from = 'a', to = 'c'): SnapshotMsg {
  return { type: 'snapshot', from, to, term, snapshot: s };
}

/**
 * a leads {a,b,c} at term 1; c missed entries 2..11 (cut off) and a then
 * compacted its log up to 8. Returns the net with c reconnected.
 */
function laggingC(): RawNet {
  const net = new RawNet(ABC);
  net.elect('a');
  net.deliver();
  net.isolate('c');
  for (let i = 2; i <= 11; i++) net.propose('a', `e${i}`);
  net.deliver();
  const a = net.peer('a');
  expect(a.status.commit).toBe(11);
  a.store.compact({ index: 8, term: 1, conf: CONF }, bytes('state@8'));
  expect(a.status).toMatchObject({ firstIndex: 9, lastIndex: 11 });
  net.heal();
  return net;
}

describe('§7 log compaction: the follower side of InstallSnapshot', () => {
  it('installs a snapshot beyond its log: the Ready carries it, the commit moves, the reply acks its index', () => {
    const c = new Peer('c', ABC, { terms: [1], hard: { term: 1 } });
    const s = snap(10, 2, 'state@10', { voters: ['a', 'b', 'c', 'd'], learners: [] });
    c.node.step(snapMsg(s, 2));
    const rd = c.node.ready();
    expect(rd.snapshot).toEqual(s);
    expect(rd.hardState).toEqual({ term: 2, vote: '', commit: 10 });
    expect(rd.entries).toEqual([]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.messages).toEqual([appResp('c', 'a', 2, 10)]);
    c.handle(rd);
    expect(c.status).toMatchObject({
      leader: 'a',
      commit: 10,
      applied: 10,
      firstIndex: 11,
      lastIndex: 10,
      conf: { voters: ['a', 'b', 'c', 'd'], learners: [] },
    });
    expect(c.store.snapshot()).toEqual(s);
    expect(c.terms()).toEqual([]);
    // Replication continues right after the snapshot.
    c.node.step(appMsg('a', 'c', 2, 10, 2, entriesOf([2, 2], 11), 12));
    const out = c.flush();
    expect(out).toEqual([appResp('c', 'a', 2, 12)]);
    expect(c.applied.map((e) => e.index)).toEqual([11, 12]);
    expect(c.status).toMatchObject({ commit: 12, firstIndex: 11, lastIndex: 12 });
  });

  it('a snapshot at or below its commit index is ignored and answered with the commit index', () => {
    const c = new Peer('c', ABC, { terms: [1, 1, 1, 1, 1], hard: { term: 1, commit: 4 } });
    c.node.step(snapMsg(snap(3, 1), 1));
    const rd = c.node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages).toEqual([appResp('c', 'a', 1, 4)]);
  });

  it('a snapshot whose last entry its log already has only moves the commit index forward', () => {
    const c = new Peer('c', ABC, { terms: [1, 1, 2, 2, 2], hard: { term: 2 } });
    c.node.step(snapMsg(snap(3, 2), 2));
    const rd = c.node.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.hardState?.commit).toBe(3);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(rd.messages).toEqual([appResp('c', 'a', 2, 3)]);
    c.handle(rd);
    expect(c.status).toMatchObject({ firstIndex: 1, lastIndex: 5 });
  });

  it('a snapshot replaces a conflicting log entirely', () => {
    const c = new Peer('c', ABC, { terms: [1, 1, 1, 1, 1, 1, 1], hard: { term: 1 } });
    c.node.step(snapMsg(snap(5, 2), 2));
    c.flush();
    expect(c.status).toMatchObject({ commit: 5, firstIndex: 6, lastIndex: 5 });
    expect(c.terms()).toEqual([]);
    expect(c.snapshots.length).toBe(1);
  });
});

describe('§7 log compaction: the leader sends InstallSnapshot to a follower that needs compacted entries', () => {
  it('sends one snapshot, waits for it, then resumes replication after it', () => {
    const net = laggingC();
    net.tick('a');
    net.deliver((m) => m.type !== 'app' || m.to !== 'c' || m.entries.length === 0 || m.prevIndex >= 8);
    const snaps = ofType(net.sent, 'snapshot');
    expect(snaps.map((m) => [m.from, m.to, m.term, m.snapshot.meta])).toEqual([
      ['a', 'c', 1, { index: 8, term: 1, conf: CONF }],
    ]);
    expect(text((snaps[0] as SnapshotMsg).snapshot.data)).toBe('state@8');
    const c = net.peer('c');
    expect(c.snapshots.map((s) => s.meta.index)).toEqual([8]);
    expect(c.store.snapshot().meta.index).toBe(8);
    expect(c.log()).toEqual(net.peer('a').log());
    expect(c.status).toMatchObject({ firstIndex: 9, lastIndex: 11 });
    net.node('a').heartbeat();
    net.flush('a');
    net.deliver();
    expect(c.status.commit).toBe(11);
    // Entries after the snapshot were applied; those before came with it.
    expect(c.applied.map((e) => e.index)).toEqual([1, 9, 10, 11]);
    expect(net.node('a').status().progress.c).toMatchObject({ state: 'replicate', match: 11 });
    // And it keeps replicating.
    net.propose('a', 'e12');
    net.deliver();
    expect(c.status).toMatchObject({ lastIndex: 12, commit: 12 });
  });

  it('holds further appends while the snapshot is in flight, and retries after two election timeouts', () => {
    const net = laggingC();
    net.tick('a');
    // Let everything through except the snapshot itself (lost).
    net.deliver((m) => m.type !== 'snapshot');
    const a = net.node('a');
    expect(a.status().progress.c).toMatchObject({ state: 'snapshot' });
    expect(ofType(net.sent, 'snapshot').length).toBe(1);
    net.propose('a', 'more');
    expect(ofType(net.queue, 'app', 'c')).toEqual([]);
    let retriedAt = -1;
    for (let t = 1; t <= 25 && retriedAt < 0; t++) {
      net.tick('a');
      net.deliver((m) => m.type !== 'snapshot');
      if (ofType(net.sent, 'snapshot').length > 1) retriedAt = t;
    }
    expect(retriedAt).toBe(20);
  });

  it('reportUnreachable with a failed snapshot falls back to probing, which resends it', () => {
    const net = laggingC();
    net.tick('a');
    net.deliver((m) => m.type !== 'snapshot');
    expect(net.node('a').status().progress.c?.state).toBe('snapshot');
    net.node('a').reportUnreachable('c', true);
    expect(net.node('a').status().progress.c?.state).toBe('probe');
    net.step(heartbeatResp('c', 'a', 1));
    expect(ofType(net.queue, 'snapshot', 'c').length).toBe(1);
  });
});

describe('§7 log compaction: restart from a snapshot', () => {
  function compactedStore(): MemoryLogStore {
    const store = new MemoryLogStore();
    store.persist({
      entries: entriesOf([1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2]),
      hardState: { term: 2, vote: 'a', commit: 12 },
    });
    store.compact({ index: 10, term: 2, conf: CONF }, bytes('state@10'));
    return store;
  }

  it('a restarted node takes its configuration and first index from the snapshot and applies what follows it', () => {
    const a = new Peer('a', [], { store: compactedStore(), fromSnapshot: true });
    expect(a.status).toMatchObject({
      term: 2,
      vote: 'a',
      firstIndex: 11,
      lastIndex: 12,
      commit: 12,
      applied: 10,
      conf: CONF,
    });
    a.flush();
    expect(a.applied.map((e) => e.index)).toEqual([11, 12]);
  });

  it('a restarted leader serves an empty follower from its snapshot', () => {
    const net = new RawNet(ABC, { a: { store: compactedStore(), fromSnapshot: true } });
    net.flush('a');
    net.elect('a');
    net.deliver();
    net.node('a').heartbeat();
    net.flush('a');
    net.deliver();
    for (const id of ['b', 'c']) {
      expect(net.peer(id).snapshots.map((s) => s.meta.index)).toEqual([10]);
      expect(net.peer(id).status).toMatchObject({ term: 3, firstIndex: 11, lastIndex: 13, commit: 13 });
    }
  });
});

describe('§7 log compaction in a cluster (driver, state machine snapshot and restore)', () => {
  it('a follower cut off while the leader compacted catches up through a snapshot, then keeps replicating', () => {
    const c = new Cluster(ABC, { seed: 23, compactAfterEntries: 5 });
    const l = c.elect();
    const f = ABC.find((id) => id !== l) as string;
    c.isolate(f);
    for (let i = 0; i < 20; i++) expect(c.propose(l, `k${i}`)?.status).toBe('applied');
    expect(c.node(l).log.firstIndex()).toBeGreaterThan(10);
    c.heal();
    const seen: Message[] = [];
    for (let t = 0; t < 5; t++) {
      for (const n of c.nodes.values()) n.driver.tick();
      c.deliver(100_000, (m) => {
        seen.push(m);
        return true;
      });
    }
    const snaps = ofType(seen, 'snapshot', f);
    expect(snaps.length).toBe(1);
    const want = Array.from({ length: 20 }, (_, i) => `k${i}`);
    expect(c.node(f).sm.log).toEqual(want);
    expect(c.node(f).log.snapshot().meta.index).toBeGreaterThanOrEqual((snaps[0] as SnapshotMsg).snapshot.meta.index);
    expect(c.propose(l, 'after')?.status).toBe('applied');
    c.tickAll(2);
    expect(c.node(f).sm.log).toEqual([...want, 'after']);
  });

  it('a node restarted with only its log store rebuilds its state from its own snapshot plus the entries after it', () => {
    const c = new Cluster(ABC, { seed: 29, compactAfterEntries: 5 });
    const l = c.elect();
    for (let i = 0; i < 11; i++) c.propose(l, `v${i}`);
    c.tickAll(2);
    const f = ABC.find((id) => id !== l) as string;
    const before = c.node(f).log.snapshot().meta.index;
    expect(before).toBeGreaterThan(0);
    expect(c.node(f).log.lastIndex()).toBeGreaterThan(before);
    const n = c.restartFromSnapshot(f);
    expect(n.sm.appliedIndex).toBeGreaterThanOrEqual(before);
    c.tickAll(3);
    const want = Array.from({ length: 11 }, (_, i) => `v${i}`);
    expect(c.node(f).sm.log).toEqual(want);
    expect(c.propose(c.elect(), 'v11')?.status).toBe('applied');
    c.tickAll(2);
    expect(c.node(f).sm.log).toEqual([...want, 'v11']);
  });

  it('the whole cluster restarts from snapshots and agrees', () => {
    const c = new Cluster(ABC, { seed: 31, compactAfterEntries: 3 });
    const l = c.elect();
    for (let i = 0; i < 10; i++) c.propose(l, `z${i}`);
    c.tickAll(2);
    for (const id of ABC) c.restartFromSnapshot(id);
    const l2 = c.elect();
    expect(c.propose(l2, 'z10')?.status).toBe('applied');
    c.tickAll(2);
    for (const id of ABC) expect(c.node(id).sm.log).toEqual([...Array.from({ length: 10 }, (_, i) => `z${i}`), 'z10']);
  });
});
