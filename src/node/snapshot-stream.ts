import type { ConfState, Index, Message, NodeId, Rng, Term } from '../raft/index.ts';
import { type ChunkCursor, type ExportInfo, encodeSnapshotRef, type SnapshotTables, START } from '../storage/index.ts';
import { type AckMsg, type ChunkMsg, encodeStreamMsg, SNAPSHOT_PATH } from '../transport/index.ts';

/** Each chunk's rows stay within this many bytes (a single larger row goes alone). */
export const CHUNK_BYTES = 960 * 1024;

type SnapshotMessage = Extract<Message, { type: 'snapshot' }>;

/** What the stream needs of its node. */
export interface StreamHost {
  readonly self: NodeId;
  readonly tables: SnapshotTables;
  now(): number;
  readonly rng: Rng;
  /** The state machine's applied index, its term and the membership as of it: where an export is taken. */
  appliedPoint(): { index: Index; term: Term; conf: ConfState };
  /** This node's term, and whether it leads it. */
  term(): { term: Term; leader: boolean };
  /** Sends a body to another node's internal route now; `onFail` if it does not arrive. */
  post(to: NodeId, path: string, body: Uint8Array, onFail: () => void): void;
  /** Queues a Raft message with the event's other messages. */
  sendRaft(m: Message): void;
  /** A session with no progress for this long is resent from its current chunk. */
  readonly staleMs: number;
}

interface Session {
  readonly to: NodeId;
  readonly id: string;
  readonly term: Term;
  export: ExportInfo;
  seq: number;
  cursor: ChunkCursor;
  /** Where the chunk in flight ends. */
  next: ChunkCursor;
  /** Every chunk is acknowledged: the install message is out. */
  installing: boolean;
  lastProgressAt: number;
}

/**
 * Snapshots streamed in chunks (Raft §7 InstallSnapshot, with the data
 * split as the paper allows). The core asks for a snapshot with a
 * `snapshot` message; instead of sending the state in it, the leader
 * exports its kv tables (keys, requests, history, leases) at its applied
 * index and sends them a chunk per event: the follower stages each chunk
 * and acknowledges it, and that ack (a fresh event) sends the next, so no
 * event sends more than one. When every chunk is staged, the leader sends the
 * core's snapshot message, whose data only names the staged import;
 * stepping it installs the import atomically with the log reset. Memory
 * holds one chunk at a time.
 */
export class SnapshotStream {
  private readonly host: StreamHost;
  private readonly sessions = new Map<NodeId, Session>();
  /** Counters for the status page: chunks sent, the largest chunk's bytes, installs sent, exports taken. */
  readonly stats = { chunks: 0, maxChunkBytes: 0, installs: 0, exports: 0 };

  constructor(host: StreamHost) {
    this.host = host;
  }

  /** The core wants `m.to` to get a snapshot at least as new as `m.snapshot.meta.index`. */
  request(m: SnapshotMessage): void {
    const h = this.host;
    const now = h.now();
    const current = h.tables.exportInfo();
    const s = this.sessions.get(m.to);
    const sameExport = current?.generation === s?.export.generation;
    if (s && s.term === m.term && sameExport && s.export.index >= m.snapshot.meta.index && !s.installing) {
      // The core retries while the stream is still under way: resend only the chunk that seems lost.
      if (now - s.lastProgressAt < h.staleMs) return;
      s.lastProgressAt = now;
      this.sendChunk(s);
      return;
    }
    if (s?.installing && s.term === m.term && now - s.lastProgressAt < h.staleMs) return;
    // Otherwise start over: no session, a new term, an export replaced or too old for what the
    // follower needs, or an install that did not take (it may have lost its staged import).
    let exp = current;
    if (!exp || exp.index < m.snapshot.meta.index) {
      // The newest export is older than the snapshot the core asks for: take a new one.
      const p = h.appliedPoint();
      exp = h.tables.exportNow(p.index, p.term, p.conf);
      this.stats.exports++;
    }
    this.start(m.to, m.term, exp);
  }

  /** An acknowledgement from a follower: send the next chunk, or the install once all are staged. */
  onAck(a: AckMsg): void {
    const s = this.sessions.get(a.from);
    if (!s || s.id !== a.session) return;
    const { term, leader } = this.host.term();
    if (!leader || term !== s.term) {
      this.sessions.delete(a.from);
      return;
    }
    const current = this.host.tables.exportInfo();
    if (!current || current.generation !== s.export.generation || !a.ok) {
      // The export was replaced under the stream, or the follower lost its place: start over.
      this.start(s.to, s.term, current ?? s.export);
      return;
    }
    if (a.seq !== s.seq || s.installing) return;
    s.lastProgressAt = this.host.now();
    if (s.next.phase === 'done') {
      s.installing = true;
      this.sendInstall(s);
      return;
    }
    s.seq++;
    s.cursor = s.next;
    this.sendChunk(s);
  }

  /** Forgets every session (leadership lost, or the node restarts). */
  reset(): void {
    this.sessions.clear();
  }

  private start(to: NodeId, term: Term, exp: ExportInfo): void {
    const s: Session = {
      to,
      id: `${this.host.self}.${term}.${this.host.rng.int(2 ** 31).toString(36)}`,
      term,
      export: exp,
      seq: 0,
      cursor: START,
      next: START,
      installing: false,
      lastProgressAt: this.host.now(),
    };
    this.sessions.set(to, s);
    this.sendChunk(s);
  }

  private sendChunk(s: Session): void {
    const { chunk, next } = this.host.tables.readChunk(s.cursor, CHUNK_BYTES);
    s.next = next;
    const e = s.export;
    const msg: ChunkMsg = {
      kind: 'chunk',
      from: this.host.self,
      to: s.to,
      term: s.term,
      session: s.id,
      seq: s.seq,
      kv: chunk.kv,
      req: chunk.req,
      hist: chunk.hist,
      lease: chunk.lease,
      ...(next.phase === 'done' ? { point: { index: e.index, term: e.term, meta: e.meta } } : {}),
    };
    const body = encodeStreamMsg(msg);
    this.stats.chunks++;
    this.stats.maxChunkBytes = Math.max(this.stats.maxChunkBytes, body.byteLength);
    this.host.post(s.to, SNAPSHOT_PATH, body, () => {
      s.lastProgressAt = 0;
    });
  }

  private sendInstall(s: Session): void {
    const e = s.export;
    this.stats.installs++;
    this.host.sendRaft({
      type: 'snapshot',
      from: this.host.self,
      to: s.to,
      term: s.term,
      snapshot: { meta: { index: e.index, term: e.term, conf: e.conf }, data: encodeSnapshotRef(s.id) },
    });
  }
}

/** The follower's side: stage a chunk and acknowledge it. Chunks of an older term than ours are dropped. */
export function stageChunk(
  tables: SnapshotTables,
  c: ChunkMsg,
  ourTerm: Term,
  post: (to: NodeId, body: Uint8Array) => void,
): void {
  if (c.term < ourTerm) return;
  const result = tables.stage(c.session, c.seq, { kv: c.kv, req: c.req, hist: c.hist, lease: c.lease }, c.point);
  const ack: AckMsg = { kind: 'ack', from: c.to, to: c.from, session: c.session, seq: c.seq, ok: result === 'ok' };
  post(c.from, encodeStreamMsg(ack));
}
