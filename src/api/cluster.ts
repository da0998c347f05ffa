/**
 * How the Worker reaches the cluster: it remembers the leader per isolate,
 * sends to it, follows `notLeader` hints and retries with jittered backoff,
 * all inside the request's deadline. It never guesses the outcome of a write:
 * a proposal that may have entered a leader's log and was not seen to apply
 * is `unknown` unless it carries a requestId (then a retry applies at most
 * once, so it is retried).
 */
import type { KeyValue, KvResult, Lease, RangeQuery, RangeReadResult, WatchFilter } from '../kv/index.ts';
import { type MetricsSnapshot, NO_GROUP_NODE } from '../node/node-object.ts';
import {
  type ChangeAnswer,
  type LeaseStatus,
  type RaftNode,
  type ReadAnswer,
  WATCH_SOCKET_PATH,
  type WatchAnswer,
} from '../node/raft-node.ts';
import type { Member } from '../node/settings.ts';
import { type WatchSocketProtocol, watchProtocolHeaders } from '../node/watch-sockets.ts';
import type { WatchSpec } from '../node/watch-streams.ts';
import type { Principal } from './auth.ts';
import { ApiError } from './errors.ts';

type NodeStub = DurableObjectStub<RaftNode>;
export type NodeStatus = Awaited<ReturnType<RaftNode['status']>>;
export type Consistency = 'linearizable' | 'serializable';

export type WriteOutcome<R> =
  | { readonly kind: 'applied'; readonly result: R; readonly member: string; readonly term: number }
  /** Sent, maybe committed, not seen to apply: report unknown (504). */
  | { readonly kind: 'unknown'; readonly detail: string }
  /** Never entered any log (no leader or quorum within the deadline): 503. */
  | { readonly kind: 'unavailable'; readonly detail: string }
  /** The leader refused it for good (invalid): 409. */
  | { readonly kind: 'rejected'; readonly detail: string };

export type ReadResult<T> =
  | {
      readonly kind: 'ok';
      readonly value: T;
      readonly revision: number;
      readonly stale: boolean;
      readonly member: string;
      readonly term: number;
    }
  | { readonly kind: 'unavailable'; readonly detail: string }
  /** The revision asked for is below the compaction point (etcd's ErrCompacted). */
  | { readonly kind: 'compacted'; readonly compacted: number }
  /** The revision asked for is past the store's (etcd's ErrFutureRev). */
  | { readonly kind: 'futureRevision'; readonly revision: number };

/** A range read that answered. */
export type RangeRead = Extract<ReadResult<RangeReadResult>, { kind: 'ok' }>;

export type WatchOpened =
  | {
      readonly kind: 'ok';
      readonly stream: ReadableStream<Uint8Array>;
      readonly revision: number;
      readonly member: string;
    }
  | { readonly kind: 'compacted'; readonly compacted: number; readonly revision: number; readonly member: string }
  | { readonly kind: 'unavailable'; readonly detail: string };

/** The leader each cluster (by prefix: the default group, each other group) was last seen with, per isolate. */
const leaders = new Map<string, string>();
/** The term that leader answered in (for etcd's response headers). */
const terms = new Map<string, number>();
/** Clusters remembered at most (groups: the least recently changed out first; one more hop to learn again). */
const LEADERS_MAX = 4096;

/** Forget remembered leaders (tests). */
export function forgetLeaders(): void {
  leaders.clear();
  terms.clear();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class RpcTimeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: number | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RpcTimeout('rpc timeout')), ms);
  });
  return Promise.race([p, t]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/**
 * Logs why a call to a node failed and returns what clients may read:
 * exception texts stay in the logs. A group's node that is not there (the
 * group was deleted, seen through a cache that did not know yet) ends the
 * request at once: 404 group_not_found, not retries until the deadline.
 */
function callFailed(target: string, e: unknown): string {
  if (e instanceof RpcTimeout) return 'no answer in time';
  if (e instanceof Error && e.message.includes(NO_GROUP_NODE))
    throw new ApiError(404, 'group_not_found', 'no such group: it was deleted');
  console.warn(`call to ${target} failed:`, e);
  return 'the call failed';
}

/** Object ids by name, per namespace: hashing a name is a few percent of a get's time; an id is a plain value. */
const objectIds = new WeakMap<DurableObjectNamespace<RaftNode>, Map<string, DurableObjectId>>();
const OBJECT_IDS_MAX = 4096;

function objectId(ns: DurableObjectNamespace<RaftNode>, name: string): DurableObjectId {
  let ids = objectIds.get(ns);
  if (!ids) {
    ids = new Map();
    objectIds.set(ns, ids);
  }
  let id = ids.get(name);
  if (!id) {
    // The oldest out (many groups: more names than fit).
    if (ids.size >= OBJECT_IDS_MAX) ids.delete(ids.keys().next().value as string);
    id = ns.idFromName(name);
    ids.set(name, id);
  }
  return id;
}

export class ClusterClient {
  private readonly ns: DurableObjectNamespace<RaftNode>;
  private readonly members: readonly Member[];
  private readonly prefix: string;
  private readonly deadline: number;

  constructor(ns: DurableObjectNamespace, members: readonly Member[], prefix: string, deadline: number) {
    this.ns = ns as unknown as DurableObjectNamespace<RaftNode>;
    this.members = members;
    this.prefix = prefix;
    this.deadline = deadline;
  }

  remaining(): number {
    return this.deadline - Date.now();
  }

  /** The stub of member `id`: a fresh one each time (a stub that saw its object crash stays broken). */
  stub(id: string): NodeStub {
    const hint = this.members.find((m) => m.id === id)?.locationHint;
    return this.ns.get(objectId(this.ns, this.prefix + id), hint ? { locationHint: hint } : undefined);
  }

  knownLeader(): string | undefined {
    return leaders.get(this.prefix);
  }

  /** The term the known leader last answered in (0 if none is known). */
  knownTerm(): number {
    return leaders.has(this.prefix) ? (terms.get(this.prefix) ?? 0) : 0;
  }

  private remember(id: string, term?: number): void {
    // Written only when the leader changes (every answer calls this): the Map's order is then least
    // recently changed first, which is what the bound evicts.
    if (leaders.get(this.prefix) !== id) {
      leaders.delete(this.prefix);
      leaders.set(this.prefix, id);
    }
    if (term !== undefined && term > 0) terms.set(this.prefix, term);
    while (leaders.size > LEADERS_MAX) {
      const oldest = leaders.keys().next().value as string;
      leaders.delete(oldest);
      terms.delete(oldest);
    }
  }

  private forget(id: string): void {
    if (leaders.get(this.prefix) === id) leaders.delete(this.prefix);
  }

  /** The member after `id` in the configured order (a random one for undefined). */
  private next(id: string | undefined): string {
    const ids = this.members.map((m) => m.id);
    const i = id === undefined ? -1 : ids.indexOf(id);
    if (i < 0) return ids[Math.floor(Math.random() * ids.length)] ?? '';
    return ids[(i + 1) % ids.length] ?? '';
  }

  /**
   * Where to go after `target` said it does not lead: to its hint at once
   * (`hops` counts such jumps; above 0 means go now), but a run of hints
   * without progress falls back to pausing (hops 0) before the next try.
   */
  private afterNotLeader(target: string, hint: string | undefined, hops: number): { target: string; hops: number } {
    const useful = hint !== undefined && hint !== '' && hint !== target;
    if (useful && hops < 2 * this.members.length) return { target: hint, hops: hops + 1 };
    return { target: useful ? hint : this.next(target), hops: 0 };
  }

  private first(): string {
    return this.knownLeader() ?? this.next(undefined);
  }

  /** Sleeps a jittered, growing pause (never past the deadline); false if the deadline has passed. */
  private async backoff(attempt: number): Promise<boolean> {
    const base = Math.min(20 * 2 ** attempt, 500);
    const pause = Math.min(base / 2 + Math.random() * (base / 2), this.remaining() - 1);
    if (pause > 0) await sleep(pause);
    return this.remaining() > 0;
  }

  /**
   * Proposes `command` until it applies, or the deadline. `retryUnknown`:
   * the command carries a requestId, so sending it again after an unknown
   * outcome applies it at most once.
   */
  async propose(command: Uint8Array, retryUnknown: boolean): Promise<WriteOutcome<KvResult>> {
    return this.proposeWith((s, ms) => s.propose(command, ms), retryUnknown);
  }

  async changeMembership(cc: {
    type: 'addLearner' | 'addVoter' | 'promote' | 'remove';
    node: string;
  }): Promise<WriteOutcome<unknown>> {
    return this.proposeWith((s, ms) => s.changeMembership(cc, ms), false);
  }

  private async proposeWith<R>(
    send: (
      s: NodeStub,
      timeoutMs: number,
    ) => Promise<{ status: string; leader?: string; result?: R; reason?: string; code?: string; term?: number }>,
    retryUnknown: boolean,
  ): Promise<WriteOutcome<R>> {
    let target = this.first();
    let sent = false;
    let last = 'no answer';
    let hops = 0;
    for (let attempt = 0; this.remaining() > 0; ) {
      const ms = this.remaining();
      let out: { status: string; leader?: string; result?: R; reason?: string; code?: string; term?: number };
      try {
        out = await withTimeout(send(this.stub(target), ms), ms + 250);
      } catch (e) {
        out = { status: 'error', reason: callFailed(target, e) };
      }
      switch (out.status) {
        case 'applied':
          this.remember(target, out.term);
          return { kind: 'applied', result: out.result as R, member: target, term: out.term ?? 0 };
        case 'notLeader':
          last = `${target} is not the leader`;
          this.forget(target);
          ({ target, hops } = this.afterNotLeader(target, out.leader, hops));
          if (hops > 0) continue;
          break;
        case 'refused':
          last = `${target} refused: ${out.reason ?? ''}`;
          // Transient refusals (a leadership transfer, a membership change not applied yet) are retried.
          if (out.code === 'invalid') return { kind: 'rejected', detail: out.reason ?? 'invalid' };
          if (out.code === 'noQuorum') {
            // A leader cut off from its followers: another node may be electing its successor.
            this.forget(target);
            target = this.next(target);
          } else if (out.leader) target = out.leader;
          break;
        case 'dropped':
          // Replaced in the log by another leader's entry: it never applies, so it is safe to send again.
          last = 'dropped by a new leader';
          this.forget(target);
          break;
        default:
          // unknown, timeout, or the RPC failed: the entry may be in a leader's log.
          sent = true;
          last = `${target}: ${out.status}${out.reason ? ` (${out.reason})` : ''}`;
          this.forget(target);
          if (!retryUnknown) return { kind: 'unknown', detail: last };
          target = this.next(target);
      }
      if (!(await this.backoff(attempt++))) break;
    }
    return sent ? { kind: 'unknown', detail: last } : { kind: 'unavailable', detail: last };
  }

  /** A key now, or as of `revision`. */
  async get(key: string, consistency: Consistency, revision?: number): Promise<ReadResult<KeyValue | undefined>> {
    return this.read((s, ms) => s.get(key, consistency, ms, revision), consistency);
  }

  /** A range now, or as of `revision`. */
  async range(query: RangeQuery, consistency: Consistency, revision?: number): Promise<ReadResult<RangeReadResult>> {
    return this.read((s, ms) => s.range(query, consistency, ms, revision), consistency);
  }

  /** Renews a lease on the leader: its TTL, or undefined if there is no such lease. */
  async leaseKeepAlive(id: number): Promise<ReadResult<{ ttl: number } | undefined>> {
    return this.read((s, ms) => s.leaseKeepAlive(id, ms), 'linearizable');
  }

  /** A lease's status by the leader's clock, or undefined if there is no such lease. */
  async leaseStatus(id: number, keys: boolean): Promise<ReadResult<LeaseStatus | undefined>> {
    return this.read((s, ms) => s.leaseStatus(id, keys, ms), 'linearizable');
  }

  /** Several leases' statuses by the leader's clock (those that exist; at most MAX_LEASE_STATUSES ids). */
  async leaseStatuses(ids: readonly number[]): Promise<ReadResult<LeaseStatus[]>> {
    return this.read((s, ms) => s.leaseStatuses(ids, ms), 'linearizable');
  }

  async leaseList(after: number, limit: number): Promise<ReadResult<Lease[]>> {
    return this.read((s, ms) => s.leaseList(after, limit, ms), 'linearizable');
  }

  private async read<T>(
    call: (s: NodeStub, timeoutMs: number) => Promise<ReadAnswer<T>>,
    consistency: Consistency,
  ): Promise<ReadResult<T>> {
    let target = this.first();
    let last = 'no answer';
    let hops = 0;
    for (let attempt = 0; this.remaining() > 0; ) {
      const rem = this.remaining();
      // Leave time for a second node if this one hangs.
      const ms = Math.max(1, Math.min(rem, Math.max(rem / 2, 1000)));
      let out: ReadAnswer<T> | { status: 'error'; reason: string };
      try {
        out = (await withTimeout(call(this.stub(target), ms), ms + 250)) as ReadAnswer<T>;
      } catch (e) {
        out = { status: 'error', reason: callFailed(target, e) };
      }
      if (out.status === 'ok') {
        if (consistency === 'linearizable') this.remember(target, out.term);
        return {
          kind: 'ok',
          value: out.value,
          revision: out.revision,
          stale: out.stale,
          member: target,
          term: out.term,
        };
      }
      if (out.status === 'compacted') return { kind: 'compacted', compacted: out.compacted };
      if (out.status === 'futureRevision') return { kind: 'futureRevision', revision: out.revision };
      this.forget(target);
      if (out.status === 'notLeader') {
        last = `${target} is not the leader`;
        ({ target, hops } = this.afterNotLeader(target, out.leader, hops));
        if (hops > 0) continue;
      } else {
        last = `${target}: ${out.status}`;
        target = this.next(target);
      }
      if (!(await this.backoff(attempt++))) break;
    }
    return { kind: 'unavailable', detail: last };
  }

  /**
   * Opens a watch on some replica: watches are spread over the members (any
   * replica serves them, as any etcd member does); one that does not answer
   * is skipped for the next, within the deadline.
   */
  async watch(spec: WatchSpec): Promise<WatchOpened> {
    let target = this.next(undefined);
    let last = 'no answer';
    for (let attempt = 0; this.remaining() > 0; ) {
      const ms = Math.max(1, Math.min(this.remaining(), 2000));
      try {
        const out = (await withTimeout(this.stub(target).watchEvents(spec) as Promise<WatchAnswer>, ms)) as WatchAnswer;
        if (out.status === 'compacted')
          return { kind: 'compacted', compacted: out.compacted, revision: out.revision, member: target };
        return { kind: 'ok', stream: out.stream, revision: out.revision, member: target };
      } catch (e) {
        last = `${target}: ${callFailed(target, e)}`;
      }
      target = this.next(target);
      if (!(await this.backoff(attempt++))) break;
    }
    return { kind: 'unavailable', detail: last };
  }

  /**
   * Waits (until the deadline) for the first revision from `fromRevision`
   * with an event `filter` passes: a one-shot watch, on the leader if known
   * (it applies first), else any replica that answers.
   */
  async nextChange(filter: WatchFilter, fromRevision: number): Promise<ChangeAnswer | { status: 'unavailable' }> {
    let target = this.first();
    for (let attempt = 0; this.remaining() > 0; ) {
      const ms = this.remaining();
      try {
        return (await withTimeout(
          this.stub(target).nextChange(filter, fromRevision, ms) as Promise<ChangeAnswer>,
          ms + 250,
        )) as ChangeAnswer;
      } catch (e) {
        callFailed(target, e);
      }
      target = this.next(target);
      if (!(await this.backoff(attempt++))) break;
    }
    return { status: 'unavailable' };
  }

  /** The same cluster with another deadline (a lock or election wait outlives the usual one). */
  withDeadline(deadline: number): ClusterClient {
    return new ClusterClient(this.ns as unknown as DurableObjectNamespace, this.members, this.prefix, deadline);
  }

  /**
   * Forwards a WebSocket upgrade for watches to some replica (spread like SSE
   * watches); undefined if none answers. `protocol`: what the socket speaks,
   * /v1's JSON or etcd's gateway messages (watch-sockets.ts), told to the
   * node in a header.
   */
  async watchSocket(
    principal: Principal,
    protocol: WatchSocketProtocol = { kind: 'v1' },
  ): Promise<Response | undefined> {
    let target = this.next(undefined);
    for (let attempt = 0; this.remaining() > 0; ) {
      try {
        const res = await withTimeout(
          this.stub(target).fetch(`https://node${WATCH_SOCKET_PATH}`, {
            headers: {
              upgrade: 'websocket',
              'x-watch-principal': JSON.stringify(principal),
              'x-raft-node': this.prefix + target,
              ...watchProtocolHeaders(protocol),
            },
          }),
          Math.max(1, Math.min(this.remaining(), 2000)),
        );
        if (res.status === 101) return res;
        await res.body?.cancel();
      } catch (e) {
        callFailed(target, e);
      }
      target = this.next(target);
      if (!(await this.backoff(attempt++))) break;
    }
    return undefined;
  }

  /** One node's status, or undefined if it does not answer in time. */
  async status(id: string, timeoutMs = Math.max(1, Math.min(this.remaining(), 2000))): Promise<NodeStatus | undefined> {
    try {
      return (await withTimeout(this.stub(id).status(), timeoutMs)) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** One member's metrics (see src/node/metrics.ts), or undefined if it does not answer before the deadline. */
  async metrics(id: string): Promise<MetricsSnapshot | undefined> {
    const ms = this.remaining();
    if (ms <= 0) return undefined;
    try {
      return (await withTimeout(this.stub(id).metrics() as Promise<MetricsSnapshot>, ms)) as MetricsSnapshot;
    } catch {
      return undefined;
    }
  }

  /**
   * The leader's status, found by asking members (without waking a quiet
   * cluster: status never ticks), or undefined within the deadline.
   */
  async findLeader(): Promise<NodeStatus | undefined> {
    let target = this.first();
    for (let attempt = 0; this.remaining() > 0; ) {
      const st = await this.status(target);
      if (st?.role === 'leader') {
        this.remember(target, st.term);
        return st;
      }
      this.forget(target);
      const hint = st?.leaderHint;
      const follow = hint !== undefined && hint !== '' && hint !== target;
      target = follow ? hint : this.next(target);
      if (!follow && !(await this.backoff(attempt++))) break;
    }
    return undefined;
  }

  /** A linearizable read barrier on `id` (proves a leader with a quorum). */
  async barrier(id: string): Promise<boolean> {
    const ms = Math.max(1, Math.min(this.remaining(), 2000));
    try {
      const r = (await withTimeout(this.stub(id).readBarrier(ms) as Promise<{ status: string }>, ms + 250)) as {
        status: string;
      };
      return r.status === 'ready';
    } catch {
      return false;
    }
  }

  async transferLeadership(from: string, to: string): Promise<void> {
    await withTimeout(this.stub(from).transferLeadership(to), Math.max(1, this.remaining()));
  }

  pause(attempt: number): Promise<boolean> {
    return this.backoff(attempt);
  }
}
