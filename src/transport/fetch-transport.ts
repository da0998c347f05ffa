import type { Transport } from '../driver/index.ts';
import type { Message, NodeId } from '../raft/index.ts';
import { encodeEnvelope } from './codec.ts';
import type { FaultLayer } from './faults.ts';

/** Anything with a web-standard fetch: a Durable Object stub, a service binding. */
export interface Peer {
  fetch(url: string, init: RequestInit): Promise<Response>;
}

export const RAFT_PATH = '/internal/raft';

export interface FetchTransportOptions {
  readonly self: NodeId;
  readonly peer: (id: NodeId) => Peer | undefined;
  /** A peer that does not answer in time is reported unreachable; its message is lost (Raft retries). */
  readonly timeoutMs: number;
  readonly onUnreachable: (id: NodeId) => void;
  /** A peer answered a batch with a batch of its own (its replies to us, in the response body). */
  readonly onReply?: (from: NodeId, body: Uint8Array) => void;
  readonly faults?: FaultLayer | undefined;
  /** A body left for `to` (a post, or a reply riding in a response) with messages of these types (none: a stream message). */
  readonly onSent?: (to: NodeId, bytes: number, types: readonly string[]) => void;
  /** A post to `to` failed or got no answer in time. */
  readonly onSendFailed?: (to: NodeId) => void;
}

/**
 * Sends Raft messages as msgpack envelopes, one POST per peer per batch, to
 * the peer's internal route. `send` only queues; `flush` starts the fetches,
 * so the runtime can send after its storage transaction has committed.
 * Sends are fire-and-forget: the caller never awaits them, so a slow or dead
 * peer holds up no one.
 *
 * Replies ride back in the response: while handling a peer's batch, the
 * messages for that peer are returned by `flush` as the response body
 * instead of being posted (`onReply` delivers them on the other side). An
 * AppendEntries reply then costs no request of its own, and the platform's
 * output gate holds the response until the writes it acknowledges are
 * durable, as it would hold a new request.
 */
export class FetchTransport implements Transport {
  private readonly opts: FetchTransportOptions;
  /** Fetches started since the last `resetCount`, to keep each event under the subrequest limit. */
  sentThisEvent = 0;
  maxSentPerEvent = 0;

  constructor(opts: FetchTransportOptions) {
    this.opts = opts;
  }

  resetCount(): void {
    this.sentThisEvent = 0;
  }

  private queue: Message[] = [];

  send(messages: readonly Message[]): void {
    for (const m of messages) this.queue.push(m);
  }

  /**
   * Starts one POST per peer with everything queued; `quiet` tells followers
   * the leader goes to sleep. Messages for `replyTo` (the peer whose batch
   * is being handled) are returned as an envelope for the response instead,
   * unless a fault rule would drop, delay or duplicate them.
   */
  flush(quiet = false, replyTo?: NodeId): Uint8Array | undefined {
    const messages = this.queue;
    if (messages.length === 0) return undefined;
    this.queue = [];
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      const list = byPeer.get(m.to);
      if (list) list.push(m);
      else byPeer.set(m.to, [m]);
    }
    let reply: Uint8Array | undefined;
    for (const [to, msgs] of byPeer) {
      const plan = this.opts.faults?.plan(this.opts.self, to) ?? { copies: 1, delayMs: 0 };
      const body = encodeEnvelope(this.opts.self, msgs, quiet);
      const types = msgs.map((m) => m.type);
      if (to === replyTo && plan.copies === 1 && plan.delayMs === 0) {
        this.opts.onSent?.(to, body.byteLength, types);
        reply = body;
        continue;
      }
      for (let i = 0; i < plan.copies; i++) {
        if (this.post(to, RAFT_PATH, body, plan.delayMs, () => this.opts.onUnreachable(to)))
          this.opts.onSent?.(to, body.byteLength, types);
      }
    }
    return reply;
  }

  /** Sends one body to another internal route of `to` now, under the same fault rules, count and timeout. */
  postNow(to: NodeId, path: string, body: Uint8Array, onFail: () => void): void {
    const plan = this.opts.faults?.plan(this.opts.self, to) ?? { copies: 1, delayMs: 0 };
    if (plan.copies === 0) return;
    if (this.post(to, path, body, plan.delayMs, onFail)) this.opts.onSent?.(to, body.byteLength, []);
  }

  /** Starts one POST; false if `to` is no known peer (nothing was sent). */
  private post(to: NodeId, path: string, body: Uint8Array, delayMs: number, onFail: () => void): boolean {
    const peer = this.opts.peer(to);
    if (!peer) return false;
    this.sentThisEvent++;
    this.maxSentPerEvent = Math.max(this.maxSentPerEvent, this.sentThisEvent);
    const go = async () => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      // A cleared timer rather than AbortSignal.timeout: the latter stays
      // armed after the reply, and an isolate may hold only so many timers.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), this.opts.timeoutMs);
      try {
        const res = await peer.fetch(`https://raft.internal${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/msgpack' },
          body,
          signal: abort.signal,
        });
        if (!res.ok) {
          await res.body?.cancel();
          throw new Error(`peer ${to} answered ${res.status}`);
        }
        const reply = path === RAFT_PATH && res.status === 200 ? new Uint8Array(await res.arrayBuffer()) : undefined;
        if (!reply) await res.body?.cancel();
        else if (reply.byteLength > 0) this.opts.onReply?.(to, reply);
      } finally {
        clearTimeout(timer);
      }
    };
    go().catch(() => {
      this.opts.onSendFailed?.(to);
      onFail();
    });
    return true;
  }
}
