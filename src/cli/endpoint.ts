/**
 * endpoint status | health: the Raft state of every member behind the
 * endpoint (admin), and whether the endpoint serves a linearizable read.
 */
import { type Command, EXIT, errorLine, exitCodeOf } from './command.ts';

const status: Command = {
  name: 'endpoint status',
  args: '',
  summary: "each member's Raft state: leader, role, term, commit and applied index (admin)",
  min: 0,
  max: 0,
  async run(ctx) {
    const s = await ctx.client().cluster.status();
    const n = (v: number | null): string => (v === null ? '-' : String(v));
    const rows = s.members.map((m) => [
      ctx.endpoint,
      m.name,
      String(m.name === s.leader),
      m.role ?? 'unknown',
      n(m.term),
      n(m.commitIndex),
      n(m.appliedIndex),
      n(m.lastIndex),
      m.reachable ? 'reachable' : 'unreachable',
    ]);
    ctx.print({
      simple: rows.map((r) => r.join(', ')),
      json: { endpoint: ctx.endpoint, ...s },
      table: {
        headers: ['ENDPOINT', 'MEMBER', 'IS_LEADER', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'LAST_INDEX', 'REACHABLE'],
        rows,
      },
    });
  },
};

const health: Command = {
  name: 'endpoint health',
  args: '',
  summary: 'whether the endpoint serves a linearizable read (of the key "health"), and how long it took',
  details: 'Unhealthy exits with the code of the error (4: no leader or quorum in time, or no answer).',
  min: 0,
  max: 0,
  async run(ctx) {
    const t0 = Date.now();
    try {
      const a = await ctx.client().get('health');
      const took = `${Date.now() - t0}ms`;
      ctx.print({
        simple: [`${ctx.endpoint} is healthy: successfully read revision ${a.revision}: took = ${took}`],
        json: { endpoint: ctx.endpoint, health: true, took, revision: a.revision },
        table: { headers: ['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'], rows: [[ctx.endpoint, 'true', took, '']] },
      });
      return EXIT.ok;
    } catch (e) {
      const took = `${Date.now() - t0}ms`;
      const error = errorLine(e).slice('Error: '.length);
      ctx.print({
        simple: [`${ctx.endpoint} is unhealthy: failed to read: ${error}`],
        json: { endpoint: ctx.endpoint, health: false, took, error },
        table: { headers: ['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'], rows: [[ctx.endpoint, 'false', took, error]] },
      });
      ctx.io.warn('Error: unhealthy endpoint');
      return exitCodeOf(e);
    }
  },
};

export const ENDPOINT_COMMANDS: readonly Command[] = [status, health];
