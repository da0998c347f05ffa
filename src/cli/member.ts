/**
 * Cluster membership (admin role): member list | add | remove | promote, and
 * move-leader, each one client call.
 */
import type { Membership } from '../client/index.ts';
import { arg, type Command, type Context } from './command.ts';

const list: Command = {
  name: 'member list',
  args: '',
  summary: 'the members: name, voter or learner, role, reachable, location hint',
  min: 0,
  max: 0,
  async run(ctx) {
    const s = await ctx.client().cluster.status();
    const rows = s.members.map((m) => [
      m.name,
      m.membership,
      m.role ?? 'unknown',
      m.reachable ? 'reachable' : 'unreachable',
      m.locationHint ?? '',
    ]);
    ctx.print({
      simple: rows.map((r) => r.join(', ')),
      json: s,
      table: { headers: ['NAME', 'MEMBERSHIP', 'ROLE', 'REACHABLE', 'LOCATION_HINT'], rows },
    });
  },
};

/** A membership change: its call and what it prints. */
function change(
  word: 'add' | 'remove' | 'promote',
  summary: string,
  call: (ctx: Context, node: string) => Promise<Membership>,
  done: string,
): Command {
  return {
    name: `member ${word}`,
    args: 'NODE',
    summary,
    min: 1,
    max: 1,
    async run(ctx) {
      const node = arg(ctx, 0);
      const a = await call(ctx, node);
      const conf = a.conf ? `voters: ${a.conf.voters.join(',')}; learners: ${a.conf.learners.join(',') || '-'}` : '';
      ctx.print({
        simple: [`Member ${node} ${done}${conf === '' ? '' : ` (${conf})`}`],
        json: a,
        table: {
          headers: ['NODE', 'VOTERS', 'LEARNERS'],
          rows: [[node, a.conf?.voters.join(',') ?? '', a.conf?.learners.join(',') ?? '']],
        },
      });
    },
  };
}

const add = change(
  'add',
  'add NODE as a learner (it catches up; promote it to vote)',
  (ctx, node) => ctx.client().cluster.addLearner(node),
  'added as a learner',
);
const promote = change(
  'promote',
  'promote the learner NODE to voter',
  (ctx, node) => ctx.client().cluster.promote(node),
  'promoted to voter',
);
const remove = change(
  'remove',
  'remove NODE from the cluster',
  (ctx, node) => ctx.client().cluster.remove(node),
  'removed',
);

const moveLeader: Command = {
  name: 'move-leader',
  args: 'NODE',
  summary: 'hand the leadership to the voter NODE',
  min: 1,
  max: 1,
  async run(ctx) {
    const a = await ctx.client().cluster.transferLeader(arg(ctx, 0));
    ctx.print({
      simple: [`Leadership transferred to ${a.leader} (term ${a.term})`],
      json: a,
      table: { headers: ['LEADER', 'TERM'], rows: [[a.leader, String(a.term)]] },
    });
  },
};

export const MEMBER_COMMANDS: readonly Command[] = [list, add, remove, promote, moveLeader];
