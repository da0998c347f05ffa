import { describe, expect, it } from 'vitest';
import {
  type HistoryOp,
  HistoryRecorder,
  historyFromJsonLines,
  historyToJsonLines,
  type KvOp,
  type KvOutput,
} from './history.ts';
import { checkLinearizable, partitionByKey } from './linearizability.ts';

// ---------------------------------------------------------------------------------------------
// Builders: every op is [invoke, complete] on client c, `ok` unless wrapped in unknown()/failed().

type Draft = Omit<HistoryOp, 'id'>;

const mk = (client: number, op: KvOp, invoke: number, complete: number, output: KvOutput = {}): Draft => ({
  client,
  op,
  invoke,
  complete,
  status: 'ok',
  output,
});
const put = (c: number, key: string, value: string, t0: number, t1: number) =>
  mk(c, { kind: 'put', key, value }, t0, t1);
const get = (c: number, key: string, value: string | null, t0: number, t1: number) =>
  mk(c, { kind: 'get', key }, t0, t1, { value });
const del = (c: number, key: string, t0: number, t1: number) => mk(c, { kind: 'delete', key }, t0, t1);
const cas = (c: number, key: string, exp: string | null, value: string, ok: boolean, t0: number, t1: number) =>
  mk(c, { kind: 'cas', key, expect: exp, value }, t0, t1, { ok });
/** Never returned (or timed out at `complete`): may or may not have taken effect. */
const unknown = (d: Draft, complete?: number): Draft => ({ ...d, status: 'unknown', complete, output: undefined });
const failed = (d: Draft): Draft => ({ ...d, status: 'fail', output: undefined });
const hist = (...ds: Draft[]): HistoryOp[] => ds.map((d, id) => ({ id, ...d }));

const ok = (h: HistoryOp[]) => {
  const r = checkLinearizable(h);
  expect(r.message ?? '').toBe('');
  expect(r.ok).toBe(true);
  expect(r.inconclusive).toBeUndefined();
  return r;
};
const bad = (h: HistoryOp[]) => {
  const r = checkLinearizable(h);
  expect(r.ok).toBe(false);
  expect(r.message).toBeTruthy();
  return r;
};

// ---------------------------------------------------------------------------------------------

describe('checkLinearizable: basic cases', () => {
  it('accepts the empty history and sequential histories', () => {
    ok([]);
    ok(
      hist(
        get(1, 'k', null, 0, 1),
        put(1, 'k', 'a', 2, 3),
        get(2, 'k', 'a', 4, 5),
        cas(1, 'k', 'a', 'b', true, 6, 7),
        cas(2, 'k', 'a', 'c', false, 8, 9),
        get(1, 'k', 'b', 10, 11),
        del(2, 'k', 12, 13),
        get(1, 'k', null, 14, 15),
        cas(1, 'k', null, 'd', true, 16, 17),
        cas(2, 'k', null, 'e', false, 18, 19),
        get(2, 'k', 'd', 20, 21),
      ),
    );
  });

  it('catches a stale read after a completed write', () => {
    const r = bad(hist(put(1, 'k', 'a', 0, 1), put(2, 'k', 'b', 2, 3), get(3, 'k', 'a', 4, 5)));
    expect(r.key).toBe('k');
    expect(r.message).toContain('#2');
    bad(hist(put(1, 'k', 'a', 0, 1), get(2, 'k', null, 2, 3)));
  });

  it('catches a read of a value never written', () => {
    bad(hist(put(1, 'k', 'a', 0, 10), get(2, 'k', 'zzz', 1, 5)));
    bad(hist(get(1, 'k', 'a', 0, 1)));
  });

  it('catches two readers that observe concurrent writes in contradictory orders', () => {
    const writes = [put(1, 'k', 'a', 0, 100), put(2, 'k', 'b', 0, 100)];
    bad(
      hist(
        ...writes,
        get(3, 'k', 'a', 10, 20),
        get(3, 'k', 'b', 30, 40),
        get(4, 'k', 'b', 10, 20),
        get(4, 'k', 'a', 30, 40),
      ),
    );
    // The same reads in a consistent order are fine.
    ok(
      hist(
        ...writes,
        get(3, 'k', 'a', 10, 20),
        get(3, 'k', 'b', 30, 40),
        get(4, 'k', 'a', 10, 20),
        get(4, 'k', 'b', 30, 40),
      ),
    );
  });

  it('catches a lost cas', () => {
    bad(hist(put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', true, 2, 3), get(1, 'k', 'a', 4, 5)));
    // A cas that reports failure although the value was what it expected.
    bad(hist(put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', false, 2, 3)));
    // A cas that succeeded against a value that was not there.
    bad(hist(put(1, 'k', 'a', 0, 1), cas(2, 'k', 'x', 'b', true, 2, 3)));
  });

  it('catches two successful cas with the same expect when only one could succeed', () => {
    bad(hist(put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', true, 2, 5), cas(3, 'k', 'a', 'c', true, 2, 5)));
    // ... unless a concurrent write put the expected value back in between.
    ok(
      hist(
        put(1, 'k', 'a', 0, 1),
        cas(2, 'k', 'a', 'b', true, 2, 5),
        cas(3, 'k', 'a', 'c', true, 2, 5),
        put(1, 'k', 'a', 2, 5),
      ),
    );
    // One winner and one loser is the normal outcome.
    ok(hist(put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', true, 2, 5), cas(3, 'k', 'a', 'c', false, 2, 5)));
  });

  it('accepts an unknown write whether or not it is observed', () => {
    const before = [put(1, 'k', 'a', 0, 1), unknown(put(2, 'k', 'b', 2, 3))];
    ok(hist(...before, get(1, 'k', 'b', 5, 6)));
    ok(hist(...before, get(1, 'k', 'a', 5, 6)));
    ok(hist(...before, get(1, 'k', 'a', 5, 6), get(1, 'k', 'a', 7, 8)));
    // It may take effect long after the client gave up on it (complete is treated as +inf).
    ok(
      hist(put(1, 'k', 'a', 0, 1), unknown(put(2, 'k', 'b', 2, 3), 4), get(1, 'k', 'a', 5, 6), get(1, 'k', 'b', 7, 8)),
    );
    // But not before it was invoked.
    bad(hist(put(1, 'k', 'a', 0, 1), get(1, 'k', 'b', 2, 3), unknown(put(2, 'k', 'b', 4, 5))));
  });

  it('rejects an unknown write observed and then un-observed', () => {
    const r = bad(
      hist(put(1, 'k', 'a', 0, 1), unknown(put(2, 'k', 'b', 2, 3)), get(1, 'k', 'b', 5, 6), get(1, 'k', 'a', 7, 8)),
    );
    expect(r.failure?.witness.sort()).toEqual([0, 2, 3]);
  });

  it('handles unknown cas and delete', () => {
    ok(hist(unknown(cas(1, 'k', null, 'a', true, 0, 1)), get(2, 'k', 'a', 2, 3)));
    ok(hist(unknown(cas(1, 'k', null, 'a', true, 0, 1)), get(2, 'k', null, 2, 3)));
    // An unknown cas can only take effect when its expectation holds.
    bad(hist(put(2, 'k', 'x', 0, 1), unknown(cas(1, 'k', null, 'a', true, 2, 3)), get(2, 'k', 'a', 4, 5)));
    ok(hist(put(1, 'k', 'a', 0, 1), unknown(del(2, 'k', 2, 3)), get(1, 'k', null, 4, 5)));
    bad(hist(put(1, 'k', 'a', 0, 1), unknown(del(2, 'k', 2, 3)), get(1, 'k', null, 4, 5), get(1, 'k', 'a', 6, 7)));
    // An unknown get constrains nothing.
    ok(hist(put(1, 'k', 'a', 0, 1), { ...unknown(get(2, 'k', 'zzz', 2, 3)), output: { value: 'zzz' } }));
  });

  it('ignores failed operations', () => {
    ok(hist(put(1, 'k', 'a', 0, 1), failed(put(2, 'k', 'b', 2, 3)), get(1, 'k', 'a', 4, 5)));
    bad(hist(put(1, 'k', 'a', 0, 1), failed(put(2, 'k', 'b', 2, 3)), get(1, 'k', 'b', 4, 5)));
    // Their output is ignored too.
    ok(hist(put(1, 'k', 'a', 0, 1), { ...failed(get(2, 'k', 'zzz', 2, 3)), output: { value: 'zzz' } }));
  });

  it('implements delete', () => {
    ok(hist(put(1, 'k', 'a', 0, 1), del(1, 'k', 2, 3), get(2, 'k', null, 4, 5), cas(2, 'k', null, 'b', true, 6, 7)));
    bad(hist(put(1, 'k', 'a', 0, 1), del(1, 'k', 2, 3), get(2, 'k', 'a', 4, 5)));
    bad(hist(put(1, 'k', 'a', 0, 1), del(1, 'k', 2, 3), cas(2, 'k', 'a', 'b', true, 4, 5)));
    ok(hist(del(1, 'k', 0, 1), get(1, 'k', null, 2, 3)));
  });

  it('accepts concurrent overlapping operations in any valid order', () => {
    // All overlap; the only valid order is get null, put b, get b, put a, get a.
    ok(
      hist(
        put(1, 'k', 'a', 0, 10),
        put(2, 'k', 'b', 1, 9),
        get(3, 'k', 'a', 2, 8),
        get(4, 'k', 'b', 3, 7),
        get(5, 'k', null, 0, 5),
      ),
    );
    // A read concurrent with a write may see either value.
    for (const v of [null, 'a']) ok(hist(put(1, 'k', 'a', 0, 10), get(2, 'k', v, 1, 2)));
    // Events at the same time are concurrent.
    ok(hist(put(1, 'k', 'a', 0, 5), get(2, 'k', null, 5, 6)));
    bad(hist(put(1, 'k', 'a', 0, 5), get(2, 'k', null, 6, 7)));
  });

  it('checks keys independently', () => {
    // As a single register this would be a stale read; as two keys it is fine.
    ok(hist(put(1, 'x', 'a', 0, 1), get(2, 'y', null, 2, 3), put(1, 'y', 'b', 4, 5), get(2, 'x', 'a', 6, 7)));
    const r = bad(hist(put(1, 'x', 'a', 0, 1), get(2, 'x', 'a', 2, 3), put(1, 'y', 'b', 4, 5), get(2, 'y', 'a', 6, 7)));
    expect(r.key).toBe('y');
    expect(r.message).toContain('"y"');
    expect(partitionByKey(hist(put(1, 'x', 'a', 0, 1), put(1, 'y', 'b', 2, 3))).size).toBe(2);
  });

  it('reports inconclusive when the search limit is hit, and rejects malformed histories', () => {
    const h = hist(...Array.from({ length: 8 }, (_, i) => put(i, 'k', `v${i}`, 0, 10)), get(9, 'k', 'v3', 11, 12));
    expect(checkLinearizable(h).ok).toBe(true);
    const r = checkLinearizable(h, { maxStates: 3 });
    expect(r).toMatchObject({ ok: true, inconclusive: true, inconclusiveKeys: ['k'] });
    const h2 = [...h, ...hist(get(1, 'z', 'q', 0, 1)).map((o) => ({ ...o, id: 99 }))];
    expect(checkLinearizable(h2, { maxStates: 3 })).toMatchObject({ ok: false, key: 'z' });

    expect(() => checkLinearizable([...hist(put(1, 'k', 'a', 0, 1)), ...hist(put(1, 'k', 'a', 2, 3))])).toThrow(
      /unique/,
    );
    expect(() => checkLinearizable(hist({ ...get(1, 'k', null, 0, 1), output: {} }))).toThrow(/output.value/);
    expect(() => checkLinearizable(hist(put(1, 'k', 'a', 5, 1)))).toThrow(/complete/);
  });

  it('explains a violation with a minimal witness', () => {
    // A long healthy history with one stale read in the middle.
    const ds: Draft[] = [];
    let t = 0;
    for (let i = 0; i < 40; i++) {
      ds.push(put(1, 'k', `v${i}`, t, t + 2), get(2, 'k', i === 20 ? `v${i - 1}` : `v${i}`, t + 3, t + 4));
      t += 5;
    }
    const h = hist(...ds);
    const r = bad(h);
    // The witness: the stale read, the write it missed, and the write it returned.
    // (Either the write of "v19" or the earlier read of it pins "v19" down.)
    expect(r.failure?.witness).toHaveLength(3);
    expect(r.failure?.witness).toEqual(expect.arrayContaining([40, 41]));
    expect(r.failure?.blockedOp).toBe(41);
    expect(r.message).toContain('#41 c2 get -> "v19" [103, 104]');
    expect(r.message?.split('\n').length).toBeLessThan(20);
  });
});

// ---------------------------------------------------------------------------------------------
// Random histories.

/** mulberry32 */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)] as T,
  };
}
type Rng = ReturnType<typeof rng>;

interface GenOpts {
  clients: number;
  keys: number;
  ops: number;
  pUnknown: number;
  pFail: number;
  /** Values written: from a small pool (collisions, meaningful cas) or unique per write. */
  uniqueValues: boolean;
  /** Integer times (with ties) or not. */
  maxDuration: number;
}

/**
 * A history from a real sequential register: every client runs ops one at a time; each op takes
 * effect at a random point inside [invoke, complete] (unknown ops: at a random later point, or
 * never), and outputs are computed by applying the ops in that order.
 */
function generate(r: Rng, o: GenOpts): HistoryOp[] {
  const ops: (HistoryOp & { at: number; applied: boolean })[] = [];
  const clock = Array.from({ length: o.clients }, () => 0);
  const pool = ['a', 'b', 'c'];
  for (let id = 0; id < o.ops; id++) {
    const client = r.int(o.clients);
    const key = `k${r.int(o.keys)}`;
    const value = o.uniqueValues ? `${key}-${id}` : r.pick(pool);
    const roll = r.next();
    const op: KvOp =
      roll < 0.4
        ? { kind: 'get', key }
        : roll < 0.7
          ? { kind: 'put', key, value }
          : roll < 0.9
            ? { kind: 'cas', key, expect: r.next() < 0.25 ? null : r.pick(pool), value }
            : { kind: 'delete', key };
    const invoke = (clock[client] as number) + r.int(3);
    const complete = invoke + 1 + r.int(o.maxDuration);
    clock[client] = complete;
    const s = r.next();
    const status = s < o.pUnknown ? 'unknown' : s < o.pUnknown + o.pFail ? 'fail' : 'ok';
    const at = status === 'unknown' ? invoke + r.next() * o.maxDuration * 4 : invoke + r.next() * (complete - invoke);
    const applied = status === 'ok' || (status === 'unknown' && r.next() < 0.5);
    ops.push({
      id,
      client,
      op,
      invoke,
      complete: status === 'unknown' && r.next() < 0.5 ? undefined : complete,
      status,
      at,
      applied,
    });
  }
  const reg = new Map<string, string | null>();
  for (const x of [...ops].sort((p, q) => p.at - q.at)) {
    if (!x.applied) {
      if (x.status === 'fail') x.output = x.op.kind === 'get' ? { value: 'garbage' } : { ok: true };
      continue;
    }
    const cur = reg.get(x.op.key) ?? null;
    switch (x.op.kind) {
      case 'get':
        x.output = { value: cur };
        break;
      case 'put':
        reg.set(x.op.key, x.op.value);
        x.output = {};
        break;
      case 'delete':
        reg.set(x.op.key, null);
        x.output = {};
        break;
      case 'cas': {
        const hit = cur === x.op.expect;
        if (hit) reg.set(x.op.key, x.op.value);
        x.output = { ok: hit };
      }
    }
    if (x.status === 'unknown') delete x.output;
  }
  return ops.map(({ at: _at, applied: _applied, ...rest }) => rest);
}

/** Exhaustive reference: some subset of the unknown ops plus all ok ops, in some real-time-respecting order. */
function bruteForce(history: readonly HistoryOp[]): boolean {
  for (const ops of partitionByKey(history).values()) {
    const live = ops.filter((o) => o.status !== 'fail');
    const known = live.filter((o) => o.status === 'ok' && o.complete !== undefined);
    const unk = live.filter((o) => !(o.status === 'ok' && o.complete !== undefined));
    const ret = (o: HistoryOp) => (o.status === 'ok' && o.complete !== undefined ? o.complete : Infinity);
    let found = false;
    for (let mask = 0; mask < 1 << unk.length && !found; mask++) {
      const set = [...known, ...unk.filter((_, i) => mask & (1 << i))];
      const dfs = (left: HistoryOp[], v: string | null): boolean => {
        if (left.length === 0) return true;
        for (const x of left) {
          if (left.some((y) => y !== x && ret(y) < x.invoke)) continue;
          const sure = x.status === 'ok' && x.complete !== undefined;
          let nv = v;
          const op = x.op;
          if (op.kind === 'get') {
            if (sure && x.output?.value !== v) continue;
          } else if (op.kind === 'put') nv = op.value;
          else if (op.kind === 'delete') nv = null;
          else {
            const hit = v === op.expect;
            if (sure && hit !== x.output?.ok) continue;
            if (hit) nv = op.value;
          }
          if (
            dfs(
              left.filter((y) => y !== x),
              nv,
            )
          )
            return true;
        }
        return false;
      };
      found = dfs(set, null);
    }
    if (!found) return false;
  }
  return true;
}

describe('checkLinearizable: random histories', () => {
  it('agrees with an exhaustive search on small random histories', () => {
    const r = rng(1);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const h = generate(r, {
        clients: 1 + r.int(4),
        keys: 1 + r.int(2),
        ops: 1 + r.int(9),
        pUnknown: 0.1 + 0.4 * r.next(),
        pFail: 0.1,
        uniqueValues: false,
        maxDuration: 1 + r.int(6),
      });
      // Half the time, scramble some outputs so that many histories are not linearizable.
      if (r.next() < 0.5) {
        for (const o of h) {
          if (o.status !== 'ok' || r.next() < 0.6) continue;
          if (o.op.kind === 'get') o.output = { value: r.pick([null, 'a', 'b', 'c']) };
          if (o.op.kind === 'cas') o.output = { ok: r.next() < 0.5 };
        }
      }
      const want = bruteForce(h);
      const got = checkLinearizable(h);
      if (got.ok !== want) expect.fail(`seed case ${i}: checker ${got.ok}, brute force ${want}\n${JSON.stringify(h)}`);
      if (want) accepted++;
      else rejected++;
    }
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(300);
  });

  it('accepts histories of a real register and catches one impossible read', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const r = rng(seed);
      const uniqueValues = seed % 2 === 0;
      const h = generate(r, {
        clients: 2 + r.int(5),
        keys: 1 + r.int(4),
        ops: 100 + r.int(200),
        pUnknown: 0.05,
        pFail: 0.05,
        uniqueValues,
        maxDuration: 8,
      });
      const res = checkLinearizable(h);
      if (!res.ok || res.inconclusive) expect.fail(`seed ${seed}: ${res.message ?? 'inconclusive'}`);

      const reads = h.filter((o) => o.op.kind === 'get' && o.status === 'ok');
      const victim = r.pick(reads);
      // A value never written, or (with unique values) one first written only after the read returned.
      const later = h.find(
        (o) =>
          uniqueValues &&
          o.op.kind === 'put' &&
          o.op.key === victim.op.key &&
          o.invoke > (victim.complete as number) &&
          o.status !== 'fail',
      );
      const impossible = later && later.op.kind === 'put' ? later.op.value : 'never-written';
      const mutated = h.map((o) => (o === victim ? { ...o, output: { value: impossible } } : o));
      const bad = checkLinearizable(mutated);
      expect(bad.ok, `seed ${seed}: mutated read #${victim.id} to ${impossible}`).toBe(false);
      expect(bad.key).toBe(victim.op.key);
      expect(bad.failure?.witness).toEqual([victim.id]);
      // The same through the search (and the witness shrinking) instead of the fast path.
      const searched = checkLinearizable(mutated, { fastPath: false });
      expect(searched.ok, `seed ${seed}: search`).toBe(false);
      expect(searched.inconclusive).toBeUndefined();
      expect(searched.key).toBe(victim.op.key);
      expect(searched.failure?.witness).toContain(victim.id);
    }
  });

  it('checks ~2000 ops over 8 keys and 6 clients quickly', () => {
    const r = rng(42);
    const h = generate(r, {
      clients: 6,
      keys: 8,
      ops: 2000,
      pUnknown: 0.03,
      pFail: 0.03,
      uniqueValues: true,
      maxDuration: 10,
    });
    const t0 = performance.now();
    const res = checkLinearizable(h);
    const ms = performance.now() - t0;
    expect(res.ok).toBe(true);
    expect(res.inconclusive).toBeUndefined();
    // Deterministic guard against search blow-ups; the wall-clock bound is deliberately loose.
    expect(res.explored).toBeLessThan(20 * h.length);
    expect(ms).toBeLessThan(2000);

    const victim = h.find((o) => o.op.kind === 'get' && o.status === 'ok' && o.id > 1500) as HistoryOp;
    const t1 = performance.now();
    const res2 = checkLinearizable(h.map((o) => (o === victim ? { ...o, output: { value: 'nope' } } : o)));
    expect(res2.ok).toBe(false);
    expect(performance.now() - t1).toBeLessThan(2000);
  });
});

describe('HistoryRecorder', () => {
  it('records ops with logical time and round-trips through JSON lines', () => {
    const rec = new HistoryRecorder();
    const a = rec.invoke(1, { kind: 'put', key: 'k', value: 'a' });
    const b = rec.invoke(2, { kind: 'get', key: 'k' });
    rec.ok(a);
    rec.ok(b, { value: 'a' });
    const c = rec.invoke(1, { kind: 'cas', key: 'k', expect: 'a', value: 'b' });
    rec.unknown(c);
    const d = rec.invoke(2, { kind: 'delete', key: 'k' });
    rec.fail(d);
    rec.invoke(3, { kind: 'put', key: 'k', value: 'z' }); // still open
    const h = rec.history();
    expect(h.map((o) => o.status)).toEqual(['ok', 'ok', 'unknown', 'fail', 'unknown']);
    expect(h[4]?.complete).toBeUndefined();
    expect(checkLinearizable(h).ok).toBe(true);
    expect(historyFromJsonLines(historyToJsonLines(h))).toEqual(h);
    expect(() => rec.ok(a)).toThrow(/not open/);
  });
});
