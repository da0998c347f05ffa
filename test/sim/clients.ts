import type { ProposeOutcome, ReadOutcome } from '../../src/driver/index.ts';
import { encodeCommand, type KvCommand, type KvResult } from '../../src/kv/index.ts';
import type { NodeId } from '../../src/raft/index.ts';
import type { HistoryOp, KvOp, KvOutput } from './checker.ts';
import type { SimConfig } from './config.ts';
import { SimViolation } from './invariants.ts';
import type { SimNode } from './node.ts';
import type { SimRng } from './rng.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What clients may see of the world. */
export interface ClientWorld {
  readonly rng: SimRng;
  readonly ids: readonly NodeId[];
  now(): number;
  /** The node if it is up. */
  live(id: NodeId): SimNode | undefined;
  /** Runs a sleeping node's overdue ticks before a call into it (SimConfig.sleepy); false if it crashed. */
  wake(n: SimNode): boolean;
  /** A request to `n`: `wake`, and (SimConfig.quiesceAfterTicks) a leaderless node campaigns at once. */
  request(n: SimNode): boolean;
  /** Where node `id` sends clients that asked it: the leader it knows, or the one it followed before it went quiet. */
  hint(id: NodeId): NodeId;
}

interface Pending {
  readonly h: HistoryOp;
  /** Encoded command for writes (with its requestId, the same on every retry). */
  readonly data: Uint8Array | undefined;
  attempt: number;
  open: boolean;
  node: NodeId;
  startedAt: number;
  retryAt: number;
  /** Some attempt may have entered a log: giving up then means `unknown`, never `fail`. */
  mayHaveApplied: boolean;
}

interface Client {
  readonly id: number;
  guess: NodeId;
  pending: Pending | undefined;
  /** The last value this client saw per key, to make its CAS expectations plausible. */
  readonly seen: Map<string, string | null>;
  seq: number;
}

/**
 * Closed-loop clients: each runs one op at a time against the node it
 * believes leads, retries elsewhere on notLeader, lost answers and crashes
 * (writes keep their requestId, so a retry applies at most once), and
 * records the history the linearizability checker reads.
 */
export class Clients {
  readonly history: HistoryOp[] = [];
  private readonly clients: Client[] = [];
  private readonly w: ClientWorld;
  private readonly cfg: SimConfig;
  private nextOpId = 1;
  /** No new ops once set (the end of the run). */
  stopping = false;
  attempts = 0;
  redirects = 0;

  constructor(w: ClientWorld, cfg: SimConfig) {
    this.w = w;
    this.cfg = cfg;
    for (let i = 0; i < cfg.clients; i++) {
      this.clients.push({ id: i, guess: w.rng.pick(w.ids), pending: undefined, seen: new Map(), seq: 0 });
    }
  }

  /** Whether any op is still running. */
  busy(): boolean {
    return this.clients.some((c) => c.pending !== undefined);
  }

  step(): void {
    const now = this.w.now();
    for (const c of this.clients) {
      const p = c.pending;
      if (!p) {
        if (!this.stopping && !this.inLull(now) && this.w.rng.chance(this.cfg.opRate)) this.begin(c, now);
        continue;
      }
      if (p.open && now - p.startedAt >= this.cfg.attemptTimeout) {
        // No answer: the request or its reply is lost, or the entry waits on a leader that moved.
        p.open = false;
        if (p.data) p.mayHaveApplied = true;
        c.guess = this.w.rng.pick(this.w.ids);
        p.retryAt = now;
      }
      if (now - p.h.invoke >= this.cfg.opDeadline) {
        this.giveUp(c, p, now);
        continue;
      }
      if (!p.open && now >= p.retryAt) this.attempt(c, p, now);
    }
  }

  /** SimConfig.lulls: whether clients start nothing now. */
  private inLull(now: number): boolean {
    const l = this.cfg.lulls;
    return l !== undefined && now % l.every < l.length;
  }

  /** A node crashed: what was waiting there will never be answered. */
  onCrash(id: NodeId): void {
    const now = this.w.now();
    for (const c of this.clients) {
      const p = c.pending;
      if (!p?.open || p.node !== id) continue;
      p.open = false;
      if (p.data) p.mayHaveApplied = true;
      p.retryAt = now + 1;
      c.guess = this.w.rng.pick(this.w.ids);
    }
  }

  /** Ends the run: ops still running become unknown (writes that may apply) or fail. */
  finish(): void {
    for (const c of this.clients) if (c.pending) this.giveUp(c, c.pending, this.w.now());
  }

  stats(): { ops: number; ok: number; fail: number; unknown: number } {
    let ok = 0;
    let fail = 0;
    let unknown = 0;
    for (const h of this.history) {
      if (h.status === 'ok') ok++;
      else if (h.status === 'fail') fail++;
      else unknown++;
    }
    return { ops: this.history.length, ok, fail, unknown };
  }

  private begin(c: Client, now: number): void {
    const op = this.chooseOp(c);
    const h: HistoryOp = { id: this.nextOpId++, client: c.id, op, invoke: now, complete: undefined, status: 'unknown' };
    this.history.push(h);
    const data = op.kind === 'get' ? undefined : encodeCommand({ requestId: `c${c.id}-${h.id}`, cmd: toCommand(op) });
    const p: Pending = {
      h,
      data,
      attempt: 0,
      open: false,
      node: c.guess,
      startedAt: now,
      retryAt: now,
      mayHaveApplied: false,
    };
    c.pending = p;
    this.attempt(c, p, now);
  }

  private chooseOp(c: Client): KvOp {
    const r = this.w.rng;
    const key = `k${r.int(this.cfg.keys)}`;
    const value = `c${c.id}.${++c.seq}`;
    const roll = r.int(100);
    if (roll < 40) return { kind: 'get', key };
    if (roll < 70) return { kind: 'put', key, value };
    if (roll < 90) {
      const known = c.seen.get(key);
      const expect =
        known !== undefined && r.chance(0.8) ? known : r.chance(0.5) ? null : `c${r.int(this.cfg.clients)}.1`;
      return { kind: 'cas', key, expect, value };
    }
    return { kind: 'delete', key };
  }

  private attempt(c: Client, p: Pending, now: number): void {
    const n = this.w.live(c.guess);
    const drv = n && this.w.request(n) ? n.driver : undefined;
    if (!n || !drv) {
      // Connection refused: nothing was sent anywhere.
      c.guess = this.w.rng.pick(this.w.ids);
      p.retryAt = now + 1 + this.w.rng.int(5);
      return;
    }
    this.attempts++;
    const a = ++p.attempt;
    p.open = true;
    p.node = n.id;
    p.startedAt = now;
    if (p.h.op.kind === 'get') {
      const key = p.h.op.key;
      if (this.cfg.staleReads) {
        const any = this.w.live(this.w.rng.pick(this.w.ids)) ?? n;
        this.complete(c, p, { value: readValue(any, key) });
        return;
      }
      drv.read((o) => this.onRead(c, p, a, n, key, o));
    } else {
      drv.propose(p.data as Uint8Array, (o) => this.onWrite(c, p, a, o));
    }
  }

  private onRead(c: Client, p: Pending, a: number, n: SimNode, key: string, o: ReadOutcome): void {
    if (c.pending !== p) return;
    if (o.status === 'ready') {
      this.complete(c, p, { value: readValue(n, key) });
      return;
    }
    if (a !== p.attempt) return;
    this.redirect(c, p, o.leader);
  }

  private onWrite(c: Client, p: Pending, a: number, o: ProposeOutcome<KvResult>): void {
    if (c.pending !== p) return;
    if (o.status === 'applied') {
      this.complete(c, p, outputOf(p.h.op, o.result));
      return;
    }
    if (a !== p.attempt) return;
    switch (o.status) {
      case 'notLeader':
      case 'refused':
        this.redirect(c, p, o.leader);
        return;
      case 'dropped':
        // Its entry was replaced by another leader's: it never applies.
        this.redirect(c, p, '');
        return;
      case 'unknown':
        p.mayHaveApplied = true;
        this.redirect(c, p, '');
        return;
    }
  }

  private redirect(c: Client, p: Pending, answered: NodeId): void {
    this.redirects++;
    p.open = false;
    // The Worker follows the node's hint: the leader it named, or (quiescence) the one it followed.
    const leader = answered === '' && this.cfg.quiesceAfterTicks ? this.w.hint(p.node) : answered;
    c.guess = leader !== '' && leader !== p.node ? leader : this.w.rng.pick(this.w.ids);
    p.retryAt = this.w.now() + 1 + this.w.rng.int(4);
  }

  private complete(c: Client, p: Pending, output: KvOutput): void {
    const op = p.h.op;
    p.h.status = 'ok';
    p.h.complete = this.w.now();
    p.h.output = output;
    if (op.kind === 'get') c.seen.set(op.key, output.value ?? null);
    else if (op.kind === 'put' || (op.kind === 'cas' && output.ok)) c.seen.set(op.key, op.value);
    else if (op.kind === 'delete') c.seen.set(op.key, null);
    c.pending = undefined;
  }

  private giveUp(c: Client, p: Pending, now: number): void {
    if (p.data && (p.mayHaveApplied || p.open)) {
      p.h.status = 'unknown';
      p.h.complete = undefined;
    } else {
      p.h.status = 'fail';
      p.h.complete = now;
    }
    c.pending = undefined;
  }
}

function toCommand(op: Exclude<KvOp, { kind: 'get' }>): KvCommand {
  switch (op.kind) {
    case 'put':
      return { type: 'put', key: op.key, value: encoder.encode(op.value) };
    case 'delete':
      return { type: 'delete', key: op.key };
    case 'cas':
      return {
        type: 'cas',
        key: op.key,
        expect: op.expect === null ? { absent: true } : { value: encoder.encode(op.expect) },
        value: encoder.encode(op.value),
      };
  }
}

function readValue(n: SimNode, key: string): string | null {
  const kv = n.sm.get(key);
  return kv ? decoder.decode(kv.value) : null;
}

function outputOf(op: KvOp, r: KvResult): KvOutput {
  if (r.type === 'error')
    throw new SimViolation('kv', `op ${JSON.stringify(op)} failed to apply: ${r.error} ${r.message}`);
  if (op.kind === 'cas') {
    if (r.type !== 'cas') throw new SimViolation('kv', `cas answered with a ${r.type} result`);
    return { ok: r.succeeded };
  }
  return {};
}
