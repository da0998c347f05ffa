import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { RaftNode } from '../../src/node/raft-node.ts';

/** The wiring works: the Worker answers, a RaftNode answers, and its SQLite storage outlives the instance. */

interface Status {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly commit: number;
}

function node(name: string): DurableObjectStub<RaftNode> {
  return env.RAFT_NODE.getByName(name);
}

async function status(name: string): Promise<Status> {
  const res = await node(name).fetch('https://node/internal/status', { headers: { 'x-raft-node': name } });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

/** A single-voter cluster of its own, so the test shares no state and needs no peers. */
async function soloNode(): Promise<string> {
  const name = `smoke-${crypto.randomUUID().slice(0, 8)}:node-0`;
  const r = await node(name).bootstrap(name, ['node-0']);
  expect(r).toEqual({ ok: true });
  return name;
}

async function waitForLeader(name: string, timeoutMs = 5_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(name);
    // A lone voter elects itself and commits its term's no-op.
    if (s.role === 'leader' && s.commit > 0) return s;
    if (Date.now() > deadline) throw new Error(`no leader: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const MARK = Symbol('smoke: this instance');

describe('smoke: the Worker', () => {
  it('GET /healthz answers 200 { ok: true }', async () => {
    const res = await exports.default.fetch('https://example.com/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('an unknown route answers a JSON 404', async () => {
    const res = await exports.default.fetch('https://example.com/no/such/route');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_found');
    expect(typeof body.error.message).toBe('string');
  });

  it('never routes to the internal node routes', async () => {
    for (const path of ['/internal/status', '/internal/raft', '/internal/faults']) {
      const res = await exports.default.fetch(`https://example.com${path}`);
      expect(res.status).toBe(404);
      await res.body?.cancel();
    }
  });
});

describe('smoke: a RaftNode Durable Object', () => {
  it('answers GET /internal/status with its id and role', async () => {
    const name = await soloNode();
    const s = await status(name);
    expect(s.id).toBe('node-0');
    expect(['follower', 'pre-candidate', 'candidate', 'leader']).toContain(s.role);
    expect(typeof s.term).toBe('number');
  });

  it('keeps its SQLite state across an eviction and a ctx.abort()', async () => {
    const name = await soloNode();
    const before = await waitForLeader(name);
    const stub = node(name);
    const identity = () =>
      runInDurableObject(
        stub,
        (_instance, state) => state.storage.sql.exec('SELECT name FROM node_identity').one().name,
      );
    expect(await identity()).toBe(name);

    // A graceful eviction: memory goes, storage stays.
    await runInDurableObject(stub, (instance) => {
      (instance as unknown as Record<symbol, boolean>)[MARK] = true;
    });
    await evictDurableObject(stub);
    expect(await runInDurableObject(stub, (instance) => MARK in (instance as object))).toBe(false);
    const afterEvict = await status(name);
    expect(afterEvict.term).toBeGreaterThanOrEqual(before.term);
    expect(afterEvict.commit).toBeGreaterThanOrEqual(before.commit);

    // A crash: ctx.abort() throws away the instance mid-flight.
    await runInDurableObject(stub, (instance, state) => {
      (instance as unknown as Record<symbol, boolean>)[MARK] = true;
      state.abort('smoke test crash');
    }).catch(() => {});
    // A stub that saw its object abort stays broken; callers take a new one (as a Worker's next request would).
    const fresh = node(name);
    expect(await runInDurableObject(fresh, (instance) => MARK in (instance as object))).toBe(false);
    expect(
      await runInDurableObject(
        fresh,
        (_instance, state) => state.storage.sql.exec('SELECT name FROM node_identity').one().name,
      ),
    ).toBe(name);
    const afterAbort = await waitForLeader(name);
    expect(afterAbort.term).toBeGreaterThanOrEqual(before.term);
    expect(afterAbort.commit).toBeGreaterThanOrEqual(before.commit);
  });
});
