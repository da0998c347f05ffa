/**
 * Leases: lease grant | revoke | keep-alive | timetolive | list, printed as
 * etcdctl prints them (ids are the store's decimal strings).
 */
import { type DurableRaftClient, OutcomeUnknownError, UnavailableError } from '../client/index.ts';
import { UsageError, wholeNumber } from './args.ts';
import { arg, boolFlag, type Command, type Context, sleepUnless, stringFlag } from './command.ts';

const grant: Command = {
  name: 'lease grant',
  args: 'TTL',
  summary: 'grant a lease of TTL seconds (raised to the store minimum if below it)',
  min: 1,
  max: 1,
  flags: { id: { type: 'string', value: 'ID', help: 'ask for this id (decimal); default: the store picks one' } },
  async run(ctx) {
    const ttl = wholeNumber('TTL', arg(ctx, 0));
    if (ttl < 1) throw new UsageError('TTL must be at least 1 second');
    const id = stringFlag(ctx, 'id');
    const lease = await ctx.client().leases.grant(ttl, id === undefined ? {} : { id });
    ctx.print({
      simple: [`lease ${lease.id} granted with TTL(${lease.ttl}s)`],
      json: { id: lease.id, ttl: lease.ttl, revision: lease.revision },
      table: { headers: ['ID', 'TTL'], rows: [[lease.id, String(lease.ttl)]] },
    });
  },
};

const revoke: Command = {
  name: 'lease revoke',
  args: 'ID',
  summary: 'revoke a lease, deleting every key attached to it',
  min: 1,
  max: 1,
  async run(ctx) {
    const a = await ctx.client().leases.revoke(arg(ctx, 0));
    ctx.print({
      simple: [`lease ${a.id} revoked (${a.deleted} ${a.deleted === 1 ? 'key' : 'keys'} deleted)`],
      json: a,
      table: { headers: ['ID', 'DELETED', 'REVISION'], rows: [[a.id, String(a.deleted), String(a.revision)]] },
    });
  },
};

const keepAlive: Command = {
  name: 'lease keep-alive',
  args: 'ID',
  summary: 'renew a lease every third of its TTL until interrupted (or once, with --once)',
  details: 'A lease found gone (expired or revoked) ends it with exit code 3.',
  min: 1,
  max: 1,
  flags: { once: { type: 'boolean', help: 'renew once and exit' } },
  async run(ctx) {
    const client = ctx.client();
    const id = arg(ctx, 0);
    const once = boolFlag(ctx, 'once');
    if (once) return void printRenewal(ctx, await client.leases.keepAliveOnce(id));
    const stop = ctx.interrupt();
    while (!stop.signal.aborted) {
      const ttl = await renewOrWarn(ctx, client, id);
      await sleepUnless(ttl === undefined ? 1000 : (ttl * 1000) / 3, stop.signal);
    }
  },
};

/** One renewal for the loop: the TTL, or undefined after a warning when the store did not answer in time. */
async function renewOrWarn(ctx: Context, client: DurableRaftClient, id: string): Promise<number | undefined> {
  try {
    const a = await client.leases.keepAliveOnce(id);
    printRenewal(ctx, a);
    return a.ttl;
  } catch (e) {
    if (!(e instanceof UnavailableError || e instanceof OutcomeUnknownError)) throw e;
    ctx.io.warn(`warning: keepalive of lease ${id} failed (${e.message}); retrying`);
    return undefined;
  }
}

function printRenewal(ctx: Context, a: { id: string; ttl: number }): void {
  ctx.print({
    simple: [`lease ${a.id} keepalived with TTL(${a.ttl})`],
    json: a,
    table: { headers: ['ID', 'TTL'], rows: [[a.id, String(a.ttl)]] },
  });
}

const timeToLive: Command = {
  name: 'lease timetolive',
  args: 'ID',
  summary: "a lease's granted TTL and the time it has left (by the leader's clock)",
  min: 1,
  max: 1,
  flags: { keys: { type: 'boolean', help: 'also list the keys attached to it' } },
  async run(ctx) {
    const keys = boolFlag(ctx, 'keys');
    const a = await ctx.client().leases.timeToLive(arg(ctx, 0), { keys });
    const attached = keys ? `, attached keys([${(a.keys ?? []).join(' ')}])` : '';
    ctx.print({
      simple: [`lease ${a.id} granted with TTL(${a.grantedTtl}s), remaining(${a.ttl}s)${attached}`],
      json: a,
      table: {
        headers: ['ID', 'GRANTED_TTL', 'REMAINING', ...(keys ? ['KEYS'] : [])],
        rows: [[a.id, String(a.grantedTtl), String(a.ttl), ...(keys ? [(a.keys ?? []).join(' ')] : [])]],
      },
    });
  },
};

const list: Command = {
  name: 'lease list',
  args: '',
  summary: 'every lease, with its TTL',
  min: 0,
  max: 0,
  async run(ctx) {
    const client = ctx.client();
    const leases: { id: string; ttl: number }[] = [];
    let after: string | undefined;
    let revision = 0;
    for (let more = true; more; ) {
      const page = await client.leases.list(after === undefined ? {} : { after });
      leases.push(...page.leases);
      revision = page.revision;
      more = page.more && page.after !== undefined && page.after !== after;
      after = page.after;
    }
    ctx.print({
      simple: [`found ${leases.length} ${leases.length === 1 ? 'lease' : 'leases'}`, ...leases.map((l) => l.id)],
      json: { leases, revision },
      table: { headers: ['ID', 'TTL'], rows: leases.map((l) => [l.id, String(l.ttl)]) },
    });
  },
};

export const LEASE_COMMANDS: readonly Command[] = [grant, revoke, keepAlive, timeToLive, list];
