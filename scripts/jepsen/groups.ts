/**
 * Runs over several groups (--groups N): the groups the runner creates
 * through the public API, and the check that nothing of one group is ever
 * seen in another.
 *
 * Every value a client writes in group G starts with G's tag, `G/` (the
 * default group's is `default/`), followed by what makes it unique in G (the
 * writer's client and op number: `jepsen-2/v3-17`). The cross-group check of
 * G reads every value G's clients, watchers and final checks saw (reads, cas
 * answers, watch events and their prev_kv, the store's history, every
 * replica's whole key space after the run): each must carry G's tag. A value
 * of another group fails the run, shown with the operation that read it and,
 * when a client wrote it, the operation that wrote it. Empty values (the
 * lock route's keys) carry no tag and are left alone.
 * Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { directoryPrefix, groupPrefix } from '../../src/api/groups/names.ts';
import { DEFAULT_PLACE, type GroupPlace } from './cluster.ts';
import { type Check, http, nowS, type Observation } from './common.ts';
import { sleep } from './node-api.ts';

/** The names of the groups a run creates: jepsen-1 .. jepsen-N. */
export function groupNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `jepsen-${i + 1}`);
}

/** What every value written in `group` starts with. */
export function valueTag(group: string): string {
  return `${group}/`;
}

/** The group a value was written in, from its tag; undefined if it has none. */
export function tagOf(value: string): string | undefined {
  return /^([a-z0-9-]{1,63})\//.exec(value)?.[1];
}

/** The deployment prefix of object names the jepsen Worker uses (GET /__jepsen/nodes). */
export async function deploymentPrefix(base: string): Promise<string> {
  const r = await http(base, 'GET', '/__jepsen/nodes', undefined, 5000);
  if ('error' in r || r.status !== 200) throw new Error(`GET /__jepsen/nodes: ${'error' in r ? r.error : r.status}`);
  return (JSON.parse(r.text) as { prefix?: string }).prefix ?? '';
}

/**
 * Creates group `name` of `size` voters (PUT /v1/groups/{name}: 201, or 200
 * if it exists; a 503 group_not_ready is put again, as the route asks), then
 * reads its record (GET /v1/groups/{name}) for the incarnation its objects
 * are named by. Gives up (throws) at `deadline` (nowS()).
 */
export async function createGroup(
  base: string,
  name: string,
  size: number,
  prefix: string,
  deadline: number,
): Promise<GroupPlace> {
  let last = '';
  while (nowS() < deadline) {
    const put = await http(base, 'PUT', `/v1/groups/${name}`, JSON.stringify({ size }), 15_000, {
      json: true,
      requestTimeoutMs: 10_000,
    });
    if (!('error' in put) && (put.status === 200 || put.status === 201)) {
      const get = await http(base, 'GET', `/v1/groups/${name}`, undefined, 10_000);
      if (!('error' in get) && get.status === 200) {
        const g = JSON.parse(get.text) as { state?: string; incarnation?: number };
        if (g.state === 'active' && typeof g.incarnation === 'number')
          return { name, route: `/groups/${name}`, objectPrefix: groupPrefix(prefix, name, g.incarnation) };
        last = `GET: state ${g.state}, incarnation ${g.incarnation}`;
      } else last = `GET: ${'error' in get ? get.error : `${get.status} ${get.text.slice(0, 200)}`}`;
    } else last = `PUT: ${'error' in put ? put.error : `${put.status} ${put.text.slice(0, 200)}`}`;
    await sleep(500);
  }
  throw new Error(`group ${name} was not created in time: ${last}`);
}

/** Where the directory of groups lives: its objects, on the configured members. */
export function directoryPlace(prefix: string): GroupPlace {
  return { name: 'directory', route: DEFAULT_PLACE.route, objectPrefix: directoryPrefix(prefix) };
}

/** Which operation wrote each value (the first writer, should two write the same), of every group. */
export function writersOf(groups: readonly { group: string; written: readonly Observation[] }[]): Map<string, string> {
  const writers = new Map<string, string>();
  for (const g of groups) for (const w of g.written) if (!writers.has(w.value)) writers.set(w.value, w.what);
  return writers;
}

/**
 * The cross-group check of `group`: every non-empty value in `observed` carries
 * its tag. `writers`: the operation that wrote each value, over all groups.
 */
export function crossGroupCheck(
  group: string,
  observed: readonly Observation[],
  writers: ReadonlyMap<string, string>,
): Check {
  const name = 'no value of another group';
  const problems: string[] = [];
  let values = 0;
  for (const o of observed) {
    if (o.value === '') continue;
    values++;
    const from = tagOf(o.value);
    if (from === group) continue;
    const writer = writers.get(o.value);
    const by = writer ? ` by ${writer}` : ' (by no client: a probe or a sentinel of the runner, or nobody)';
    problems.push(
      from === undefined
        ? `${o.what}: ${JSON.stringify(o.value)} carries no group's tag${by}`
        : `${o.what}: ${JSON.stringify(o.value)} was written in group ${from}${by}`,
    );
  }
  if (problems.length === 0)
    return {
      name,
      ok: true,
      detail: `${values} values seen (reads, watches, history, replicas), all written in ${group}`,
    };
  const shown = problems.length > 10 ? [...problems.slice(0, 10), `... (${problems.length - 10} more)`] : problems;
  return { name, ok: false, detail: `${problems.length} of ${values} values:\n      ${shown.join('\n      ')}` };
}
