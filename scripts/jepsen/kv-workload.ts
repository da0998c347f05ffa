/**
 * `--workload kv` (the default): each client does linearizable get, put, cas
 * by value and delete on 5 keys, with unique values (`<tag>v<client>-<n>`).
 * After the run, every key is read once more (linearizable, retried until it
 * answers). Checks: (1) the history is linearizable (the checker in
 * test/support), (2) no acknowledged write is lost (the final value of each
 * key is the last acknowledged write, or a write that may have come after it).
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { checkLinearizable } from '../../test/support/linearizability.ts';
import { type Check, type HttpResult, http, nowNs, nowS, Rng, type Workload, type WorkloadContext } from './common.ts';
import { describe, type JRecord, toFileLine, toHistory } from './history.ts';
import { sleep } from './node-api.ts';

export const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];

/** The kv workload, with its records (the watchers' check reads the acknowledged writes' revisions). */
export interface KvWorkload extends Workload {
  /** Every operation, in the order the clients started them (the final reads last). */
  readonly records: JRecord[];
}

export interface KvOptions {
  /**
   * SELF-TEST ONLY (JEPSEN_SELF_TEST=misroute-reads): client 0 sends its gets
   * to this base, another group's routes, so the cross-group check must fail.
   */
  readonly misrouteReadsTo?: string;
}

export function kvWorkload(ctx: WorkloadContext, opts: KvOptions = {}): KvWorkload {
  const records: JRecord[] = [];
  const finals = new Map<string, string | null>();
  const running = Promise.all(
    Array.from({ length: ctx.clients }, (_, i) =>
      client(i, ctx, new Rng(ctx.seed * 1000 + i + 1), records, i === 0 ? opts.misrouteReadsTo : undefined),
    ),
  ).then(() => undefined);
  const sorted = () => [...records].sort((a, b) => a.call - b.call);
  return {
    records,
    running,
    check: async () => {
      for (const [k, v] of await finalReads(ctx, records, nowS() + 20)) finals.set(k, v);
      return kvChecks(sorted(), finals);
    },
    summary: (runS) => summary(records, runS),
    lines: () =>
      sorted().flatMap((r) => {
        const line = toFileLine(r);
        return line ? [JSON.stringify(line)] : [];
      }),
    written: () =>
      records.flatMap((r) =>
        (r.op === 'put' || r.op === 'cas') && r.value ? [{ value: r.value, what: describe(r) }] : [],
      ),
    observed: () => records.flatMap((r) => (r.output ? [{ value: r.output, what: describe(r) }] : [])),
  };
}

// ---- HTTP ----

/** Fills in ok/output/error of a write from its HTTP answer. */
function settleWrite(rec: JRecord, r: HttpResult): void {
  if ('error' in r) {
    rec.ok = r.refused ? false : null;
    rec.error = r.error;
    return;
  }
  if (r.status === 200 || (rec.op === 'delete' && r.status === 404)) {
    rec.ok = true;
    return;
  }
  rec.error = String(r.status);
  // 504 (outcome unknown) and 500 (anything unexpected) may have applied; the rest never did.
  rec.ok = r.status === 504 || (r.status >= 500 && r.status !== 503) ? null : false;
}

async function runOp(base: string, rec: JRecord, timeoutMs: number, readBase = base): Promise<void> {
  const key = encodeURIComponent(rec.key);
  if (rec.op === 'get') {
    const r = await http(readBase, 'GET', `/v1/kv/${key}`, undefined, timeoutMs);
    if ('error' in r) {
      rec.ok = r.refused ? false : null;
      rec.error = r.error;
    } else if (r.status === 200) {
      rec.ok = true;
      rec.output = r.text;
    } else if (r.status === 404 && r.text.includes('key_not_found')) {
      rec.ok = true;
      rec.output = null;
    } else {
      rec.ok = r.status === 503 ? false : null;
      rec.error = String(r.status);
    }
  } else if (rec.op === 'put' || rec.op === 'delete') {
    const r = await http(base, rec.op === 'put' ? 'PUT' : 'DELETE', `/v1/kv/${key}`, rec.value ?? undefined, timeoutMs);
    settleWrite(rec, r);
    // A delete that found nothing (404) wrote no revision.
    if (!('error' in r) && r.status === 200) rec.revision = (JSON.parse(r.text) as { revision: number }).revision;
  } else {
    const expect = rec.expected === null ? { absent: true } : { value: rec.expected };
    const r = await http(
      base,
      'POST',
      '/v1/cas',
      JSON.stringify({ key: rec.key, expect, value: rec.value }),
      timeoutMs,
    );
    if (!('error' in r) && r.status === 200) {
      const body = JSON.parse(r.text) as { succeeded: boolean; revision: number; current?: { value?: string } };
      rec.ok = body.succeeded;
      rec.output = body.current?.value ?? null;
      if (body.succeeded) rec.revision = body.revision;
    } else settleWrite(rec, r);
  }
  rec.return = nowNs();
}

// ---- clients ----

async function client(
  id: number,
  ctx: WorkloadContext,
  rng: Rng,
  out: JRecord[],
  readBase: string | undefined,
): Promise<void> {
  let n = 0;
  const seen = new Map<string, string | null>();
  while (nowS() < ctx.stop.at) {
    const key = rng.pick(KEYS);
    const x = rng.next();
    const op: JRecord['op'] = x < 0.4 ? 'get' : x < 0.65 ? 'put' : x < 0.9 ? 'cas' : 'delete';
    const value = op === 'put' || op === 'cas' ? `${ctx.tag}v${id}-${n++}` : null;
    const expected = op === 'cas' ? (rng.next() < 0.15 ? null : (seen.get(key) ?? null)) : null;
    const rec: JRecord = {
      client: id,
      op,
      key,
      value,
      expected,
      ok: null,
      output: null,
      call: nowNs(),
      return: null,
      error: null,
    };
    out.push(rec);
    await runOp(ctx.base, rec, ctx.opTimeoutMs, readBase);
    if (rec.ok === true && op === 'get') seen.set(key, rec.output);
    else if (rec.ok === true && (op === 'put' || op === 'cas')) seen.set(key, value);
    else if (rec.ok === true && op === 'delete') seen.set(key, null);
    else if (op === 'cas' && rec.ok === false && rec.error === null) seen.set(key, rec.output);
    if (rec.error !== null) await sleep(50 + rng.int(150));
  }
}

// ---- checks ----

/** Reads every key (linearizable) until it succeeds, as recorded ops of client `ctx.clients`. */
async function finalReads(ctx: WorkloadContext, out: JRecord[], deadline: number) {
  const result = new Map<string, string | null>();
  for (const key of KEYS) {
    while (nowS() < deadline) {
      const rec: JRecord = {
        client: ctx.clients,
        op: 'get',
        key,
        value: null,
        expected: null,
        ok: null,
        output: null,
        call: nowNs(),
        return: null,
        error: null,
      };
      out.push(rec);
      await runOp(ctx.base, rec, ctx.opTimeoutMs);
      if (rec.ok === true) {
        result.set(key, rec.output);
        break;
      }
      await sleep(200);
    }
  }
  return result;
}

function lostWrites(records: readonly JRecord[], finals: Map<string, string | null>): string[] {
  const lost: string[] = [];
  for (const w of records) {
    const wrote = (w.op === 'put' && w.ok === true) || (w.op === 'cas' && w.ok === true);
    if (!wrote || w.return === null) continue;
    if (!finals.has(w.key) || finals.get(w.key) === w.value) continue;
    // Another write on the key that had not finished before w started may come after it.
    const later = records.some(
      (o) => o !== w && o.key === w.key && o.op !== 'get' && o.ok !== false && (o.return === null || o.return > w.call),
    );
    if (!later) lost.push(`${describe(w)} — final value ${JSON.stringify(finals.get(w.key))}`);
  }
  return lost;
}

/** (1) linearizable, (2) no acknowledged write lost, of the records in call order. */
function kvChecks(sorted: JRecord[], finals: Map<string, string | null>): Check[] {
  const checks: Check[] = [];
  // (1) linearizability
  const hist = toHistory(sorted);
  const tCheck = Date.now();
  const lin = checkLinearizable(hist);
  const checkMs = Date.now() - tCheck;
  if (!lin.ok) {
    const lines = (lin.message ?? '').split('\n');
    const shown = lines.length > 40 ? [...lines.slice(0, 40), `    ... (${lines.length - 40} more lines)`] : lines;
    checks.push({ name: 'linearizable', ok: false, detail: shown.join('\n    ') });
  } else {
    checks.push({
      name: 'linearizable',
      ok: true,
      detail: `${lin.explored ?? 0} states, ${checkMs} ms${lin.inconclusive ? `; INCONCLUSIVE on ${lin.inconclusiveKeys?.join(',')}` : ''}`,
    });
  }
  // (2) no acknowledged write lost
  const missing = KEYS.filter((k) => !finals.has(k));
  const lost = lostWrites(sorted, finals);
  checks.push({
    name: 'no acked write lost',
    ok: lost.length === 0 && missing.length === 0,
    detail:
      missing.length > 0
        ? `final reads failed for ${missing.join(',')}`
        : lost.length === 0
          ? `final ${KEYS.map((k) => `${k}=${finals.get(k) ?? 'null'}`).join(' ')}`
          : `${lost.length} lost:\n      ${lost.slice(0, 10).join('\n      ')}`,
  });
  return checks;
}

function summary(records: readonly JRecord[], runS: number): string[] {
  const count = (f: (r: JRecord) => boolean) => records.filter(f).length;
  return [
    `  ops          ${records.length} in ${runS.toFixed(1)} s (${(records.length / runS).toFixed(0)}/s)`,
    `  outcomes     ok ${count((r) => r.ok === true)}, fail ${count((r) => r.ok === false && r.error !== null)}, cas-mismatch ${count((r) => r.op === 'cas' && r.ok === false && r.error === null)}, unknown ${count((r) => r.ok === null)}`,
    ...['get', 'put', 'cas', 'delete'].map(
      (op) =>
        `    ${op.padEnd(10)} ${String(count((r) => r.op === op)).padStart(5)} total, ${String(count((r) => r.op === op && r.ok === true)).padStart(5)} ok, ${String(count((r) => r.op === op && r.ok === null)).padStart(4)} unknown`,
    ),
  ];
}
