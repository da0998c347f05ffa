/**
 * What every command is and receives: its spec (name, usage, flags, how many
 * arguments), the context it runs in (parsed arguments, a client, the output
 * format, interruption), and the one mapping from errors to exit codes and
 * one-line messages.
 */
import { type DurableRaftClient, DurableRaftError, OutcomeUnknownError, UnavailableError } from '../client/index.ts';
import { type FlagSpecs, type FlagValue, UsageError } from './args.ts';
import type { Line, OutputFormat, View } from './output.ts';

/** The exit codes, as `--help` documents them. */
export const EXIT = {
  ok: 0,
  /** Any other failure: an internal error of the store, a lock lost while its command ran. */
  failed: 1,
  /** The command line is wrong: an unknown flag, a missing argument, a bad value. */
  usage: 2,
  /** The API refused (4xx): not found, precondition failed, bad request, forbidden, unauthorized, compacted, busy. */
  refused: 3,
  /** The store is unavailable: a 503, or no answer in time for a call known to have changed nothing. */
  unavailable: 4,
  /** Outcome unknown: a 504, or no answer in time for a write that may have applied. */
  unknown: 5,
} as const;

/** Where a command writes and reads. */
export interface Io {
  /** Writes one line (text, or a value's raw bytes) and a newline to stdout. */
  write(line: Line): void;
  /** Writes one line to stderr. */
  warn(line: string): void;
  /** All of stdin. */
  readStdin(): Promise<Uint8Array>;
}

/** SIGINT or SIGTERM, as a signal to stop and a promise of the signal's name. */
export interface Interrupt {
  readonly signal: AbortSignal;
  readonly received: Promise<string>;
}

export interface Context {
  readonly positionals: readonly string[];
  readonly flags: Readonly<Record<string, FlagValue>>;
  readonly format: OutputFormat;
  readonly endpoint: string;
  /** The group (--group, else $DURABLE_RAFT_GROUP), if any: undefined is the default group. */
  readonly group: string | undefined;
  /** The bearer token (--token, else $DURABLE_RAFT_TOKEN), if any. */
  readonly token: string | undefined;
  readonly io: Io;
  /** The client, made on first use. */
  client(): DurableRaftClient;
  /** Writes `view` in the chosen format. */
  print(view: View): void;
  /** Starts catching SIGINT and SIGTERM (a second one exits at once); call it before a command holds or streams. */
  interrupt(): Interrupt;
}

export interface Command {
  /** The words that name it: `get`, `lease grant`. */
  readonly name: string;
  /** Its arguments, after the name: `KEY [END]`. */
  readonly args: string;
  readonly summary: string;
  /** More help, printed under the usage line. */
  readonly details?: string;
  readonly min: number;
  readonly max: number;
  readonly flags?: FlagSpecs;
  /** After this many arguments, the rest is taken as written (a command line to run). */
  readonly restAfter?: number;
  /** Runs the command; the exit code (none: 0). */
  run(ctx: Context): Promise<number> | Promise<void>;
}

/** The exit code of an error a command threw. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof UsageError) return EXIT.usage;
  if (e instanceof OutcomeUnknownError) return EXIT.unknown;
  if (e instanceof UnavailableError) return EXIT.unavailable;
  if (e instanceof DurableRaftError) {
    if (e.status === 0) return EXIT.unavailable;
    if (e.status >= 400 && e.status < 500) return EXIT.refused;
  }
  return EXIT.failed;
}

/** The one line printed on stderr for an error: `Error: <code>: <message>`. */
export function errorLine(e: unknown): string {
  if (e instanceof DurableRaftError) return `Error: ${e.code}: ${oneLine(e.message)}`;
  if (e instanceof Error) return `Error: ${oneLine(e.message)}`;
  return `Error: ${oneLine(String(e))}`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** A string flag's value, if given. */
export function stringFlag(ctx: Context, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === 'string' ? v : undefined;
}

/** A number flag's value, if given. */
export function numberFlag(ctx: Context, name: string): number | undefined {
  const v = ctx.flags[name];
  return typeof v === 'number' ? v : undefined;
}

export function boolFlag(ctx: Context, name: string): boolean {
  return ctx.flags[name] === true;
}

/** The `i`th argument (its count was checked against the command's min and max). */
export function arg(ctx: Context, i: number): string {
  return ctx.positionals[i] as string;
}

export { sleepUnless } from '../client/backoff.ts';
