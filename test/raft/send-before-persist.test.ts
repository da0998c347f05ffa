import { describe, expect, it } from 'vitest';
import { Driver } from '../../src/driver/index.ts';
import type { Message } from '../../src/raft/index.ts';
import { MemoryLogStore } from '../../src/storage/index.ts';
import { ListMachine, seededRng } from './harness.ts';
import { appMsg, appResp, bytes, ofType } from './raw.ts';

const ABC = ['a', 'b', 'c'];

/**
 * A driver whose every send and apply is checked against what its store
 * holds: nothing may promise (a commit index, an ack) or apply an entry
 * that is not durable here. `events` records the order of persists, sends
 * of entries and applies.
 */
function node(id: string, voters = ABC) {
  const store = new MemoryLogStore();
  const sm = new ListMachine();
  const sent: Message[] = [];
  const events: string[] = [];
  const persist = store.persist.bind(store);
  store.persist = (u) => {
    persist(u);
    if (u.entries.length > 0) events.push(`persist ${u.entries.map((e) => e.index).join(',')}`);
  };
  const apply = sm.apply.bind(sm);
  sm.apply = (items) => {
    for (const it of items) expect(it.index).toBeLessThanOrEqual(store.lastIndex());
    events.push(`apply ${items.map((it) => it.index).join(',')}`);
    return apply(items);
  };
  const d = new Driver<string>({
    raft: { id, rng: seededRng(1), preVote: false },
    log: store,
    sm,
    transport: {
      send: (ms) => {
        for (const m of ms) {
          if (m.type === 'app' || m.type === 'heartbeat') expect(m.commit).toBeLessThanOrEqual(store.lastIndex());
          if (m.type === 'appResp' && !m.reject) expect(m.index).toBeLessThanOrEqual(store.lastIndex());
          if (m.type === 'app' && m.entries.length > 0)
            events.push(`send ${m.to} ${m.entries.map((e) => e.index).join(',')}`);
        }
        sent.push(...ms);
      },
    },
    bootstrap: { voters, learners: [] },
    deferProcessing: true,
    sendBeforePersist: true,
  });
  return { d, store, sm, sent, events };
}

/** a leads term 1 of {a,b,c}, its no-op (index 1) committed everywhere it matters. */
function leaderA() {
  const a = node('a');
  a.d.campaign();
  for (const m of ofType(a.sent, 'vote'))
    a.d.receive({ type: 'voteResp', from: m.to, to: 'a', term: 1, reject: false, preVote: false });
  for (const m of ofType(a.sent, 'app')) a.d.receive(appResp(m.to, 'a', 1, 1));
  expect(a.d.status()).toMatchObject({ role: 'leader', commit: 1, applied: 1 });
  a.sent.length = 0;
  a.events.length = 0;
  return a;
}

describe('a leader sends new entries before persisting them (thesis §10.2.1)', () => {
  it('its appends leave first; the first ack persists and applies them in one step', () => {
    const a = leaderA();
    let outcome = '';
    a.d.propose(bytes('x'), (o) => {
      outcome = o.status;
    });
    a.d.process();
    expect(a.events).toEqual(['send b 2', 'send c 2']);
    expect(a.store.lastIndex()).toBe(1);
    expect(a.d.holdsUnpersisted()).toBe(true);
    expect(a.d.writesStorage()).toBe(true);
    a.d.receive(appResp('b', 'a', 1, 2));
    expect(a.events).toEqual(['send b 2', 'send c 2', 'persist 2', 'apply 2']);
    expect(outcome).toBe('applied');
    expect(a.d.holdsUnpersisted()).toBe(false);
  });

  it('a commit the ack makes in memory is acted on only after the entries are durable', () => {
    const a = leaderA();
    a.d.propose(bytes('x'), () => {});
    a.d.process();
    // Stepped without a Ready: the leader counts its own unpersisted copy, so index 2 commits in memory...
    a.d.node.step(appResp('b', 'a', 1, 2));
    expect(a.d.status().commit).toBe(2);
    expect(a.store.lastIndex()).toBe(1);
    expect(a.sm.applied()).toBe(1);
    // ... and the next process() persists before it applies or tells anyone (checked in node()).
    a.d.process();
    expect(a.events.slice(2)).toEqual(['persist 2', 'apply 2']);
    expect(a.sm.applied()).toBe(2);
  });

  it('entries proposed while some are unpersisted are persisted after them, in the same step', () => {
    const a = leaderA();
    a.d.propose(bytes('x'), () => {});
    a.d.process();
    a.d.propose(bytes('y'), () => {});
    a.d.process();
    // The second process() persists x first; y, in a Ready of that same (storage-writing) step, is persisted there too.
    expect(a.events).toEqual(['send b 2', 'send c 2', 'persist 2', 'persist 3', 'send b 3', 'send c 3']);
    a.d.receive(appResp('b', 'a', 1, 3));
    expect(a.events.slice(6)).toEqual(['apply 2,3']);
  });

  it('a leader that crashes before persisting loses the entries, and nobody was told they committed', () => {
    const a = leaderA();
    let told = false;
    a.d.propose(bytes('x'), () => {
      told = true;
    });
    a.d.process();
    expect(ofType(a.sent, 'app').map((m) => m.entries.length)).toEqual([1, 1]);
    // The crash: memory gone, storage kept. A driver restarted from the store has no index 2.
    const restarted = new Driver<string>({
      raft: { id: 'a', rng: seededRng(2), preVote: false },
      log: a.store,
      sm: a.sm,
      transport: { send: () => {} },
      bootstrap: { voters: ABC, learners: [] },
    });
    expect(restarted.status()).toMatchObject({ lastIndex: 1, commit: 1, applied: 1 });
    expect(told).toBe(false);
  });

  it('a newly elected leader persists its no-op before sending it (its role changed in that Ready)', () => {
    const a = node('a');
    a.d.campaign();
    for (const m of ofType(a.sent, 'vote'))
      a.d.receive({ type: 'voteResp', from: m.to, to: 'a', term: 1, reject: false, preVote: false });
    expect(a.events.slice(0, 3)).toEqual(['persist 1', 'send b 1', 'send c 1']);
  });

  it('a single voter commits its entry at once, so it persists before applying', () => {
    const a = node('a', ['a']);
    a.d.campaign();
    a.events.length = 0;
    a.d.propose(bytes('x'), () => {});
    a.d.process();
    expect(a.events).toEqual(['persist 2', 'apply 2']);
    expect(a.d.holdsUnpersisted()).toBe(false);
  });

  it('a follower persists before it acknowledges', () => {
    const b = node('b');
    b.d.receive({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 0, ctx: '' });
    b.d.receive(appMsg('a', 'b', 1, 0, 0, [{ index: 1, term: 1, type: 'normal', data: bytes('x') }], 0));
    expect(b.store.lastIndex()).toBe(1);
    expect(b.d.holdsUnpersisted()).toBe(false);
    expect(ofType(b.sent, 'appResp').at(-1)).toMatchObject({ index: 1, reject: false });
  });

  it('a leader that steps down with entries unpersisted persists them, then takes the new leader’s log', () => {
    const a = leaderA();
    a.d.propose(bytes('x'), () => {});
    a.d.process();
    // b leads term 2 and never had index 2: its append replaces a's.
    a.d.node.step(appMsg('b', 'a', 2, 1, 1, [{ index: 2, term: 2, type: 'normal', data: bytes('y') }], 2));
    a.d.process();
    expect(a.d.status()).toMatchObject({ role: 'follower', term: 2, commit: 2, applied: 2 });
    expect(a.store.term(2)).toBe(2);
    expect(a.sm.log).toEqual(['y']);
  });
});
