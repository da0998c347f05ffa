import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { encodeCommand, type KvCommand } from '../../src/kv/index.ts';
import type { RaftNode } from '../../src/node/raft-node.ts';

/** Helpers for driving a real cluster of RaftNode objects inside workerd. */

export const MEMBERS = ['node-0', 'node-1', 'node-2'];
let clusters = 0;

/** A fresh cluster (`<cluster>:<member>` names, so tests share no state), bootstrapped and awake. */
export async function newCluster(members = MEMBERS): Promise<string[]> {
  clusters++;
  const prefix = `t${clusters}-${crypto.randomUUID().slice(0, 8)}:`;
  const names = members.map((m) => prefix + m);
  for (const n of names) {
    const r = await stub(n).bootstrap(n, members);
    if (!r.ok) throw new Error(`bootstrap ${n}: ${r.error}`);
    await status(n); // start it: it arms its election alarm
  }
  return names;
}

export function stub(name: string): DurableObjectStub<RaftNode> {
  const ns = env.RAFT_NODE as DurableObjectNamespace<RaftNode>;
  return ns.get(ns.idFromName(name));
}

export function member(name: string): string {
  return name.slice(name.lastIndexOf(':') + 1);
}

export type NodeStatus = Awaited<ReturnType<RaftNode['status']>>;

export async function status(name: string): Promise<NodeStatus> {
  const res = await stub(name).fetch('https://node/internal/status', { headers: { 'x-raft-node': name } });
  return (await res.json()) as NodeStatus;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The name of the node that leads the highest term among `names` (reachable ones). */
export async function leader(names: string[], timeoutMs = 10_000): Promise<string> {
  return waitFor(
    'a leader',
    async () => {
      let best: { name: string; term: number } | undefined;
      for (const n of names) {
        const s = await status(n);
        if (s.role === 'leader' && (!best || s.term > best.term)) best = { name: n, term: s.term };
      }
      return best?.name;
    },
    timeoutMs,
  );
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function command(cmd: KvCommand): Uint8Array {
  return encodeCommand({ cmd });
}

/** Puts through `names`' leader, following hints; returns the outcome status. */
export async function put(names: string[], key: string, value: string, timeoutMs = 3000): Promise<string> {
  const cluster = names[0]?.slice(0, names[0].lastIndexOf(':') + 1) ?? '';
  let target = await leader(names);
  for (let i = 0; i < 5; i++) {
    const out = await stub(target).propose(command({ type: 'put', key, value: enc.encode(value) }), timeoutMs);
    if (out.status !== 'notLeader') return out.status;
    target = out.leader ? cluster + out.leader : await leader(names);
  }
  return 'notLeader';
}

/** The value of `key` on one node, read locally (serializable). */
export async function localValue(name: string, key: string): Promise<string | undefined> {
  const r = await stub(name).get(key, 'serializable', 1000);
  if (r.status !== 'ok') throw new Error(`read on ${name}: ${r.status}`);
  return r.value ? dec.decode(r.value.value) : undefined;
}

/** Crash: drop the object's memory as a platform eviction or failure would; storage stays. */
export async function crash(name: string): Promise<void> {
  await status(name); // make sure it is running
  await runInDurableObject(stub(name), (_instance, state) => {
    state.abort('test crash');
  }).catch(() => {});
}

/** Cuts every link between the two groups (both directions) via each node's fault layer. */
export async function partition(a: string[], b: string[]): Promise<void> {
  const blocked = (self: string) => {
    const other = a.includes(self) ? b : a.includes(self) ? [] : a;
    const mine = member(self);
    return other.flatMap((o) => [`${mine}>${member(o)}`, `${member(o)}>${mine}`]);
  };
  for (const n of [...a, ...b]) await setFaults(n, { blocked: blocked(n) });
}

export async function heal(names: string[]): Promise<void> {
  for (const n of names) await setFaults(n, { blocked: [] });
}

export async function setFaults(name: string, rules: Record<string, unknown>): Promise<void> {
  const res = await stub(name).fetch('https://node/internal/faults', {
    method: 'PUT',
    headers: { 'x-raft-node': name, 'content-type': 'application/json' },
    body: JSON.stringify(rules),
  });
  if (!res.ok) throw new Error(`set faults on ${name}: ${res.status} ${await res.text()}`);
}

/** Waits until every node has applied at least `index`. */
export async function allApplied(names: string[], index: number, timeoutMs = 10_000): Promise<void> {
  try {
    await waitFor(
      `all nodes applied ${index}`,
      async () => {
        for (const n of names) if ((await status(n)).applied < index) return undefined;
        return true;
      },
      timeoutMs,
    );
  } catch (e) {
    for (const n of names) console.log(JSON.stringify(await status(n)));
    throw e;
  }
}
