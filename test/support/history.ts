/**
 * Client histories of the key-value API, as recorded by the simulator (test/sim) and the
 * Jepsen-style fault tests, and checked by `checkLinearizable` (./linearizability.ts).
 *
 * Each operation is one call of one client: when it was invoked, when (if ever) its response
 * arrived, and what the response said. Times are any monotonic numbers (simulator ticks,
 * `performance.now()`); two events at the same time are treated as concurrent.
 */

export type KvOp =
  | { kind: 'get'; key: string } // output: { value: string | null }
  | { kind: 'put'; key: string; value: string } // output: {}
  | { kind: 'cas'; key: string; expect: string | null; value: string } // output: { ok: boolean }
  | { kind: 'delete'; key: string }; // output: {}

export type KvOutput = { value?: string | null; ok?: boolean };

/**
 * - `ok`: the operation took effect, between `invoke` and `complete`, and returned `output`.
 * - `fail`: it definitely did not take effect (e.g. a 4xx, or 503 before anything was proposed).
 * - `unknown`: it may or may not have taken effect, at any time after `invoke` (e.g. 504, a
 *   timeout, a lost connection); `complete` and `output` are then ignored.
 */
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  /** Unique within the history. */
  id: number;
  /** A client issues one operation at a time. */
  client: number;
  op: KvOp;
  /** Time of invocation. */
  invoke: number;
  /** Time of the response; undefined = never returned (the outcome is unknown). */
  complete: number | undefined;
  status: OpStatus;
  /** The response of an `ok` operation. */
  output?: KvOutput;
}

/**
 * Records a history as it happens: `invoke` when a client sends a request, then exactly one of
 * `ok` / `fail` / `unknown` when it learns the outcome. Operations still open when `history()`
 * is called are reported as `unknown` with no completion time.
 *
 * Without a clock, time is a logical counter that advances by one per event, so the recorded
 * real-time order is exactly the order of the calls to the recorder.
 */
export class HistoryRecorder {
  private readonly ops: HistoryOp[] = [];
  private readonly open = new Map<number, HistoryOp>();
  private readonly clock: (() => number) | undefined;
  private logical = 0;

  constructor(clock?: () => number) {
    this.clock = clock;
  }

  private now(): number {
    return this.clock ? this.clock() : ++this.logical;
  }

  /** Records an invocation; returns the operation's id. */
  invoke(client: number, op: KvOp): number {
    const id = this.ops.length;
    const rec: HistoryOp = { id, client, op, invoke: this.now(), complete: undefined, status: 'unknown' };
    this.ops.push(rec);
    this.open.set(id, rec);
    return id;
  }

  ok(id: number, output: KvOutput = {}): void {
    const rec = this.close(id);
    rec.status = 'ok';
    rec.output = output;
  }

  fail(id: number): void {
    this.close(id).status = 'fail';
  }

  /** The outcome is unknown (e.g. a timeout or a 504); the client may go on to its next operation. */
  unknown(id: number): void {
    this.close(id).status = 'unknown';
  }

  history(): HistoryOp[] {
    return this.ops.map((o) => ({ ...o, op: { ...o.op }, ...(o.output ? { output: { ...o.output } } : {}) }));
  }

  private close(id: number): HistoryOp {
    const rec = this.open.get(id);
    if (!rec) throw new Error(`history: operation ${id} is not open`);
    this.open.delete(id);
    rec.complete = this.now();
    return rec;
  }
}

/** One JSON object per line (`complete: null` for an operation that never returned), for external checkers. */
export function historyToJsonLines(history: readonly HistoryOp[]): string {
  return history.map((o) => `${JSON.stringify({ ...o, complete: o.complete ?? null })}\n`).join('');
}

export function historyFromJsonLines(text: string): HistoryOp[] {
  const out: HistoryOp[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const o = JSON.parse(line) as Omit<HistoryOp, 'complete'> & { complete: number | null };
    out.push({ ...o, complete: o.complete ?? undefined });
  }
  return out;
}
