/**
 * durable-raft, the command line (etcdctl's shape, built on the typed client):
 * finds the command in argv, parses its flags with the global ones, builds
 * the context (endpoint, token, output format, the client), runs it, and maps
 * what it threw to an exit code and one line on stderr.
 *
 * @example
 * durable-raft put config/app v1
 * durable-raft get --prefix config/ -w table
 */
import { createClient, type DurableRaftClient, groupPath } from '../client/index.ts';
import { type FlagSpec, type FlagSpecs, firstPositional, parseArgs, parseDuration, UsageError } from './args.ts';
import { type Command, type Context, EXIT, errorLine, exitCodeOf, type Interrupt, type Io } from './command.ts';
import { ELECT_COMMANDS } from './elect.ts';
import { ENDPOINT_COMMANDS } from './endpoint.ts';
import { GRPC_PROXY_COMMANDS } from './grpc-proxy.ts';
import { KV_COMMANDS } from './kv.ts';
import { LEASE_COMMANDS } from './lease.ts';
import { LOCK_COMMANDS } from './lock.ts';
import { MEMBER_COMMANDS } from './member.ts';
import { proc, signalExitCode } from './node.ts';
import { OUTPUT_FORMATS, type OutputFormat, render } from './output.ts';
import { SNAPSHOT_COMMANDS } from './snapshot.ts';
import { WATCH_COMMANDS } from './watch.ts';

const PROGRAM = 'durable-raft';
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:8787';

export const GLOBAL_FLAGS: FlagSpecs = {
  endpoint: {
    type: 'string',
    value: 'URL',
    help: `the store's URL (default: $DURABLE_RAFT_ENDPOINT, else ${DEFAULT_ENDPOINT})`,
  },
  token: { type: 'string', value: 'TOKEN', help: 'the bearer token (default: $DURABLE_RAFT_TOKEN)' },
  group: {
    type: 'string',
    value: 'GROUP',
    help: 'the group to reach (default: $DURABLE_RAFT_GROUP, else the default group)',
  },
  'write-out': {
    type: 'string',
    short: 'w',
    value: 'FORMAT',
    help: 'output format: simple (default), json or table (txn and watch: as simple)',
  },
  'command-timeout': {
    type: 'string',
    value: 'DURATION',
    help: "each request's deadline, retries included (default 10s)",
  },
  help: { type: 'boolean', short: 'h', help: 'help (for a command: durable-raft COMMAND --help)' },
};

export const COMMANDS: readonly Command[] = [
  ...KV_COMMANDS,
  ...WATCH_COMMANDS,
  ...LEASE_COMMANDS,
  ...LOCK_COMMANDS,
  ...ELECT_COMMANDS,
  ...MEMBER_COMMANDS,
  ...ENDPOINT_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  ...GRPC_PROXY_COMMANDS,
];

/** Commands with subcommands. */
const GROUPS: Readonly<Record<string, string>> = {
  lease: 'leases: grant, revoke, keep-alive, timetolive, list',
  member: 'cluster membership (admin): list, add, remove, promote',
  endpoint: 'the endpoint: status, health',
  snapshot: "a group's dump (backup, restore, clone): save, restore",
};

const EXIT_CODES = [
  '  0  ok (a missing key, or a txn that took its failure branch, is an answer: 0)',
  '  1  any other failure (an internal error of the store, a lock or leadership lost)',
  '  2  usage: an unknown flag or command, a missing argument, a bad value',
  '  3  the API refused (4xx): not found, precondition failed, bad request, forbidden, unauthorized,',
  '     compacted, lock busy; stderr says "Error: <code>: <message>"',
  '  4  unavailable: 503 (no leader or quorum in time), or no answer for a call that changed nothing',
  '  5  outcome unknown: 504, or no answer for a write that may have applied',
  "  lock with a COMMAND exits with the command's exit code; watch, lock, elect, keep-alive and grpc-proxy exit 0 on SIGINT/SIGTERM",
].join('\n');

/** What the command line names: a command, a group (for its help), or nothing. */
interface Resolved {
  readonly command?: Command;
  readonly group?: string;
  /** argv without the command's words. */
  readonly rest: readonly string[];
}

export function resolveCommand(argv: readonly string[]): Resolved {
  const i = firstPositional(argv, GLOBAL_FLAGS);
  if (i < 0) return { rest: argv };
  const word = argv[i] as string;
  const rest = [...argv.slice(0, i), ...argv.slice(i + 1)];
  if (word === 'help') {
    const r = resolveCommand(rest.filter((t) => t !== '--help' && t !== '-h'));
    return { ...r, rest: [...r.rest, '--help'] };
  }
  if (Object.hasOwn(GROUPS, word)) {
    const j = firstPositional(rest, GLOBAL_FLAGS);
    if (j < 0) return { group: word, rest };
    const name = `${word} ${rest[j]}`;
    const command = COMMANDS.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}"; see ${PROGRAM} ${word} --help`);
    return { command, rest: [...rest.slice(0, j), ...rest.slice(j + 1)] };
  }
  const command = COMMANDS.find((c) => c.name === word);
  if (!command) throw new UsageError(`unknown command "${word}"; see ${PROGRAM} --help`);
  return { command, rest };
}

export function usageLine(c: Command): string {
  return `Usage: ${PROGRAM} ${c.name}${c.args === '' ? '' : ` ${c.args}`} [flags]`;
}

function flagLines(specs: FlagSpecs): string[] {
  const label = (name: string, s: FlagSpec): string =>
    `--${name}${s.value === undefined ? '' : ` ${s.value}`}${s.short === undefined ? '' : `, -${s.short}`}`;
  const entries = Object.entries(specs);
  const width = Math.max(...entries.map(([n, s]) => label(n, s).length));
  return entries.map(([n, s]) => `  ${label(n, s).padEnd(width)}  ${s.help}`);
}

function commandLines(commands: readonly Command[]): string[] {
  const label = (c: Command): string => `${c.name}${c.args === '' ? '' : ` ${c.args}`}`;
  const width = Math.max(...commands.map((c) => label(c).length));
  return commands.map((c) => `  ${label(c).padEnd(width)}  ${c.summary}`);
}

export function mainHelp(): string {
  return [
    `${PROGRAM}: the command line of a durable-raft store, in etcdctl's shape (over the /v1 API).`,
    '',
    `Usage: ${PROGRAM} [global flags] COMMAND [flags] [arguments]`,
    '',
    'Commands:',
    ...commandLines(COMMANDS),
    '',
    'Global flags (anywhere on the line):',
    ...flagLines(GLOBAL_FLAGS),
    '',
    'Environment: DURABLE_RAFT_ENDPOINT, DURABLE_RAFT_TOKEN (the flags win).',
    '',
    'Exit codes:',
    EXIT_CODES,
    '',
    `Run '${PROGRAM} COMMAND --help' for a command's flags.`,
  ].join('\n');
}

export function groupHelp(group: string): string {
  return [
    `${PROGRAM} ${group}: ${GROUPS[group] ?? ''}`,
    '',
    `Usage: ${PROGRAM} ${group} SUBCOMMAND [flags] [arguments]`,
    '',
    'Subcommands:',
    ...commandLines(COMMANDS.filter((c) => c.name.startsWith(`${group} `))),
    '',
    `Run '${PROGRAM} ${group} SUBCOMMAND --help' for its flags; '${PROGRAM} --help' for the global flags and exit codes.`,
  ].join('\n');
}

export function commandHelp(c: Command): string {
  return [
    usageLine(c),
    '',
    `${c.summary[0]?.toUpperCase()}${c.summary.slice(1)}.`,
    ...(c.details === undefined ? [] : ['', c.details]),
    ...(c.flags === undefined || Object.keys(c.flags).length === 0 ? [] : ['', 'Flags:', ...flagLines(c.flags)]),
    '',
    'Global flags:',
    ...flagLines(GLOBAL_FLAGS),
    '',
    'Exit codes:',
    EXIT_CODES,
  ].join('\n');
}

/** `--help` or `-h` among the flags (before any `--`). */
function asksHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((t) => t === '--help' || t === '-h');
}

/** Runs the command line `argv` (without node and the script); the exit code. */
export async function main(argv: readonly string[], io: Io = nodeIo()): Promise<number> {
  let command: Command | undefined;
  try {
    const r = resolveCommand(argv);
    command = r.command;
    if (!command) {
      if (r.group !== undefined) {
        if (!asksHelp(r.rest)) {
          io.warn(groupHelp(r.group));
          return EXIT.usage;
        }
        io.write(groupHelp(r.group));
        return EXIT.ok;
      }
      if (asksHelp(r.rest)) {
        io.write(mainHelp());
        return EXIT.ok;
      }
      io.warn(mainHelp());
      return EXIT.usage;
    }
    const c: Command = command;
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs(
        r.rest,
        { ...GLOBAL_FLAGS, ...c.flags },
        c.restAfter === undefined ? {} : { restAfter: c.restAfter },
      );
    } catch (e) {
      if (asksHelp(r.rest)) parsed = { flags: { help: true }, positionals: [] };
      else throw e;
    }
    if (parsed.flags.help === true) {
      io.write(commandHelp(c));
      return EXIT.ok;
    }
    const n = parsed.positionals.length;
    if (n < c.min) throw new UsageError(`missing arguments: ${c.name} takes ${c.args}`);
    if (n > c.max) throw new UsageError(`too many arguments: ${c.name} takes ${c.args === '' ? 'none' : c.args}`);
    const ctx = contextOf(parsed, io);
    return (await c.run(ctx)) ?? EXIT.ok;
  } catch (e) {
    io.warn(errorLine(e));
    if (e instanceof UsageError)
      io.warn(command ? `${usageLine(command)} (see --help)` : `Usage: ${PROGRAM} COMMAND [flags] (see --help)`);
    return exitCodeOf(e);
  }
}

function contextOf(parsed: ReturnType<typeof parseArgs>, io: Io): Context {
  const flags = parsed.flags;
  const str = (name: string): string | undefined =>
    typeof flags[name] === 'string' ? (flags[name] as string) : undefined;
  const format = (str('write-out') ?? 'simple') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format))
    throw new UsageError(`-w is one of ${OUTPUT_FORMATS.join(', ')}, not ${JSON.stringify(format)}`);
  const endpoint = (str('endpoint') || proc.env.DURABLE_RAFT_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(endpoint) || !URL.canParse(endpoint))
    throw new UsageError(`the endpoint must be an http:// or https:// URL, not ${JSON.stringify(endpoint)}`);
  const token = str('token') || proc.env.DURABLE_RAFT_TOKEN || undefined;
  const group = str('group') || proc.env.DURABLE_RAFT_GROUP || undefined;
  try {
    groupPath(group);
  } catch (e) {
    throw new UsageError(`--group: ${(e as Error).message.replace(/^group: /, '')}`);
  }
  const timeout = str('command-timeout');
  const timeoutMs = timeout === undefined ? undefined : parseDuration('--command-timeout', timeout);
  let client: DurableRaftClient | undefined;
  let interrupt: Interrupt | undefined;
  return {
    positionals: parsed.positionals,
    flags,
    format,
    endpoint,
    group,
    token,
    io,
    client() {
      client ??= createClient({
        endpoint,
        ...(group === undefined ? {} : { group }),
        ...(token === undefined ? {} : { token }),
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
      });
      return client;
    },
    print(view) {
      for (const line of render(format, view)) io.write(line);
    },
    interrupt() {
      interrupt ??= catchSignals();
      return interrupt;
    },
  };
}

/** The first SIGINT or SIGTERM aborts the signal and settles `received`; a second one exits at once. */
function catchSignals(): Interrupt {
  const abort = new AbortController();
  let settle: (signal: string) => void = () => {};
  const received = new Promise<string>((resolve) => {
    settle = resolve;
  });
  const on = (signal: string): void => {
    if (abort.signal.aborted) proc.exit(signalExitCode(signal));
    abort.abort(new Error(signal));
    settle(signal);
  };
  proc.on('SIGINT', on);
  proc.on('SIGTERM', on);
  return { signal: abort.signal, received };
}

function nodeIo(): Io {
  const newline = '\n';
  return {
    write(line) {
      if (typeof line === 'string') proc.stdout.write(`${line}${newline}`);
      else {
        proc.stdout.write(line);
        proc.stdout.write(newline);
      }
    },
    warn(line) {
      proc.stderr.write(`${line}${newline}`);
    },
    async readStdin() {
      const chunks: Uint8Array[] = [];
      for await (const chunk of proc.stdin) chunks.push(chunk);
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
  };
}

/** The bin's entry: runs `process.argv`, flushes stdout and stderr, and exits with the code. */
export async function runFromProcess(): Promise<never> {
  // A reader that went away (`| head -1`) ends the command quietly, as it does for other tools.
  proc.stdout.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
    proc.exit(EXIT.ok);
  });
  const code = await main(proc.argv.slice(2));
  await new Promise<void>((resolve) => proc.stdout.write('', () => proc.stderr.write('', () => resolve())));
  return proc.exit(code);
}
