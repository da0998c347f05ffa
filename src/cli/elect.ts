/**
 * elect NAME [VALUE]: with a value, campaign (on a lease the client keeps
 * alive), print the leader key once elected and lead until SIGINT or SIGTERM,
 * then resign; without one, observe the election and print each leader and
 * value as they change (etcdctl's `elect -l`).
 */
import { ConflictError, type DurableRaftClient, type Leadership, type Lease } from '../client/index.ts';
import { UsageError } from './args.ts';
import {
  arg,
  type Command,
  type Context,
  EXIT,
  errorLine,
  type Interrupt,
  numberFlag,
  sleepUnless,
} from './command.ts';
import { signalExitCode } from './node.ts';

/** Longest wait of one campaign request (the API allows 300 s); a longer wait asks again. */
const WAIT_CHUNK_MS = 60_000;
const DEFAULT_TTL = 60;
/** How often a leader checks that its lease is still alive. */
const LOST_CHECK_MS = 500;

const elect: Command = {
  name: 'elect',
  args: 'NAME [VALUE]',
  summary: 'campaign with VALUE and lead until interrupted; without VALUE, print each leader',
  details: [
    'With VALUE: waits to be elected (first come, first served), prints the leader key, leads until SIGINT or',
    'SIGTERM, then resigns (exit 0). If its lease is lost meanwhile, it exits 1.',
    'Without VALUE: prints the key and value of the leader, and of each later one, until interrupted.',
  ].join('\n'),
  min: 1,
  max: 2,
  flags: {
    ttl: {
      type: 'number',
      value: 'SECONDS',
      help: "the TTL of the candidate's lease, renewed while it runs (default 60)",
    },
  },
  async run(ctx) {
    const name = arg(ctx, 0);
    const value = ctx.positionals[1];
    const stop = ctx.interrupt();
    if (value === undefined) return observe(ctx, name, stop);
    const ttl = numberFlag(ctx, 'ttl') ?? DEFAULT_TTL;
    if (ttl < 1) throw new UsageError('--ttl must be at least 1 second');
    const client = ctx.client();
    const lease = await client.leases.grant(ttl, { keepAlive: true });
    try {
      const leader = await campaign(client, name, lease, value, stop);
      if (leader === undefined) return signalExitCode(await stop.received);
      ctx.print({
        simple: [leader.key],
        json: leader,
        table: {
          headers: ['NAME', 'KEY', 'REVISION', 'LEASE'],
          rows: [[leader.name, leader.key, String(leader.revision), leader.lease]],
        },
      });
      while (!stop.signal.aborted && lease.lost === undefined) await sleepUnless(LOST_CHECK_MS, stop.signal);
      if (lease.lost !== undefined) {
        ctx.io.warn(`Error: leadership lost: ${errorLine(lease.lost).slice('Error: '.length)}`);
        return EXIT.failed;
      }
      await client.elections.resign(name, leader);
      return EXIT.ok;
    } finally {
      await lease.revoke().catch(() => {});
    }
  },
};

/** Campaigns in requests of at most WAIT_CHUNK_MS until elected; undefined if interrupted first. */
async function campaign(
  client: DurableRaftClient,
  name: string,
  lease: Lease,
  value: string,
  stop: Interrupt,
): Promise<Leadership | undefined> {
  const interrupted = stop.received.then(() => undefined);
  for (;;) {
    try {
      const elected = client.elections.campaign(name, { lease: lease.id, value, waitMs: WAIT_CHUNK_MS });
      return await Promise.race([elected, interrupted]);
    } catch (e) {
      if (!(e instanceof ConflictError && e.code === 'not_elected') || stop.signal.aborted) throw e;
    }
  }
}

async function observe(ctx: Context, name: string, stop: Interrupt): Promise<number> {
  for await (const l of ctx.client().elections.observe(name, { signal: stop.signal })) {
    ctx.print({
      simple: [l.key, l.value],
      json: l,
      table: {
        headers: ['KEY', 'VALUE', 'REVISION', 'LEASE'],
        rows: [[l.key, l.text, String(l.revision), l.lease ?? '']],
      },
    });
  }
  return EXIT.ok;
}

export const ELECT_COMMANDS: readonly Command[] = [elect];
