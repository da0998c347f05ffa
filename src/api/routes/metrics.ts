/**
 * GET /metrics: every member's metrics in the Prometheus text exposition
 * format, each series labelled with `node="<member id>"` (admin or metrics role).
 *
 * The Worker keeps nothing: its isolates are many and short-lived. It asks
 * every member in parallel, within the request's deadline, and renders what
 * they answer; a member that does not answer in time is
 * `durable_raft_member_up{node="..."} 0`, never a failed scrape. Asking a
 * member neither ticks nor wakes it (see NodeObject.metrics).
 */

import { type LabelledFamilies, PROMETHEUS_CONTENT_TYPE, renderExposition } from '../../node/metrics.ts';
import type { MetricsSnapshot } from '../../node/node-object.ts';
import { mayScrape } from '../auth.ts';
import type { ClusterClient } from '../cluster.ts';
import { forbidden } from '../commands.ts';
import type { App } from '../env.ts';
import { queryOf } from '../request.ts';

export function metricsRoutes(app: App): void {
  app.get('/metrics', async (c) => {
    if (!mayScrape(c.get('principal'))) throw forbidden('this needs the admin or metrics role');
    queryOf(c.get('input'), []);
    const configured = c.get('config').members.map((m) => m.id);
    const answers = await gather(c.get('client'), configured);
    return c.body(exposition(answers), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE });
  });
}

/**
 * Asks the configured members, then the members the cluster's conf names
 * that were not configured (added later): the conf of the leader of the
 * highest term that answered, else of every member that answered.
 */
async function gather(
  client: ClusterClient,
  configured: readonly string[],
): Promise<Map<string, MetricsSnapshot | undefined>> {
  const answers = new Map<string, MetricsSnapshot | undefined>();
  const ask = (ids: readonly string[]) =>
    Promise.all(
      ids.map(async (id) => {
        answers.set(id, await client.metrics(id));
      }),
    );
  await ask([...new Set(configured)]);
  const known = [...answers.values()].filter((a): a is MetricsSnapshot => a !== undefined);
  const lead = known.filter((a) => a.role === 'leader').sort((a, b) => b.term - a.term)[0];
  const extra = new Set<string>();
  for (const a of lead ? [lead] : known)
    for (const id of [...a.conf.voters, ...a.conf.learners]) if (!answers.has(id)) extra.add(id);
  await ask([...extra]);
  return answers;
}

function exposition(answers: ReadonlyMap<string, MetricsSnapshot | undefined>): string {
  const up: LabelledFamilies = {
    labels: {},
    families: [
      {
        name: 'durable_raft_member_up',
        help: 'Whether the member answered this scrape in time (1) or not (0).',
        type: 'gauge',
        samples: [...answers].map(([node, a]) => ({ labels: { node }, value: a ? 1 : 0 })),
      },
    ],
  };
  const members = [...answers].flatMap(([node, a]) => (a ? [{ labels: { node }, families: a.families }] : []));
  return renderExposition([up, ...members]);
}
