import { describe, expect, it } from 'vitest';
import type { WatchFilter } from '../../src/kv/index.ts';
import { WatchHub, type WatchMessage, type WatchSink } from '../../src/node/watch-hub.ts';
import { b, Harness, text } from '../kv/harness.ts';

/**
 * The watch guarantees etcd documents, on one replica: ordered, unique,
 * reliable (no gap), atomic (a revision's events together), resumable by
 * revision, bookmarkable (progress), filters exact, and a slow watcher
 * canceled instead of growing memory.
 */

const ALL: WatchFilter = { start: '', end: undefined, prevKv: false, noPut: false, noDelete: false };

/** A sink that records what it gets, and takes at most `room` messages. */
class Recorder implements WatchSink {
  readonly got: WatchMessage[] = [];
  private readonly room: number;
  constructor(room = Number.POSITIVE_INFINITY) {
    this.room = room;
  }
  send(m: WatchMessage): boolean {
    if (this.got.length >= this.room) return false;
    this.got.push(m);
    return true;
  }
  /** `rev: key=value, …` per batch, `progress rev`, `canceled …`. */
  lines(): string[] {
    return this.got.map((m) =>
      m.kind === 'batch'
        ? `${m.batch.revision}: ${m.batch.events.map((e) => (e.type === 'put' ? `${e.kv.key}=${text(e.kv.value)}` : `-${e.kv.key}`)).join(', ')}`
        : m.kind === 'progress'
          ? `progress ${m.revision}`
          : `canceled${m.compactRevision !== undefined ? ` at ${m.compactRevision}` : ''}`,
    );
  }
}

function setup() {
  const h = new Harness();
  const hub = new WatchHub(h.sm);
  h.sm.onEvents = (es) => hub.onEvents(es);
  return { h, hub };
}

describe('WatchHub', () => {
  it('a synced watcher gets each revision once, in order, its events together', () => {
    const { h, hub } = setup();
    const r = new Recorder();
    hub.add(ALL, undefined, r);
    h.put('a', '1');
    h.run({
      type: 'txn',
      compare: [],
      success: [
        { type: 'put', key: 'b', value: b('2') },
        { type: 'delete', key: 'a' },
      ],
      failure: [],
    });
    h.sm.apply([
      h.command({ type: 'put', key: 'c', value: b('3') }),
      h.command({ type: 'put', key: 'd', value: b('4') }),
    ]);
    expect(r.lines()).toEqual(['1: a=1', '2: b=2, -a', '3: c=3', '4: d=4']);
  });

  it('a watcher from a past revision catches up from the history in bounded steps, then follows live, with no gap and no repeat', () => {
    const { h, hub } = setup();
    for (let i = 1; i <= 10; i++) h.put(`k${i % 3}`, `v${i}`);
    const r = new Recorder();
    const id = hub.add({ ...ALL, start: 'k1', end: 'k2' }, 2, r);
    // A step of 3 reads revisions 2-4 but keeps back 4, which the page may have cut: k1 changed at 4.
    expect(hub.catchUp(3)).toBe(true);
    expect(r.lines()).toEqual([]);
    expect(hub.position(id as number)).toBe(4);
    expect(hub.catchUp(3)).toBe(true);
    expect(r.lines()).toEqual(['4: k1=v4']);
    h.put('k1', 'live'); // 11: not synced yet, so the history will bring it
    while (hub.catchUp(3));
    expect(hub.position(id as number)).toBe(12);
    h.put('k1', 'after'); // 12: synced now, delivered at once
    expect(r.lines()).toEqual(['4: k1=v4', '7: k1=v7', '10: k1=v10', '11: k1=live', '12: k1=after']);
  });

  it('a revision larger than a catch-up step is never split', () => {
    const { h, hub } = setup();
    for (let i = 0; i < 7; i++) h.put(`p/${i}`, 'x');
    h.run({ type: 'deletePrefix', prefix: 'p/' }); // revision 8: seven events
    h.put('q', 'y');
    const r = new Recorder();
    hub.add(ALL, 8, r);
    while (hub.catchUp(3));
    expect(r.lines()).toEqual(['8: -p/0, -p/1, -p/2, -p/3, -p/4, -p/5, -p/6', '9: q=y']);
  });

  it('a start below the compaction point is canceled with compact_revision; so is an unsynced watcher overtaken by compaction', () => {
    const { h, hub } = setup();
    for (let i = 1; i <= 6; i++) h.put('k', `v${i}`);
    h.run({ type: 'compact', revision: 4 });
    const early = new Recorder();
    expect(hub.add(ALL, 3, early)).toBeUndefined();
    expect(early.lines()).toEqual(['canceled at 4']);
    const behind = new Recorder();
    const id = hub.add(ALL, 4, behind);
    h.run({ type: 'compact', revision: 6 });
    hub.catchUp(10);
    expect(behind.lines()).toEqual(['canceled at 6']);
    expect(hub.position(id as number)).toBeUndefined();
  });

  it('filters and prev records are exact', () => {
    const { h, hub } = setup();
    const puts = new Recorder();
    const deletes = new Recorder();
    hub.add({ ...ALL, noDelete: true }, undefined, puts);
    hub.add({ ...ALL, noPut: true, prevKv: true }, undefined, deletes);
    h.put('a', '1');
    h.run({ type: 'delete', key: 'a' });
    expect(puts.lines()).toEqual(['1: a=1']);
    const del = deletes.got[0];
    expect(del?.kind === 'batch' && del.batch.events[0]?.prev?.value).toEqual(b('1'));
    expect(deletes.lines()).toEqual(['2: -a']);
  });

  it('a watcher whose sink is full is canceled and removed; it resumes from its last revision + 1 and loses nothing', () => {
    const { h, hub } = setup();
    const slow = new Recorder(2);
    const id = hub.add(ALL, undefined, slow);
    h.put('a', '1');
    h.put('a', '2');
    const seen = hub.position(id as number);
    h.put('a', '3'); // the sink is full: canceled (its cancel message finds no room either)
    expect(hub.size).toBe(0);
    expect(seen).toBe(3);
    const resumed = new Recorder();
    hub.add(ALL, seen, resumed);
    while (hub.catchUp(10));
    expect([...slow.lines(), ...resumed.lines()]).toEqual(['1: a=1', '2: a=2', '3: a=3']);
  });

  it('a watcher resuming past this replica (it lags the one it came from) gets nothing below its start', () => {
    // Found by the fault runner's watchers (npm run jepsen, seed 5): a watcher cut off a replica
    // at revision 195 resumed at 196 on one that had applied 193, and was sent 194 and 195 again.
    const { h, hub } = setup();
    h.put('a', '1');
    const r = new Recorder();
    const id = hub.add(ALL, 4, r);
    h.put('a', '2'); // 2
    h.put('a', '3'); // 3
    h.put('a', '4'); // 4
    h.sm.apply([
      h.command({ type: 'put', key: 'a', value: b('5') }),
      h.command({ type: 'put', key: 'a', value: b('6') }),
    ]);
    expect(r.lines()).toEqual(['4: a=4', '5: a=5', '6: a=6']);
    expect(hub.position(id as number)).toBe(7);
  });

  it('progress tells synced watchers the revision below which nothing is pending', () => {
    const { h, hub } = setup();
    const r = new Recorder();
    const id = hub.add({ ...ALL, start: 'x', end: 'y' }, undefined, r);
    h.put('a', '1');
    h.put('b', '2');
    hub.progressFor(id as number);
    expect(r.lines()).toEqual(['progress 2']);
  });

  it('a replica that installs a snapshot sends its watchers the revisions the snapshot skipped (jepsen, seed 5)', () => {
    // The leader's history moves on while this replica is cut off; it then catches up by snapshot.
    const leader = new Harness();
    leader.put('a', '1');
    const { h, hub } = setup();
    h.put('a', '1');
    h.sm.onRestored = () => hub.resync();
    const r = new Recorder();
    hub.add(ALL, 2, r);
    for (let i = 2; i <= 4; i++) leader.put('a', String(i));
    const conf = { voters: ['a'], learners: [] };
    h.sm.restore({ meta: { index: leader.index, term: 1, conf }, data: leader.sm.snapshot() });
    h.index = leader.index;
    while (hub.catchUp(100));
    h.put('b', '5');
    // Without the resync the watcher stayed synced and went from nothing straight to revision 5.
    expect(r.lines()).toEqual(['2: a=2', '3: a=3', '4: a=4', '5: b=5']);
  });
});
