import { describe, expect, it } from 'vitest';
import { BadRequestError, createClient, DumpReader, readDump } from '../../src/client/index.ts';
import { appFetch, ENDPOINT, newClient, type Sent } from './helpers.ts';

/** snapshot() and restore() against a real cluster: a group cloned by piping its dump straight into a restore. */

describe('client: snapshot and restore', () => {
  it("clones a group: the source group's dump streams into a restore of a new one, on the store's own route", async () => {
    const { api, client } = await newClient();
    const lease = await client.leases.grant(120);
    await client.put('svc/a', '10.0.0.1', { lease: lease.id });
    await client.put('svc/b', new Uint8Array([0, 1, 255]));
    await client.put('cfg/x', 'on');

    const snap = await client.snapshot();
    expect(snap.revision).toBeGreaterThanOrEqual(3);
    const r = await client.restore('clone-a', snap.body, { size: 3 });
    expect(r).toMatchObject({ name: 'clone-a', state: 'active', keys: 3, leases: 1, expiredKeys: 0 });
    expect(r.source).toMatchObject({ group: 'default', revision: snap.revision, keys: 3 });

    // A client of the clone dumps it, and restores that into another name: a restore goes to the store's route.
    const sent: Sent[] = [];
    const clone = createClient({ endpoint: ENDPOINT, group: 'clone-a', fetch: appFetch(api, sent, () => undefined) });
    const all = await clone.rangeAll({ start: 'a' });
    expect(all.kvs.map((k) => [k.key, k.text, k.lease])).toEqual([
      ['cfg/x', 'on', undefined],
      ['svc/a', '10.0.0.1', lease.id],
      ['svc/b', new TextDecoder().decode(new Uint8Array([0, 1, 255])), undefined],
    ]);
    const again = await clone.snapshot();
    const reader = new DumpReader();
    const lines: string[] = [];
    for await (const line of readDump(again.body, reader)) lines.push(line.kind);
    expect(lines).toEqual(['header', 'lease', 'kv', 'kv', 'kv', 'end']);
    expect(reader.header?.group).toBe('clone-a');
    const bytes = new TextEncoder().encode('{"format":"durable-raft-dump","version":1}\n');
    await expect(clone.restore('clone-b', bytes)).rejects.toBeInstanceOf(BadRequestError);
    expect(sent.map((s) => `${s.method} ${s.path}`).slice(-1)).toEqual(['POST /v1/groups/clone-b/restore']);
  });
});
