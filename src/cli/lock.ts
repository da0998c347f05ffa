/**
 * lock NAME [COMMAND…]: takes the lock (its lease kept alive by the client
 * while held), then either prints the lock key and fencing token and holds it
 * until SIGINT or SIGTERM, or runs COMMAND while holding it and releases it
 * after, exiting with the command's exit code.
 */
import { ConflictError, type DurableRaftClient, type LockHolder } from '../client/index.ts';
import { parseDuration, UsageError } from './args.ts';
import { arg, type Command, type Context, EXIT, errorLine, type Interrupt, numberFlag, stringFlag } from './command.ts';
import { childProcess, proc, signalExitCode } from './node.ts';

/** Longest wait of one lock request (the API allows 300 s); a longer wait asks again. */
const WAIT_CHUNK_MS = 60_000;
/** How often a running command's lock is checked for a lost lease. */
const LOST_CHECK_MS = 500;

const lock: Command = {
  name: 'lock',
  args: 'NAME [COMMAND [ARG...]]',
  summary: 'hold a lock until interrupted (printing its key and fencing token), or while COMMAND runs',
  details: [
    'Waits for the lock (first come, first served). Without COMMAND it prints the lock key and the fencing',
    'token (its create revision), holds the lock until SIGINT or SIGTERM, then releases it. With COMMAND it',
    'runs it (stdio inherited; DURABLE_RAFT_LOCK_KEY and DURABLE_RAFT_FENCING_TOKEN in its environment),',
    'releases the lock when it exits, and exits with its exit code; SIGINT and SIGTERM are passed on to it.',
    'If the lock is lost meanwhile (its lease gone), the command gets SIGTERM and the exit code is 1.',
    'Flags go before COMMAND (or end them with --).',
  ].join('\n'),
  min: 1,
  max: Number.POSITIVE_INFINITY,
  restAfter: 1,
  flags: {
    ttl: { type: 'number', value: 'SECONDS', help: "the TTL of the lock's lease, renewed while held (default 60)" },
    timeout: { type: 'string', value: 'DURATION', help: 'give up waiting after this long (exit 3); default: wait on' },
  },
  async run(ctx) {
    const name = arg(ctx, 0);
    const command = ctx.positionals.slice(1);
    const ttl = numberFlag(ctx, 'ttl');
    if (ttl !== undefined && ttl < 1) throw new UsageError('--ttl must be at least 1 second');
    const timeout = stringFlag(ctx, 'timeout');
    const waitMs = timeout === undefined ? Number.POSITIVE_INFINITY : parseDuration('--timeout', timeout);
    const stop = ctx.interrupt();
    const holder = await acquire(ctx.client(), name, { ttl, waitMs }, stop);
    if (holder === undefined) return signalExitCode(await stop.received);
    try {
      if (command.length > 0) return await runHolding(ctx, holder, command, stop);
      ctx.print({
        simple: [holder.key, String(holder.revision)],
        json: { name: holder.name, key: holder.key, revision: holder.revision, lease: holder.leaseId },
        table: {
          headers: ['NAME', 'KEY', 'FENCING_TOKEN', 'LEASE'],
          rows: [[holder.name, holder.key, String(holder.revision), holder.leaseId]],
        },
      });
      await stop.received;
      return EXIT.ok;
    } finally {
      await holder.unlock().catch((e: unknown) => ctx.io.warn(`warning: could not release the lock: ${errorLine(e)}`));
    }
  },
};

/**
 * Waits for the lock in requests of at most WAIT_CHUNK_MS; undefined if
 * interrupted first (a request then in flight is dropped: if it wins, the
 * lock goes when its lease expires, unrenewed).
 */
async function acquire(
  client: DurableRaftClient,
  name: string,
  o: { ttl: number | undefined; waitMs: number },
  stop: Interrupt,
): Promise<LockHolder | undefined> {
  const deadline = Date.now() + o.waitMs;
  const interrupted = stop.received.then(() => undefined);
  for (;;) {
    const waitMs = Math.max(0, Math.min(WAIT_CHUNK_MS, deadline - Date.now()));
    try {
      return await Promise.race([
        client.lock(name, { ...(o.ttl !== undefined ? { ttl: o.ttl } : {}), waitMs }),
        interrupted,
      ]);
    } catch (e) {
      const busy = e instanceof ConflictError && e.code === 'lock_busy';
      if (!busy || Date.now() >= deadline || stop.signal.aborted) throw e;
    }
  }
}

/** Runs `command` while `holder` holds the lock; its exit code (1 if the lock was lost). */
function runHolding(ctx: Context, holder: LockHolder, command: readonly string[], stop: Interrupt): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  const child = childProcess.spawn(file, args, {
    stdio: 'inherit',
    env: { ...proc.env, DURABLE_RAFT_LOCK_KEY: holder.key, DURABLE_RAFT_FENCING_TOKEN: String(holder.revision) },
  });
  return new Promise((resolve) => {
    let lost = false;
    const check = setInterval(() => {
      const gone = holder.lease?.lost;
      if (gone === undefined || lost) return;
      lost = true;
      ctx.io.warn(`Error: lock lost while the command ran: ${errorLine(gone).slice('Error: '.length)}`);
      child.kill('SIGTERM');
    }, LOST_CHECK_MS);
    void stop.received.then((signal) => child.kill(signal));
    child.on('error', (e) => {
      clearInterval(check);
      ctx.io.warn(`Error: cannot run ${file}: ${e.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      clearInterval(check);
      if (lost) resolve(EXIT.failed);
      else resolve(code ?? signalExitCode(signal ?? 'SIGTERM'));
    });
  });
}

export const LOCK_COMMANDS: readonly Command[] = [lock];
