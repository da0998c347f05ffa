/**
 * The `etcd3` npm package (the most used Node gRPC client of etcd) through
 * the bridge: KV, a watch, a lease, a lock. It is loaded with createRequire
 * and seen through the few calls used here: its typings pull in Node's.
 */
import { proc, sleep } from '../jepsen/node-api.ts';

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

interface KvBytes {
  readonly key: { toString(): string };
  readonly value: { toString(): string };
}
interface Watcher {
  on(event: 'put' | 'delete', fn: (kv: KvBytes) => void): void;
  cancel(): Promise<void>;
}
interface Lease {
  grant(): Promise<string>;
  put(key: string): { value(v: string): Promise<unknown> };
  revoke(): Promise<void>;
}
interface Lock {
  ttl(seconds: number): Lock;
  acquire(): Promise<Lock>;
  release(): Promise<void>;
}
interface Etcd3 {
  put(key: string): { value(v: string): Promise<unknown> };
  get(key: string): { string(): Promise<string | null> };
  getAll(): { prefix(p: string): { strings(): Promise<Record<string, string>> } };
  delete(): { prefix(p: string): Promise<{ deleted: string }> };
  watch(): { prefix(p: string): { create(): Promise<Watcher> } };
  lease(ttl: number): Lease;
  lock(name: string): Lock;
  close(): void;
}

const { createRequire } = proc.getBuiltinModule('node:module') as {
  createRequire(from: string): (id: string) => unknown;
};
const { Etcd3 } = createRequire(import.meta.url)('etcd3') as { Etcd3: new (o: { hosts: string }) => Etcd3 };

const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: nothing after ${ms} ms`)))]);

/** One check per feature; an exception fails that check only. */
export async function etcd3Checks(endpoint: string): Promise<Check[]> {
  const client = new Etcd3({ hosts: endpoint });
  const out: Check[] = [];
  const check = async (name: string, body: () => Promise<string | undefined>): Promise<void> => {
    try {
      const wrong = await within(body(), 10_000, name);
      out.push({ name: `etcd3: ${name}`, ok: wrong === undefined, detail: wrong ?? '' });
    } catch (e) {
      out.push({ name: `etcd3: ${name}`, ok: false, detail: e instanceof Error ? e.message : String(e) });
    }
  };
  try {
    await check('put, get, get by prefix, delete by prefix', async () => {
      await client.put('e3/a').value('1');
      await client.put('e3/b').value('2');
      const one = await client.get('e3/a').string();
      const all = await client.getAll().prefix('e3/').strings();
      const del = await client.delete().prefix('e3/');
      const after = await client.getAll().prefix('e3/').strings();
      const ok = one === '1' && all['e3/a'] === '1' && all['e3/b'] === '2' && del.deleted === '2';
      return ok && Object.keys(after).length === 0 ? undefined : JSON.stringify({ one, all, del, after });
    });
    await check('a watch sees a put and a delete', async () => {
      const w = await client.watch().prefix('e3w/').create();
      const seen: string[] = [];
      w.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
      w.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`));
      await client.put('e3w/x').value('y');
      await client.delete().prefix('e3w/');
      for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(50);
      await w.cancel();
      return seen.join(',') === 'put e3w/x=y,delete e3w/x' ? undefined : JSON.stringify(seen);
    });
    await check('a lease: its key goes with its revoke', async () => {
      const lease = client.lease(20);
      const id = await lease.grant();
      await lease.put('e3l/k').value('v');
      const before = await client.get('e3l/k').string();
      await lease.revoke();
      const after = await client.get('e3l/k').string();
      return before === 'v' && after === null && id !== '' ? undefined : JSON.stringify({ id, before, after });
    });
    await check('a lock: held once at a time', async () => {
      const first = await client.lock('e3-lock').ttl(20).acquire();
      const second = await client
        .lock('e3-lock')
        .ttl(20)
        .acquire()
        .then(
          (l) => l.release().then(() => 'acquired'),
          (e: unknown) => (e instanceof Error ? e.constructor.name : 'error'),
        );
      await first.release();
      const third = await client.lock('e3-lock').ttl(20).acquire();
      await third.release();
      return second === 'EtcdLockFailedError' ? undefined : `a second holder got: ${second}`;
    });
  } finally {
    client.close();
  }
  return out;
}
