/**
 * The CLI's argument parser, with no dependency and no I/O: flags as
 * `--name value`, `--name=value`, `-x value` or `-x=value`, booleans as
 * `--name` (or `--name=true|false`), and `--` ending the flags. Anything it
 * cannot make sense of is a UsageError (exit code 2).
 */

/** What a flag holds: a string, a whole number (0 or more), or a boolean that takes no value. */
export type FlagType = 'string' | 'number' | 'boolean';

export interface FlagSpec {
  readonly type: FlagType;
  /** A one-letter alias, without its dash (`w` for `-w`). */
  readonly short?: string;
  /** The value's placeholder in help (`N`, `ID`). */
  readonly value?: string;
  readonly help: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export type FlagValue = string | number | boolean;

export interface ParsedArgs {
  /** Each flag given, by its long name (the last one wins when given twice). */
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly positionals: readonly string[];
}

export interface ParseOptions {
  /**
   * Once this many positionals are read, the next positional and everything
   * after it are positionals as written (a command line to run: `lock NAME cmd -x`).
   */
  readonly restAfter?: number;
}

/** A command line the CLI cannot run as written: printed with the usage line, exit code 2. */
export class UsageError extends Error {
  override readonly name: string = 'UsageError';
}

/** Parses `argv` against `specs`; throws a UsageError for an unknown flag or a bad value. */
export function parseArgs(argv: readonly string[], specs: FlagSpecs, o: ParseOptions = {}): ParsedArgs {
  const flags: Record<string, FlagValue> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!isFlag(token)) {
      if (o.restAfter !== undefined && positionals.length >= o.restAfter) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(token);
      continue;
    }
    const { name, spec, inline } = flagOf(token, specs);
    if (spec.type === 'boolean') {
      flags[name] = inline === undefined ? true : booleanOf(name, inline);
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
      raw = next;
      i++;
    }
    flags[name] = spec.type === 'number' ? wholeNumber(`--${name}`, raw) : raw;
  }
  return { flags, positionals };
}

/**
 * The index of the first positional of `argv`, skipping flags of `specs` and
 * their values (-1 if none comes before `--` or the end). Used to find the
 * command words before the command, hence its flags, is known.
 */
export function firstPositional(argv: readonly string[], specs: FlagSpecs): number {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') return -1;
    if (!isFlag(token)) return i;
    const { name, inline } = splitFlag(token);
    const spec = specs[name] ?? Object.values(specs).find((s) => s.short === name);
    if (spec !== undefined && spec.type !== 'boolean' && inline === undefined) i++;
  }
  return -1;
}

/** A whole number of 0 or more, written in decimal digits. */
export function wholeNumber(what: string, raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw new UsageError(`${what} must be a whole number, not ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** A duration as `500ms`, `5s`, `2m`, or a bare number of seconds: in milliseconds. */
export function parseDuration(what: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(raw);
  if (!m) throw new UsageError(`${what} must be a duration such as 500ms, 5s or 2m, not ${JSON.stringify(raw)}`);
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  if (ms < 1) throw new UsageError(`${what} must be at least 1ms`);
  return Math.round(ms);
}

function isFlag(token: string): boolean {
  return token.startsWith('-') && token !== '-';
}

function splitFlag(token: string): { name: string; inline: string | undefined } {
  const body = token.startsWith('--') ? token.slice(2) : token.slice(1);
  const eq = body.indexOf('=');
  return eq < 0 ? { name: body, inline: undefined } : { name: body.slice(0, eq), inline: body.slice(eq + 1) };
}

function flagOf(token: string, specs: FlagSpecs): { name: string; spec: FlagSpec; inline: string | undefined } {
  const { name, inline } = splitFlag(token);
  if (token.startsWith('--')) {
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec !== undefined) return { name, spec, inline };
  } else {
    const long = Object.keys(specs).find((k) => specs[k]?.short === name);
    const spec = long === undefined ? undefined : specs[long];
    if (long !== undefined && spec !== undefined) return { name: long, spec, inline };
  }
  throw new UsageError(`unknown flag ${token.split('=')[0]}`);
}

function booleanOf(name: string, raw: string): boolean {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new UsageError(`flag --${name} is true or false, not ${JSON.stringify(raw)}`);
}
