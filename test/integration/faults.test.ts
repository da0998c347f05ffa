import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import {
  command,
  crash,
  heal,
  leader,
  localValue,
  member,
  newCluster,
  partition,
  put,
  sleep,
  status,
  stub,
  waitFor,
} from './cluster-helpers.ts';
import { SseReader } from './sse.ts';

const enc = new TextEncoder();

describe('partitions through the fault layer', () => {
  it('an isolated leader is replaced, cannot commit, and rejoins as a follower', async () => {
    const names = await newCluster();
    const old = await leader(names);
    expect(await put(names, 'before', '1')).toBe('applied');
    const rest = names.filter((n) => n !== old);
    await partition([old], rest);
    // The old leader's write cannot reach a quorum: it must never be reported applied.
    const stuck = stub(old).propose(command({ type: 'put', key: 'lost?', value: enc.encode('x') }), 1500);
    const fresh = await leader(rest);
    expect(fresh).not.toBe(old);
    expect(await put(rest, 'after', '2')).toBe('applied');
    expect((await stuck).status).not.toBe('applied');
    await heal(names);
    // It follows the new term (it may have gone quiet since, forgetting who leads).
    const term = (await status(fresh)).term;
    await waitFor('old leader to follow', async () => {
      const s = await status(old);
      return s.role === 'follower' && s.term === term ? true : undefined;
    });
    const commit = (await status(fresh)).commit;
    await waitFor('old leader to catch up', async () => ((await status(old)).applied >= commit ? true : undefined));
    expect(await localValue(old, 'after')).toBe('2');
    expect(await localValue(old, 'before')).toBe('1');
  });

  it('a leader cut off from its quorum answers new writes and reads at once instead of holding them', async () => {
    const names = await newCluster();
    const old = await leader(names);
    expect(await put(names, 'before', '1')).toBe('applied');
    await partition(
      [old],
      names.filter((n) => n !== old),
    );
    // Past an election timeout less a heartbeat without answers (test ticks: 160 ms), before
    // CheckQuorum deposes it (200-400 ms): it refuses (noQuorum); once deposed, it says notLeader.
    // Either way at once: before, the write would have waited out its 3 s deadline.
    await sleep(180);
    const t0 = Date.now();
    const out = await stub(old).propose(command({ type: 'put', key: 'k', value: enc.encode('x') }), 3000);
    const read = await stub(old).get('before', 'linearizable', 3000);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(
      out.status === 'notLeader' || (out.status === 'refused' && out.code === 'noQuorum'),
      JSON.stringify(out),
    ).toBe(true);
    expect(read.status).toBe('notLeader');
    // The others elect a successor, which serves writes.
    const rest = names.filter((n) => n !== old);
    expect(await leader(rest)).not.toBe(old);
    expect(await put(rest, 'after', '2')).toBe('applied');
    await heal(names);
  });

  it('a partitioned minority follower does not disrupt the leader when it returns (PreVote)', async () => {
    const names = await newCluster();
    const l = await leader(names);
    const term = (await status(l)).term;
    const f = names.find((n) => n !== l) as string;
    await partition(
      [f],
      names.filter((n) => n !== f),
    );
    await sleep(1500); // many election timeouts for the isolated follower
    await heal(names);
    expect(await put(names, 'k', 'v')).toBe('applied');
    const s = await status(l);
    expect(s.role).toBe('leader');
    expect(s.term).toBe(term);
  });
});

describe('membership and leadership transfer while writes continue', () => {
  it('adds a learner, promotes it, transfers leadership to it and removes the old leader', async () => {
    const names = await newCluster();
    const cluster = names[0]?.slice(0, names[0].indexOf(':') + 1) as string;
    const newcomer = `${cluster}node-3`;
    await stub(newcomer).bootstrap(newcomer, ['node-0', 'node-1', 'node-2']);
    let writes = 0;
    let stop = false;
    const writer = (async () => {
      while (!stop) {
        const all = [...names, newcomer];
        const out = await put(all, `w${writes}`, `${writes}`, 3000).catch(() => 'error');
        if (out === 'applied') writes++;
        // Pace the writer: in workerd an unbroken chain of RPCs starves timers
        // (every setTimeout, the test's own timeout included).
        await sleep(out === 'applied' ? 10 : 50);
      }
    })();
    const l = await leader(names);
    try {
      const change = async (type: 'addLearner' | 'addVoter' | 'remove', node: string) => {
        const current = await leader([...names, newcomer]);
        const out = await stub(current).changeMembership({ type, node }, 5000);
        expect(out.status).toBe('applied');
      };
      await change('addLearner', 'node-3');
      const target = (await status(l)).commit;
      await waitFor('learner caught up', async () => ((await status(newcomer)).applied >= target ? true : undefined));
      expect((await status(newcomer)).conf.learners).toContain('node-3');
      await change('addVoter', 'node-3');
      await stub(await leader(names)).transferLeadership('node-3');
      await waitFor('node-3 to lead', async () => ((await status(newcomer)).role === 'leader' ? true : undefined));
      await change('remove', member(l));
      // Writes go on through the new leader.
      const after = writes;
      await waitFor('writes after the changes', async () => (writes >= after + 3 ? true : undefined));
    } finally {
      // The writer must stop whatever happens, or the test never ends.
      stop = true;
      await writer;
    }
    const s = await status(newcomer);
    expect(s.conf.voters).toEqual(['node-0', 'node-1', 'node-2', 'node-3'].filter((m) => m !== member(l)));
    expect(await localValue(newcomer, `w${writes - 1}`)).toBe(`${writes - 1}`);
  });
});

describe('quiescence: an idle cluster keeps no timer and no alarm', () => {
  /** A fresh cluster, written once and gone quiet (no node keeps an alarm); its leader. */
  async function quietCluster(): Promise<{ names: string[]; old: string }> {
    const names = await newCluster();
    const old = await leader(names);
    expect(await put(names, 'a', '1')).toBe('applied');
    await waitFor(
      'every node quiet',
      async () =>
        (await Promise.all(names.map(status))).every((s) => s.quiet && s.alarmAt === null) ? true : undefined,
      5000,
    );
    return { names, old };
  }

  it('goes quiet after the idle period, and the next write wakes it', async () => {
    const { names } = await quietCluster();
    for (const n of names) {
      const alarm = await runInDurableObject(stub(n), (_i, state) => state.storage.getAlarm());
      expect(alarm).toBeNull();
    }
    // Stays quiet: nothing happens by itself.
    await sleep(500);
    for (const n of names) expect((await status(n)).quiet).toBe(true);
    expect(await put(names, 'b', '2')).toBe('applied');
    expect(await localValue(await leader(names), 'b')).toBe('2');
  });

  it('a quiet cluster whose leader lost its memory elects a leader once asked, and serves writes', async () => {
    const { names, old } = await quietCluster();
    // No alarm anywhere: only a request can start anything. The crashed leader, asked again, starts
    // awake; its followers forgot their leader when it went quiet, so its campaign wins them.
    const term = (await status(old)).term;
    await crash(old);
    expect(await put(names, 'b', '2')).toBe('applied');
    // Elected anew (the restarted node may win again, in a later term).
    expect((await status(await leader(names))).term).toBeGreaterThan(term);
    for (const n of names)
      await waitFor(`${n} to apply b`, async () => ((await localValue(n, 'b')) === '2' ? true : undefined));
  });

  it('a quiet cluster whose leader is cut off elects another from the followers a request wakes', async () => {
    const { names, old } = await quietCluster();
    const rest = names.filter((n) => n !== old);
    await partition([old], rest);
    // A follower asked to write names the leader it followed before the quiet, and wakes: it
    // campaigns once that leader stays silent for an election timeout, and wakes the other.
    const asked = await stub(rest[0] as string).propose(
      command({ type: 'put', key: 'b', value: enc.encode('2') }),
      1000,
    );
    expect(asked.status).toBe('notLeader');
    const fresh = await leader(rest);
    expect(fresh).not.toBe(old);
    expect(await put(rest, 'b', '2')).toBe('applied');
    await heal(names);
    await waitFor('the old leader to catch up', async () => ((await localValue(old, 'b')) === '2' ? true : undefined));
  });
});

describe('issue 16: a member removed while cut off', () => {
  it('learns it from the members it asks for votes: it stops campaigning, keeps no alarm and closes its watchers; added back, it follows again', async () => {
    const names = await newCluster();
    const l = await leader(names);
    const gone = names.find((n) => n !== l) as string;
    const stay = names.find((n) => n !== l && n !== gone) as string;
    const out = await stub(gone).watchEvents({
      start: 'r/',
      end: 'r0',
      startRevision: undefined,
      prevKv: false,
      noPut: false,
      noDelete: false,
      progressNotify: false,
    });
    if (out.status !== 'ok') throw new Error('watch refused');
    const w = new SseReader(out.stream);
    expect(await put(names, 'r/1', 'a')).toBe('applied');
    await partition([gone], [l, stay]);
    const removed = await stub(l).changeMembership({ type: 'remove', node: member(gone) }, 5000);
    expect(removed.status).toBe('applied');
    const term = (await status(l)).term;
    await heal(names);
    // It never heard of the change, so it campaigns on its old configuration: the members
    // drop its requests and answer that it is not in their (newer) configuration.
    const told = await waitFor('the removed node to learn it', async () => {
      const s = await status(gone);
      return s.removed ? s : undefined;
    });
    expect(told.conf.voters).toContain(member(gone));
    let m = await w.next(5000);
    while (m && m.event !== 'canceled') m = await w.next(5000);
    expect(m?.event).toBe('canceled');
    // From then on it costs nothing: no alarm, no campaign, and the members' term never moved.
    await sleep(1000);
    const quiet = await status(gone);
    expect(quiet).toMatchObject({ removed: true, quiet: true, alarmAt: null, term: told.term });
    expect((await status(l)).term).toBe(term);
    expect((await status(stay)).term).toBe(term);
    // Added back (as a learner), the leader's first message tells it it is a member again.
    const back = await stub(await leader([l, stay])).changeMembership({ type: 'addLearner', node: member(gone) }, 5000);
    expect(back.status).toBe('applied');
    expect(await put([l, stay], 'r/2', 'b')).toBe('applied');
    await waitFor('the node to follow again', async () => {
      const s = await status(gone);
      return !s.removed && s.conf.learners.includes(member(gone)) && (await localValue(gone, 'r/2')) === 'b'
        ? true
        : undefined;
    });
  });
});
