/**
 * Linearizability checker for key-value histories (./history.ts).
 *
 * Model: every key is an independent register whose initial value is null (absent); `put` sets
 * it, `delete` sets it to null, `get` reads it, `cas` sets it to `value` iff it equals `expect`
 * and reports whether it did. Linearizability is compositional (Herlihy & Wing's locality), so
 * the history is partitioned by key and every key is checked on its own.
 *
 * - `fail` operations are dropped: they had no effect.
 * - `unknown` operations (and any operation without a completion time) may take effect at any
 *   point after their invocation or not at all; their output is ignored. An unknown `get` is
 *   therefore dropped too.
 * - Events at the same time are treated as concurrent (calls sort before returns), the
 *   permissive reading for clocks with coarse ticks.
 *
 * Algorithm: Wing & Gong's search as improved by Lowe ("Testing for linearizability", 2017) and
 * used by Porcupine and Knossos: the calls and returns of one key, sorted by time, form a doubly
 * linked list; a depth-first search repeatedly linearizes one of the operations that were
 * called before the first return still in the list (unlinking its call and return, and putting
 * them back on backtrack), and a cache of visited (set of linearized operations, register state)
 * configurations prunes every configuration already shown to be a dead end.
 * Additions for this model:
 * - An unknown operation never has to be linearized: once every definite operation is, the
 *   search succeeds (the rest never took effect, or took effect afterwards). Unknown operations
 *   are tried after the definite ones at each step, only when they change the state, and only
 *   one of several that have the same effect (they are interchangeable).
 * - The cache also prunes a configuration when a finished (failed) one had the same definite
 *   ops and state but used only a subset of its unknown ops: that one had every option this one has.
 * - Values that no operation ever observes (no `get` returns them, no `cas` expects them)
 *   behave identically, so the search state merges them into one; this keeps the cache small
 *   when writers use unique values.
 *
 * Cost: typical simulator histories take milliseconds (~2,000 ops over 8 keys: ~15 ms). The
 * search for a violation must exhaust everything before it, and unknown operations stay pending
 * forever, so a violation deep in a long single-key history with hundreds of unknown operations
 * can hit `maxStates` and come back `inconclusive` (reads of never-written values are caught up
 * front, whatever the size). Many keys, or fewer timeouts per key, keep that rare.
 *
 * On a violation, the key's history is shrunk (within a budget) to a minimal set of definite
 * operations that still cannot be linearized when every other operation is relaxed to an
 * unknown outcome (a weakening, so the witness is sound), and the message shows them with the
 * longest valid order and the operation that cannot follow it.
 */
import type { HistoryOp, KvOp } from './history.ts';

export type { HistoryOp, KvOp, KvOutput, OpStatus } from './history.ts';

export interface CheckOptions {
  /**
   * The most distinct configurations the search may cache for one key (default
   * `DEFAULT_MAX_STATES`). A key that exhausts it is reported as `inconclusive`. Memory is about
   * (number of the key's operations / 8 + 20) bytes per configuration.
   */
  maxStates?: number;
  /** Shrink a violation to a minimal witness (default true). */
  minimize?: boolean;
  /**
   * Before searching, reject reads of values that nothing had started to write by the time they
   * returned (default true; turned off in tests to exercise the search on such reads).
   */
  fastPath?: boolean;
}

export interface FailureDetail {
  /** Ids of the longest valid order of the key's operations that the search found. */
  longestPrefix: number[];
  /** Id of the definite operation that could not follow that order. */
  blockedOp: number;
  /** Ids of the other operations that were in flight at that point. */
  concurrent: number[];
  /** Ids of a minimal set of definite operations that alone are already not linearizable. */
  witness: number[];
}

export interface CheckResult {
  ok: boolean;
  /** When !ok: the offending key. */
  key?: string;
  /** When !ok: a minimal explanation, the operations of the offending key around the failure. */
  message?: string;
  /** Distinct configurations visited by the search, over all keys checked. */
  explored?: number;
  /**
   * True when `ok` only because the search gave up (`maxStates`) on some key: no violation was
   * found, but linearizability of those keys is unproven. Callers decide whether that fails a run.
   * A definite violation on another key still yields `ok: false`.
   */
  inconclusive?: boolean;
  /** The keys whose search hit `maxStates`. */
  inconclusiveKeys?: string[];
  failure?: FailureDetail;
}

export const DEFAULT_MAX_STATES = 2_000_000;

/** Checks that `history` is linearizable for per-key registers (see the module comment). */
export function checkLinearizable(history: readonly HistoryOp[], opts: CheckOptions = {}): CheckResult {
  validateHistory(history);
  const maxStates = opts.maxStates ?? DEFAULT_MAX_STATES;
  const byKey = partitionByKey(history);
  let explored = 0;
  const inconclusiveKeys: string[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const ops = byKey.get(key) ?? [];
    const problem = prepare(key, ops);
    const impossible = (opts.fastPath ?? true) ? readOfUnwrittenValue(problem.ops) : undefined;
    if (impossible) {
      const detail = { longestPrefix: [], blockedOp: impossible.id, concurrent: [], witness: [impossible.id] };
      const message =
        `key ${JSON.stringify(key)} is not linearizable: ${formatOp(impossible)} observed a value ` +
        'that no operation on the key had started to write before it returned.';
      return { ok: false, key, message, explored, failure: detail };
    }
    const r = search(problem, maxStates);
    explored += r.explored;
    if (r.verdict === 'inconclusive') {
      inconclusiveKeys.push(key);
    } else if (r.verdict === 'violation') {
      const failure = describeFailure(problem, r, opts.minimize ?? true, maxStates);
      return { ok: false, key, message: failure.message, explored, failure: failure.detail };
    }
  }
  if (inconclusiveKeys.length > 0) return { ok: true, inconclusive: true, inconclusiveKeys, explored };
  return { ok: true, explored };
}

/** Groups a history by key, preserving order. */
export function partitionByKey(history: readonly HistoryOp[]): Map<string, HistoryOp[]> {
  const byKey = new Map<string, HistoryOp[]>();
  for (const o of history) {
    let list = byKey.get(o.op.key);
    if (!list) {
      list = [];
      byKey.set(o.op.key, list);
    }
    list.push(o);
  }
  return byKey;
}

/** Throws on a malformed history (a recorder bug, not a linearizability violation). */
export function validateHistory(history: readonly HistoryOp[]): void {
  const ids = new Set<number>();
  for (const o of history) {
    const where = `history op ${JSON.stringify(o.id)}`;
    if (typeof o.id !== 'number' || ids.has(o.id)) throw new Error(`${where}: id missing or not unique`);
    ids.add(o.id);
    const op = o.op as KvOp | undefined;
    if (!op || typeof op.key !== 'string') throw new Error(`${where}: no op or key`);
    if (op.kind === 'put' && typeof op.value !== 'string') throw new Error(`${where}: put without a string value`);
    if (op.kind === 'cas' && (typeof op.value !== 'string' || (op.expect !== null && typeof op.expect !== 'string'))) {
      throw new Error(`${where}: cas needs a string value and a string or null expect`);
    }
    if (!['get', 'put', 'cas', 'delete'].includes(op.kind)) throw new Error(`${where}: unknown kind`);
    if (typeof o.invoke !== 'number' || Number.isNaN(o.invoke)) throw new Error(`${where}: invoke is not a number`);
    if (o.complete !== undefined && !(typeof o.complete === 'number' && o.complete >= o.invoke)) {
      throw new Error(`${where}: complete must be a number >= invoke, or undefined`);
    }
    if (o.status !== 'ok' && o.status !== 'fail' && o.status !== 'unknown') throw new Error(`${where}: bad status`);
    if (o.status === 'ok' && o.complete !== undefined) {
      if (op.kind === 'get' && !(o.output?.value === null || typeof o.output?.value === 'string')) {
        throw new Error(`${where}: ok get needs output.value (string or null)`);
      }
      if (op.kind === 'cas' && typeof o.output?.ok !== 'boolean') throw new Error(`${where}: ok cas needs output.ok`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One key, compiled for the search.

const GET = 0; // definite get: state must equal a
const WRITE = 1; // put/delete: state := a
const CAS_OK = 2; // state must equal a; state := b
const CAS_FAIL = 3; // state must differ from a
const CAS_ANY = 4; // unknown cas: if state == a then state := b

/** State id of null; state ids >= 2 are observed values. */
const NULL_ID = 0;
/** State id standing for every value that no operation observes. */
const UNOBSERVED_ID = 1;

function isDefinite(o: HistoryOp): boolean {
  return o.status === 'ok' && o.complete !== undefined;
}

interface KeyProblem {
  key: string;
  /** Every operation of the key as given (for messages). */
  all: readonly HistoryOp[];
  /** Operations the search considers, by local index: no `fail`s, no unknown `get`s. */
  ops: HistoryOp[];
  definite: Uint8Array;
  nDefinite: number;
  code: Uint8Array;
  a: Int32Array;
  b: Int32Array;
  nValues: number;
  /** Events sorted by time (calls before returns at equal times): op index and call/return. */
  evOp: Int32Array;
  evCall: Uint8Array;
  callEv: Int32Array;
  retEv: Int32Array;
}

function prepare(key: string, all: readonly HistoryOp[]): KeyProblem {
  const ops = all.filter((o) => o.status !== 'fail' && (isDefinite(o) || o.op.kind !== 'get'));
  const n = ops.length;
  const observed = new Map<string, number>();
  const intern = (v: string | null | undefined) => {
    if (v === null || v === undefined) return;
    if (!observed.has(v)) observed.set(v, observed.size + 2);
  };
  for (const o of ops) {
    if (o.op.kind === 'get') intern(o.output?.value);
    else if (o.op.kind === 'cas') intern(o.op.expect);
  }
  const id = (v: string | null) => (v === null ? NULL_ID : (observed.get(v) ?? UNOBSERVED_ID));

  const definite = new Uint8Array(n);
  const code = new Uint8Array(n);
  const a = new Int32Array(n);
  const b = new Int32Array(n);
  let nDefinite = 0;
  for (let i = 0; i < n; i++) {
    const o = ops[i] as HistoryOp;
    const d = isDefinite(o);
    definite[i] = d ? 1 : 0;
    if (d) nDefinite++;
    const op = o.op;
    switch (op.kind) {
      case 'get':
        code[i] = GET;
        a[i] = id(o.output?.value ?? null);
        break;
      case 'put':
        code[i] = WRITE;
        a[i] = id(op.value);
        break;
      case 'delete':
        code[i] = WRITE;
        a[i] = NULL_ID;
        break;
      case 'cas':
        code[i] = !d ? CAS_ANY : o.output?.ok ? CAS_OK : CAS_FAIL;
        a[i] = id(op.expect);
        b[i] = id(op.value);
        break;
    }
  }

  // Events: calls of every op, returns of the definite ones (an unknown op's return is at +inf).
  const events: { op: number; call: boolean; t: number }[] = [];
  for (let i = 0; i < n; i++) {
    const o = ops[i] as HistoryOp;
    events.push({ op: i, call: true, t: o.invoke });
    if (definite[i]) events.push({ op: i, call: false, t: o.complete as number });
  }
  events.sort((x, y) => x.t - y.t || (x.call === y.call ? x.op - y.op : x.call ? -1 : 1));
  const evOp = new Int32Array(events.length);
  const evCall = new Uint8Array(events.length);
  const callEv = new Int32Array(n);
  const retEv = new Int32Array(n).fill(-1);
  events.forEach((e, i) => {
    evOp[i] = e.op;
    evCall[i] = e.call ? 1 : 0;
    if (e.call) callEv[e.op] = i;
    else retEv[e.op] = i;
  });
  return {
    key,
    all,
    ops,
    definite,
    nDefinite,
    code,
    a,
    b,
    nValues: observed.size + 2,
    evOp,
    evCall,
    callEv,
    retEv,
  };
}

// ---------------------------------------------------------------------------------------------
// Cache of visited configurations.
//
// A configuration is (definite ops linearized, unknown ops linearized, state). Entries are grouped
// by (definite set, state) in an open-addressing table; each group is a chain of unknown sets.
// A configuration is pruned if a *finished* (so failed) entry of its group used a subset of its
// unknown ops: that one had every option this one has (pending unknown ops can be applied at any
// time, the same ops are invoked since the same definite ops are done), and still failed.

class ConfigCache {
  size = 0;
  private readonly dw: number;
  private readonly uw: number;
  private cap = 1024;
  private def: Uint32Array;
  private unk: Uint32Array;
  private state: Int32Array;
  private fullA: Int32Array; // hash of (definite set, unknown set, state)
  private fullB: Int32Array;
  private groupA: Int32Array; // hash of (definite set, state)
  private nextSame: Int32Array; // previous entry of the same group, -1 at the end
  private finished: Uint8Array;
  private exact: Int32Array; // entry + 1 by full hash; 0 = empty
  private groups: Int32Array; // newest entry + 1 of a group by group hash; 0 = empty
  private mask: number;

  constructor(defWords: number, unkWords: number) {
    this.dw = defWords;
    this.uw = unkWords;
    this.def = new Uint32Array(this.cap * defWords);
    this.unk = new Uint32Array(this.cap * unkWords);
    this.state = new Int32Array(this.cap);
    this.fullA = new Int32Array(this.cap);
    this.fullB = new Int32Array(this.cap);
    this.groupA = new Int32Array(this.cap);
    this.nextSame = new Int32Array(this.cap);
    this.finished = new Uint8Array(this.cap);
    this.exact = new Int32Array(this.cap * 2);
    this.groups = new Int32Array(this.cap * 2);
    this.mask = this.cap * 2 - 1;
  }

  /**
   * Adds the configuration and returns its entry, or -1 if it is pruned: seen before, or
   * dominated by a finished entry of its group (only the newest few of a group are compared).
   */
  add(def: Uint32Array, unk: Uint32Array, state: number, d1: number, d2: number, u1: number, u2: number): number {
    const sm = Math.imul(state + 1, 0x9e3779b1);
    const ga = d1 ^ sm;
    const fa = ga ^ u1;
    const fb = d2 ^ u2 ^ Math.imul(state + 1, 0x85ebca6b);
    let slot = fa & this.mask;
    for (;;) {
      const e = (this.exact[slot] as number) - 1;
      if (e < 0) break;
      if (this.fullA[e] === fa && this.fullB[e] === fb && this.state[e] === state && this.same(e, def, unk)) return -1;
      slot = (slot + 1) & this.mask;
    }
    let gslot = ga & this.mask;
    let head = -1;
    for (;;) {
      const e = (this.groups[gslot] as number) - 1;
      if (e < 0) break;
      if (this.groupA[e] === ga && this.state[e] === state && this.same(e, def, undefined)) {
        head = e;
        break;
      }
      gslot = (gslot + 1) & this.mask;
    }
    const uw = this.uw;
    let walked = 0;
    for (let e = head; e >= 0 && walked < 32; e = this.nextSame[e] as number, walked++) {
      if (!this.finished[e]) continue;
      let subset = true;
      const base = e * uw;
      for (let i = 0; i < uw; i++) {
        if (((this.unk[base + i] as number) & ~(unk[i] as number)) !== 0) {
          subset = false;
          break;
        }
      }
      if (subset) return -1;
    }
    if (this.size === this.cap) {
      this.grow();
      return this.add(def, unk, state, d1, d2, u1, u2);
    }
    const e = this.size++;
    this.def.set(def, e * this.dw);
    if (uw > 0) this.unk.set(unk, e * uw);
    this.state[e] = state;
    this.fullA[e] = fa;
    this.fullB[e] = fb;
    this.groupA[e] = ga;
    this.nextSame[e] = head;
    this.finished[e] = 0;
    this.exact[slot] = e + 1;
    this.groups[gslot] = e + 1;
    return e;
  }

  /** The search below this entry is exhausted without success. */
  finish(e: number): void {
    this.finished[e] = 1;
  }

  private same(e: number, def: Uint32Array, unk: Uint32Array | undefined): boolean {
    const db = e * this.dw;
    for (let i = 0; i < this.dw; i++) if (this.def[db + i] !== def[i]) return false;
    if (!unk) return true;
    const ub = e * this.uw;
    for (let i = 0; i < this.uw; i++) if (this.unk[ub + i] !== unk[i]) return false;
    return true;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const widen = <T extends Uint32Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T, per: number): T => {
      const next = make(cap * per);
      next.set(old);
      return next;
    };
    this.def = widen(this.def, (k) => new Uint32Array(k), this.dw);
    this.unk = widen(this.unk, (k) => new Uint32Array(k), this.uw);
    this.state = widen(this.state, (k) => new Int32Array(k), 1);
    this.fullA = widen(this.fullA, (k) => new Int32Array(k), 1);
    this.fullB = widen(this.fullB, (k) => new Int32Array(k), 1);
    this.groupA = widen(this.groupA, (k) => new Int32Array(k), 1);
    this.nextSame = widen(this.nextSame, (k) => new Int32Array(k), 1);
    this.finished = widen(this.finished, (k) => new Uint8Array(k), 1);
    const oldGroups = this.groups;
    this.cap = cap;
    this.mask = cap * 2 - 1;
    this.exact = new Int32Array(cap * 2);
    this.groups = new Int32Array(cap * 2);
    for (let e = 0; e < this.size; e++) {
      let slot = (this.fullA[e] as number) & this.mask;
      while (this.exact[slot] !== 0) slot = (slot + 1) & this.mask;
      this.exact[slot] = e + 1;
    }
    for (let i = 0; i < oldGroups.length; i++) {
      const e = (oldGroups[i] as number) - 1;
      if (e < 0) continue;
      let slot = (this.groupA[e] as number) & this.mask;
      while (this.groups[slot] !== 0) slot = (slot + 1) & this.mask;
      this.groups[slot] = e + 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The search.

interface SearchResult {
  verdict: 'linearizable' | 'violation' | 'inconclusive';
  explored: number;
  /** Op indices of the longest valid order found (by definite ops linearized). */
  best: number[];
}

/** Deterministic 32-bit xorshift, for Zobrist hashing of the linearized set. */
function zobrist(n: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

function search(p: KeyProblem, maxStates: number): SearchResult {
  const n = p.ops.length;
  if (p.nDefinite === 0) return { verdict: 'linearizable', explored: 0, best: [] };
  const { definite, code, a, b, evOp, evCall, callEv, retEv } = p;
  const nEv = evOp.length;

  // Doubly linked list of events; node 0 is the head, event i is node i + 1, -1 ends the list.
  const next = new Int32Array(nEv + 1);
  const prev = new Int32Array(nEv + 1);
  for (let i = 0; i <= nEv; i++) {
    next[i] = i + 1 < nEv + 1 ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const unlink = (x: number) => {
    const pr = prev[x] as number;
    const nx = next[x] as number;
    next[pr] = nx;
    if (nx !== -1) prev[nx] = pr;
  };
  const relink = (x: number) => {
    const pr = prev[x] as number;
    const nx = next[x] as number;
    next[pr] = x;
    if (nx !== -1) prev[nx] = x;
  };
  const lift = (op: number) => {
    unlink((callEv[op] as number) + 1);
    const r = retEv[op] as number;
    if (r >= 0) unlink(r + 1);
  };
  const unlift = (op: number) => {
    const r = retEv[op] as number;
    if (r >= 0) relink(r + 1);
    relink((callEv[op] as number) + 1);
  };

  // Definite and unknown ops have separate bitsets; only the definite one is hashed.
  const slotOf = new Int32Array(n);
  let nd = 0;
  let nu = 0;
  for (let i = 0; i < n; i++) slotOf[i] = definite[i] ? nd++ : nu++;
  const defBits = new Uint32Array(Math.max(1, Math.ceil(nd / 32)));
  const unkBits = new Uint32Array(Math.ceil(nu / 32));
  const z1 = zobrist(nd, 0x2545f491);
  const z2 = zobrist(nd, 0x6b43a9b5);
  const zu1 = zobrist(nu, 0x1b873593);
  const zu2 = zobrist(nu, 0x5bd1e995);
  let h1 = 0;
  let h2 = 0;
  let hu1 = 0;
  let hu2 = 0;
  const toggle = (op: number) => {
    const k = slotOf[op] as number;
    if (definite[op]) {
      defBits[k >>> 5] = (defBits[k >>> 5] as number) ^ (1 << (k & 31));
      h1 ^= z1[k] as number;
      h2 ^= z2[k] as number;
    } else {
      unkBits[k >>> 5] = (unkBits[k >>> 5] as number) ^ (1 << (k & 31));
      hu1 ^= zu1[k] as number;
      hu2 ^= zu2[k] as number;
    }
  };
  const cache = new ConfigCache(defBits.length, unkBits.length);

  // Per level: a slice of `cands`, the next candidate to try, the op chosen, the state before
  // it, and the cache entry of the configuration the level stands for.
  const cands: number[] = [];
  const candStart = new Int32Array(n + 2);
  const candPos = new Int32Array(n + 2);
  const chosen = new Int32Array(n + 1);
  const saved = new Int32Array(n + 1);
  const entryAt = new Int32Array(n + 2);
  const seenSig = new Set<number>();
  const hasUnknown = nu > 0;

  let state = NULL_ID;
  let depth = 0;
  let linearized = 0;
  let bestCount = -1;
  let best: number[] = [];

  const buildCandidates = (level: number) => {
    const start = cands.length;
    candStart[level] = start;
    candPos[level] = start;
    for (let node = next[0] as number; node !== -1; node = next[node] as number) {
      if (!evCall[node - 1]) break;
      const op = evOp[node - 1] as number;
      if (definite[op]) cands.push(op);
    }
    if (!hasUnknown) return;
    seenSig.clear();
    for (let node = next[0] as number; node !== -1; node = next[node] as number) {
      if (!evCall[node - 1]) break;
      const op = evOp[node - 1] as number;
      if (definite[op]) continue;
      let sig: number;
      if (code[op] === WRITE) {
        if (a[op] === state) continue; // no effect now: the same as never taking effect
        sig = (a[op] as number) * 2;
      } else {
        if (a[op] !== state || b[op] === state) continue;
        sig = ((a[op] as number) * p.nValues + (b[op] as number)) * 2 + 1;
      }
      if (seenSig.has(sig)) continue; // interchangeable with one already offered at this level
      seenSig.add(sig);
      cands.push(op);
    }
  };

  const recordBest = () => {
    if (linearized > bestCount) {
      bestCount = linearized;
      best = Array.from(chosen.subarray(0, depth));
    }
  };

  recordBest();
  buildCandidates(0);
  for (;;) {
    if (linearized === p.nDefinite) return { verdict: 'linearizable', explored: cache.size, best };
    const pos = candPos[depth] as number;
    if (pos < cands.length) {
      candPos[depth] = pos + 1;
      const op = cands[pos] as number;
      let ns: number;
      switch (code[op]) {
        case GET:
          ns = state === a[op] ? state : -1;
          break;
        case WRITE:
          ns = a[op] as number;
          break;
        case CAS_OK:
          ns = state === a[op] ? (b[op] as number) : -1;
          break;
        case CAS_FAIL:
          ns = state !== a[op] ? state : -1;
          break;
        default: // CAS_ANY, only offered when it applies
          ns = b[op] as number;
      }
      if (ns < 0) continue;
      toggle(op);
      const entry = cache.add(defBits, unkBits, ns, h1, h2, hu1, hu2);
      if (entry < 0) {
        toggle(op);
        continue;
      }
      if (cache.size > maxStates) return { verdict: 'inconclusive', explored: cache.size, best };
      chosen[depth] = op;
      saved[depth] = state;
      lift(op);
      if (definite[op]) linearized++;
      state = ns;
      depth++;
      entryAt[depth] = entry;
      recordBest();
      buildCandidates(depth);
    } else {
      if (depth === 0) return { verdict: 'violation', explored: cache.size, best };
      cache.finish(entryAt[depth] as number);
      cands.length = candStart[depth] as number;
      depth--;
      const op = chosen[depth] as number;
      unlift(op);
      toggle(op);
      if (definite[op]) linearized--;
      state = saved[depth] as number;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Explaining a violation.

/** Copies of definite ops relaxed to unknown outcome while shrinking a witness. */
const relaxedOps = new WeakSet<HistoryOp>();

const show = (v: string | null | undefined) => (v === undefined ? '?' : JSON.stringify(v));

/** One operation, e.g. `#12 c3 cas "a"->"b" ok [40, 52]`. */
export function formatOp(o: HistoryOp): string {
  const op = o.op;
  const known = isDefinite(o);
  let text: string;
  switch (op.kind) {
    case 'get':
      text = known ? `get -> ${show(o.output?.value)}` : 'get';
      break;
    case 'put':
      text = `put ${show(op.value)}`;
      break;
    case 'delete':
      text = 'delete';
      break;
    case 'cas':
      text = `cas ${show(op.expect)}->${show(op.value)}${known ? (o.output?.ok ? ' ok' : ' failed') : ''}`;
      break;
  }
  const status = relaxedOps.has(o)
    ? ' (relaxed to unknown)'
    : isDefinite(o)
      ? ''
      : ` (${o.status === 'fail' ? 'fail' : 'unknown'})`;
  return `#${o.id} c${o.client} ${text} [${o.invoke}, ${o.complete ?? '∞'}]${status}`;
}

/** The register value after applying `op` to `v` along a valid order. */
function applyConcrete(o: HistoryOp, v: string | null): string | null {
  switch (o.op.kind) {
    case 'get':
      return v;
    case 'put':
      return o.op.value;
    case 'delete':
      return null;
    case 'cas':
      return v === o.op.expect && (!isDefinite(o) || o.output?.ok) ? o.op.value : v;
  }
}

function whyNot(o: HistoryOp, v: string | null): string {
  const op = o.op;
  if (op.kind === 'get') return `it returned ${show(o.output?.value)} while the value is ${show(v)}`;
  if (op.kind === 'cas' && o.output?.ok)
    return `it succeeded expecting ${show(op.expect)} while the value is ${show(v)}`;
  if (op.kind === 'cas') return `it failed while the value is ${show(v)}, as it expected`;
  return 'it is always possible';
}

interface Stuck {
  lines: string[];
  blocked: HistoryOp;
  concurrent: HistoryOp[];
  prefix: HistoryOp[];
}

/** The longest valid order found, and the operation that cannot follow it. */
function explainStuck(p: KeyProblem, best: number[], tail = 8): Stuck {
  const prefix = best.map((i) => p.ops[i] as HistoryOp);
  const lines: string[] = [];
  let v: string | null = null;
  const steps: string[] = [];
  for (const o of prefix) {
    v = applyConcrete(o, v);
    steps.push(`  ${formatOp(o)}  => ${show(v)}`);
  }
  const done = new Set(best);
  let blockedIdx = -1;
  for (let i = 0; i < p.ops.length; i++) {
    if (done.has(i) || !p.definite[i]) continue;
    const o = p.ops[i] as HistoryOp;
    const cur = blockedIdx < 0 ? undefined : (p.ops[blockedIdx] as HistoryOp);
    if (!cur || (o.complete as number) < (cur.complete as number)) blockedIdx = i;
  }
  const blocked = p.ops[blockedIdx] as HistoryOp;
  const concurrent = p.ops.filter(
    (o, i) => !done.has(i) && i !== blockedIdx && o.invoke <= (blocked.complete as number),
  );
  if (prefix.length === 0) {
    lines.push('No operation can go first.');
  } else {
    lines.push(
      `Longest valid order found (${prefix.length} ops${prefix.length > tail ? `, last ${tail} shown` : ''}):`,
    );
    if (steps.length > tail) lines.push('  ...');
    lines.push(...steps.slice(-tail));
  }
  lines.push(
    `Then ${formatOp(blocked)} must take effect by ${blocked.complete}, but ${whyNot(blocked, v)}.`,
    ...(concurrent.length > 0
      ? [
          'Other operations in flight there (none leads to a valid order):',
          ...concurrent.slice(0, 12).map((o) => `  ${formatOp(o)}`),
          ...(concurrent.length > 12 ? [`  ... and ${concurrent.length - 12} more`] : []),
        ]
      : []),
  );
  return { lines, blocked, concurrent, prefix };
}

/**
 * Shrinks a violating key history to a small witness, in two weakening steps that keep it
 * sound (if the witness admits no valid order, neither does the original):
 * 1. cut at the blocked operation's completion time T: ops invoked after T are dropped (every
 *    definite op kept completes by T, so in any valid order of the original they all precede
 *    the dropped ones), and definite ops still running at T are relaxed to unknown outcome;
 * 2. ddmin-style relaxation of definite ops to unknown outcome (a relaxed get is dropped),
 *    reads first (dropping them makes values unobserved, which keeps the searches cheap).
 * Every accepted step is re-checked within a budget, so the result is sound even if the
 * budget runs out before it is 1-minimal.
 */
function minimizeWitness(
  p: KeyProblem,
  blockedComplete: number,
  maxStates: number,
): { problem: KeyProblem; best: number[] } | undefined {
  const perCheck = Math.min(maxStates, 20_000);
  let budget = 5 * perCheck;
  let current: { problem: KeyProblem; best: number[] } | undefined;
  let ops: HistoryOp[] = p.ops;
  const attempt = (cand: HistoryOp[]) => {
    if (budget <= 0) return false;
    const problem = prepare(p.key, cand);
    const r = search(problem, Math.min(perCheck, budget));
    budget -= Math.max(1, r.explored);
    if (r.verdict !== 'violation') return false;
    current = { problem, best: r.best };
    ops = problem.ops;
    return true;
  };
  // A read (or successful cas) of a value that nothing on the key ever writes is a witness alone.
  const blocked = ops.find((o) => isDefinite(o) && o.complete === blockedComplete && !canBeExplainedByWrites(o, ops));
  if (blocked && attempt([blocked])) return current;

  const relax = (o: HistoryOp): HistoryOp => {
    const r: HistoryOp = { ...o, status: 'unknown', complete: undefined, output: undefined };
    relaxedOps.add(r);
    return r;
  };

  attempt(
    ops
      .filter((o) => o.invoke <= blockedComplete)
      .map((o) => (isDefinite(o) && (o.complete as number) > blockedComplete ? relax(o) : o)),
  );

  const shrink = (eligible: (o: HistoryOp) => boolean) => {
    let chunk = Math.max(1, Math.ceil(ops.filter(eligible).length / 2));
    for (;;) {
      let progress = false;
      const live = ops.filter(eligible);
      for (let s = 0; s < live.length; s += chunk) {
        const part = new Set(live.slice(s, s + chunk));
        if (ops.filter(isDefinite).every((o) => part.has(o))) continue; // never relax everything
        if (attempt(ops.map((o) => (part.has(o) ? relax(o) : o)))) progress = true;
        if (budget <= 0) return;
      }
      if (!progress) {
        if (chunk === 1) return;
        chunk = Math.ceil(chunk / 2);
      }
    }
  };
  shrink((o) => isDefinite(o) && o.op.kind === 'get');
  shrink(isDefinite);
  return current;
}

/**
 * A fast path, before the search: the earliest-returning definite get (or successful cas) that
 * observed a value no put or cas on the key invoked by its return could have written.
 */
function readOfUnwrittenValue(ops: readonly HistoryOp[]): HistoryOp | undefined {
  const firstWrite = new Map<string, number>();
  for (const w of ops) {
    if (w.op.kind === 'put' || w.op.kind === 'cas') {
      firstWrite.set(w.op.value, Math.min(firstWrite.get(w.op.value) ?? Infinity, w.invoke));
    }
  }
  let found: HistoryOp | undefined;
  for (const o of ops) {
    if (!isDefinite(o)) continue;
    const v = o.op.kind === 'get' ? o.output?.value : o.op.kind === 'cas' && o.output?.ok ? o.op.expect : null;
    if (v === null || v === undefined) continue;
    if ((firstWrite.get(v) ?? Infinity) <= (o.complete as number)) continue;
    if (!found || (o.complete as number) < (found.complete as number)) found = o;
  }
  return found;
}

function canBeExplainedByWrites(o: HistoryOp, ops: readonly HistoryOp[]): boolean {
  const v = o.op.kind === 'get' ? o.output?.value : o.op.kind === 'cas' && o.output?.ok ? o.op.expect : null;
  if (v === null || v === undefined) return true;
  return ops.some((w) => (w.op.kind === 'put' || w.op.kind === 'cas') && w.op.value === v);
}

function describeFailure(
  p: KeyProblem,
  r: SearchResult,
  minimize: boolean,
  maxStates: number,
): { message: string; detail: FailureDetail } {
  const stuck = explainStuck(p, r.best);
  const lines = [
    `key ${JSON.stringify(p.key)} is not linearizable (${p.all.length} ops, ${r.explored} states explored).`,
  ];
  let witness: HistoryOp[] = p.ops.filter((_, i) => p.definite[i]);
  const small = minimize ? minimizeWitness(p, stuck.blocked.complete as number, maxStates) : undefined;
  if (small && small.problem.nDefinite < p.nDefinite) {
    witness = small.problem.ops.filter((_, i) => small.problem.definite[i]);
    lines.push(
      `These ${witness.length} of its ${p.nDefinite} completed operations already admit no valid order, even with every other operation's outcome taken as unknown:`,
      ...witness.slice(0, 20).map((o) => `  ${formatOp(o)}`),
      ...(witness.length > 20 ? [`  ... and ${witness.length - 20} more`] : []),
    );
  }
  lines.push(...stuck.lines);
  return {
    message: lines.join('\n'),
    detail: {
      longestPrefix: stuck.prefix.map((o) => o.id),
      blockedOp: stuck.blocked.id,
      concurrent: stuck.concurrent.map((o) => o.id),
      witness: witness.map((o) => o.id),
    },
  };
}
