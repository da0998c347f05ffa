/**
 * The three ways the CLI writes an answer (`-w simple|json|table`), modelled
 * on etcdctl's: `simple` for people and shell pipelines (`get` prints each
 * key, then its value, on lines of their own), `json` for programs (the
 * client's answer, one JSON document per line), `table` an ASCII table.
 * Pure: each function returns what to write; main.ts writes it.
 */
import type { KeyValue } from '../client/index.ts';

export type OutputFormat = 'simple' | 'json' | 'table';

export const OUTPUT_FORMATS: readonly OutputFormat[] = ['simple', 'json', 'table'];

/** A chunk of output: a line of text, or the raw bytes of a value (each ends with a newline). */
export type Line = string | Uint8Array;

export interface Table {
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** One answer, as each format shows it; a view without a table prints its simple lines for `-w table`. */
export interface View {
  readonly simple: readonly Line[];
  readonly json: unknown;
  readonly table?: Table;
}

/** The lines `view` prints in `format`. */
export function render(format: OutputFormat, view: View): Line[] {
  if (format === 'json') return [toJson(view.json)];
  if (format === 'table' && view.table) return [formatTable(view.table)];
  return [...view.simple];
}

/**
 * An ASCII table in etcdctl's style: a rule, the headers, a rule, the rows, a
 * rule. Control characters in cells are escaped, so a row stays one line.
 */
export function formatTable(t: Table): string {
  const headers = t.headers.map(cell);
  const rows = t.rows.map((r) => headers.map((_, i) => cell(r[i] ?? '')));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (cells: readonly string[]): string =>
    `|${cells.map((c, i) => ` ${c.padEnd(widths[i] as number)} `).join('|')}|`;
  return [rule, line(headers), rule, ...rows.map(line), rule].join('\n');
}

/**
 * One line of JSON. A record's bytes are written as the API writes them:
 * `value` when they are UTF-8 text, else `valueBase64` (its lossy `text`
 * twin is left out); any other bytes as base64.
 */
export function toJson(value: unknown): string {
  return JSON.stringify(plain(value)) ?? 'null';
}

/** etcdctl's `get` in simple form: each key, then its value (unless keys only, or values only). */
export function kvLines(kvs: readonly KeyValue[], o: { keysOnly?: boolean; valuesOnly?: boolean } = {}): Line[] {
  const lines: Line[] = [];
  for (const kv of kvs) {
    if (!o.valuesOnly) lines.push(kv.key);
    if (!o.keysOnly) lines.push(kv.value);
  }
  return lines;
}

/** The table of a list of records. */
export function kvTable(kvs: readonly KeyValue[], o: { keysOnly?: boolean } = {}): Table {
  const headers = ['KEY', ...(o.keysOnly ? [] : ['VALUE']), 'CREATE_REVISION', 'MOD_REVISION', 'VERSION', 'LEASE'];
  const rows = kvs.map((kv) => [
    kv.key,
    ...(o.keysOnly ? [] : [kv.text]),
    String(kv.createRevision),
    String(kv.modRevision),
    String(kv.version),
    kv.lease ?? '',
  ]);
  return { headers, rows };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return base64(v);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const bytes = o.value instanceof Uint8Array && typeof o.text === 'string' ? o.value : undefined;
  for (const [k, x] of Object.entries(o)) {
    if (x === undefined) continue;
    if (bytes !== undefined && k === 'text') continue;
    if (bytes !== undefined && k === 'value') {
      const text = utf8OrUndefined(bytes);
      if (text === undefined) out.valueBase64 = base64(bytes);
      else out.value = text;
      continue;
    }
    out[k] = plain(x);
  }
  return out;
}

function utf8OrUndefined(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}

function base64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

function cell(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}
