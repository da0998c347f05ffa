/**
 * The runner's records, their conversion to the checker's HistoryOp
 * (test/support/history.ts), and the history file (`toFileLine`). In memory
 * a record is:
 *
 *   {"client":3,"op":"put"|"get"|"cas"|"delete","key":"k1","value":"v3-17"|null,
 *    "expected":"v2-12"|null,"ok":true|false|null,"output":"v3-17"|null,
 *    "call":ns,"return":ns|null,"error":"503"|null}
 *
 * - ok:true   the operation completed: get read `output` (null = absent); put/delete applied;
 *             cas applied `value` (its `output` is the key's value after it).
 * - ok:false  with error:null — only for cas — the comparison failed (a completed operation
 *             with no effect; `output` is the value it found); with an error (HTTP status or
 *             "ECONNREFUSED") — definitely not applied (400/404/409/412/503, refused connection).
 * - ok:null   the outcome is unknown (504, 500, client timeout, connection lost); `return` is
 *             when the client gave up, and the operation may take effect at any time after `call`.
 * `call`/`return` are nanoseconds since the runner started (process.hrtime.bigint()).
 */
import type { HistoryOp, KvOp } from '../../test/support/history.ts';

export interface JRecord {
  client: number;
  op: 'get' | 'put' | 'cas' | 'delete';
  key: string;
  value: string | null;
  expected: string | null;
  ok: boolean | null;
  output: string | null;
  call: number;
  return: number | null;
  error: string | null;
  /** The store revision an acknowledged write answered with (checked against the watchers; not in the file). */
  revision?: number;
}

export function toHistory(records: readonly JRecord[]): HistoryOp[] {
  return records.map((r, id) => {
    let op: KvOp;
    switch (r.op) {
      case 'get':
        op = { kind: 'get', key: r.key };
        break;
      case 'put':
        op = { kind: 'put', key: r.key, value: r.value ?? '' };
        break;
      case 'delete':
        op = { kind: 'delete', key: r.key };
        break;
      case 'cas':
        op = { kind: 'cas', key: r.key, expect: r.expected, value: r.value ?? '' };
        break;
    }
    const base = { id, client: r.client, op, invoke: r.call, complete: r.return ?? undefined };
    if (r.ok === null) return { ...base, status: 'unknown' as const };
    if (r.op === 'cas' && r.ok === false && r.error === null)
      return { ...base, status: 'ok' as const, output: { ok: false } };
    if (r.ok === false) return { ...base, status: 'fail' as const };
    if (r.op === 'get') return { ...base, status: 'ok' as const, output: { value: r.output } };
    if (r.op === 'cas') return { ...base, status: 'ok' as const, output: { ok: true } };
    return { ...base, status: 'ok' as const, output: {} };
  });
}

/** One line of the history file, exactly as README "Fault testing" documents it. */
export interface FileLine {
  client: number;
  op: JRecord['op'];
  key: string;
  value: string | null;
  expected: string | null;
  ok: boolean | null;
  output: string | null;
  call: number;
  return: number | null;
}

/**
 * A record as a history-file line: `ok` only for cas and delete, `output` only
 * for get, `return` null when the outcome is unknown. Operations refused before
 * they reached the log (an HTTP error that proves no effect, or a refused
 * connection) took no effect and are left out.
 */
export function toFileLine(r: JRecord): FileLine | undefined {
  const unknown = r.ok === null;
  const casCompareFailed = r.op === 'cas' && r.ok === false && r.error === null;
  if (!unknown && r.ok === false && !casCompareFailed) return undefined;
  return {
    client: r.client,
    op: r.op,
    key: r.key,
    value: r.op === 'put' || r.op === 'cas' ? r.value : null,
    expected: r.op === 'cas' ? r.expected : null,
    ok: unknown || r.op === 'get' || r.op === 'put' ? null : r.ok,
    output: r.op === 'get' && !unknown ? r.output : null,
    call: r.call,
    return: unknown ? null : r.return,
  };
}

/** A record as a short line for reports. */
export function describe(r: JRecord): string {
  const t = (ns: number | null) => (ns === null ? '-' : (ns / 1e9).toFixed(3));
  const arg = r.op === 'cas' ? `${r.expected}->${r.value}` : r.op === 'put' ? String(r.value) : '';
  const res =
    r.ok === null
      ? `unknown(${r.error})`
      : r.ok
        ? `ok ${r.output ?? ''}`
        : `fail(${r.error ?? 'cas'}) ${r.output ?? ''}`;
  return `c${r.client} ${r.op}(${r.key}${arg ? ` ${arg}` : ''}) [${t(r.call)}s..${t(r.return)}s] ${res}`;
}
