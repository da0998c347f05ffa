import { describe, expect, it } from 'vitest';
import { json, newApi, sleep, type TestApi } from './api-helpers.ts';
import { lines } from './json-lines.ts';

const b64 = (s: string) => btoa(s);
const post = (api: TestApi, path: string, body: unknown) =>
  api.fetch(path, { method: 'POST', body: JSON.stringify(body) });

async function grant(api: TestApi, id: string): Promise<void> {
  const res = await post(api, '/v3/lease/grant', { ID: id, TTL: '60' });
  expect(res.status).toBe(200);
}

describe('v3 gateway: lock and election', () => {
  it('lock blocks until the holder unlocks; keys are {name}/{lease in hex}, as etcd makes them', async () => {
    const api = await newApi();
    await grant(api, '100');
    await grant(api, '200');
    const first = await json<{ key: string; header: { raft_term?: string } }>(
      await post(api, '/v3/lock/lock', { name: b64('job'), lease: '100' }),
    );
    expect(atob(first.key)).toBe('job/64');
    // The leader's term, as in every other header (not 0).
    const st = await json<{ header: { raft_term: string } }>(await post(api, '/v3/maintenance/status', {}));
    expect(first.header.raft_term).toBe(st.header.raft_term);
    let second: { key: string } | undefined;
    const waiting = post(api, '/v3/lock/lock', { name: b64('job'), lease: '200' }).then(async (r) => {
      second = await json(r);
    });
    await sleep(300);
    expect(second).toBeUndefined();
    expect((await post(api, '/v3/lock/unlock', { key: first.key })).status).toBe(200);
    await waiting;
    expect(atob((second as { key: string }).key)).toBe('job/c8');
    const missing = await post(api, '/v3/lock/lock', { name: b64('job'), lease: '999' });
    // As etcd's lock server: the recipe's error passed on as Unknown.
    expect(missing.status).toBe(500);
    expect(await json(missing)).toMatchObject({ code: 2, message: 'etcdserver: requested lease not found' });
  });

  it('campaign, leader, proclaim and resign: one leader at a time', async () => {
    const api = await newApi();
    await grant(api, '1');
    expect((await post(api, '/v3/election/leader', { name: b64('e') })).status).toBe(500);
    const won = await json<{ leader: { name: string; key: string; rev: string; lease: string } }>(
      await post(api, '/v3/election/campaign', { name: b64('e'), lease: '1', value: b64('a') }),
    );
    expect(won.leader).toMatchObject({ name: b64('e'), key: b64('e/1'), lease: '1' });
    const leader = await json<{ kv: { key: string; value: string } }>(
      await post(api, '/v3/election/leader', { name: b64('e') }),
    );
    expect(leader.kv).toMatchObject({ key: b64('e/1'), value: b64('a') });
    expect((await post(api, '/v3/election/proclaim', { leader: won.leader, value: b64('b') })).status).toBe(200);
    const after = await json<{ kv: { value: string } }>(await post(api, '/v3/election/leader', { name: b64('e') }));
    expect(after.kv.value).toBe(b64('b'));
    const stranger = { ...won.leader, rev: String(Number(won.leader.rev) + 5) };
    const refused = await post(api, '/v3/election/proclaim', { leader: stranger, value: b64('c') });
    expect(refused.status).toBe(500);
    expect(await json(refused)).toMatchObject({ code: 2, message: 'election: not leader' });
    expect((await post(api, '/v3/election/resign', { leader: won.leader })).status).toBe(200);
    const gone = await post(api, '/v3/election/leader', { name: b64('e') });
    expect(await json(gone)).toEqual({ error: 'election: no leader', message: 'election: no leader', code: 2 });
  });

  it("campaigning again with another value proclaims it, answering the first txn's header, as etcd's Campaign", async () => {
    const api = await newApi();
    await grant(api, '7');
    type Won = { header: { revision: string }; leader: { rev: string } };
    const won = await json<Won>(
      await post(api, '/v3/election/campaign', { name: b64('e'), lease: '7', value: b64('a') }),
    );
    const again = await json<Won>(
      await post(api, '/v3/election/campaign', { name: b64('e'), lease: '7', value: b64('b') }),
    );
    // The same place (create revision), the header before the proclamation, and the value taken.
    expect(again.leader.rev).toBe(won.leader.rev);
    expect(again.header.revision).toBe(won.header.revision);
    const now = await json<{ header: { revision: string }; kv: { value: string } }>(
      await post(api, '/v3/election/leader', { name: b64('e') }),
    );
    expect(now.kv.value).toBe(b64('b'));
    expect(Number(now.header.revision)).toBe(Number(won.header.revision) + 1);
    // A leader key at rev 1 (an empty store's revision) names no key etcd could have: not leader, nothing put.
    const made = { name: b64('e'), key: b64('e/7'), rev: '1', lease: '7' };
    expect((await post(api, '/v3/election/proclaim', { leader: made, value: b64('c') })).status).toBe(500);
    const missing = { name: b64('e'), key: b64('e/8'), rev: '1', lease: '7' };
    expect((await post(api, '/v3/election/proclaim', { leader: missing, value: b64('c') })).status).toBe(500);
    const range = await json<{ count?: string }>(await post(api, '/v3/kv/range', { key: b64('e/8') }));
    expect(range.count).toBeUndefined();
  });

  it('observe streams the leader, each proclamation, and the next leader, one line each', async () => {
    const api = await newApi();
    await grant(api, '7');
    await grant(api, '8');
    const a = await json<{ leader: Record<string, string> }>(
      await post(api, '/v3/election/campaign', { name: b64('o'), lease: '7', value: b64('a1') }),
    );
    const res = await post(api, '/v3/election/observe', { name: b64('o') });
    expect(res.status).toBe(200);
    const reading = lines(res, 1500);
    await sleep(300);
    await post(api, '/v3/election/proclaim', { leader: a.leader, value: b64('a2') });
    const b = post(api, '/v3/election/campaign', { name: b64('o'), lease: '8', value: b64('b1') });
    await sleep(200);
    await post(api, '/v3/election/resign', { leader: a.leader });
    await b;
    const seen = (await reading).map((r) => atob((r.kv as { value: string }).value));
    expect(seen).toEqual(['a1', 'a2', 'b1']);
  });
});
