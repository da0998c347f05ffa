/**
 * One local cluster under `wrangler dev --config wrangler.jepsen.toml`, in its
 * own process group (so kill -9 takes wrangler and workerd together), bound to
 * 127.0.0.1, persisting to a directory that survives restarts (`Cluster`, its
 * default group), and the other Raft groups it serves (`RaftGroup`: groups
 * created during a run, the directory of groups), each node reached by its
 * full object name through the jepsen Worker's control routes.
 */
import { type ChildProcess, childProcess, fs, path, proc, sleep, tailOf, url } from './node-api.ts';
export interface FaultRules {
  blocked?: string[];
  dropRate?: number;
  duplicateRate?: number;
  delayMs?: number;
}

export interface NodeStatus {
  id: string;
  role: string;
  term: number;
  leader: string;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  conf: { voters: string[]; learners: string[] };
  /** The snapshot streams this node has sent since its object started (a leader's), if it streams them. */
  snapshotStream: { installs: number; chunks: number } | null;
}

export interface CompactResult {
  firstIndexBefore: number;
  firstIndex: number;
  applied: number;
  lastIndex: number;
  role: string;
}

export interface NodeDump {
  revision: number;
  count: number;
  hash: string;
  kvs: { key: string; value: string; mod: number }[];
}

const ROOT = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..');

/** Where a group lives in the Worker: its name, its routes' prefix, its objects' name prefix. */
export interface GroupPlace {
  /** The group's name ('default' for the default group, 'directory' for the directory of groups). */
  readonly name: string;
  /** Where its routes live under the Worker's origin: '' (the default group) or `/groups/{name}`. */
  readonly route: string;
  /** Put before a member id to name its Durable Object: '' (default group), `g/<name>/<incarnation>:`, `sys:`. */
  readonly objectPrefix: string;
}

export const DEFAULT_PLACE: GroupPlace = { name: 'default', route: '', objectPrefix: '' };

/**
 * One Raft group of the local Worker: its public routes (`base`), its
 * members, and their Raft status, key space, fault rules, crash and
 * compaction through the jepsen Worker's control routes, each node named by
 * its full object name. Nodes are given by member id (node-0, ...), as Raft
 * and the fault rules (`a>b`) know them.
 */
export class RaftGroup {
  readonly name: string;
  /** The root of its routes: the Worker's origin, or it and /groups/{name}. */
  readonly base: string;
  readonly objectPrefix: string;
  /** Every node the run has known: the configured ones (its initial voters), then those added during the run. */
  readonly nodes: string[];
  /** Its initial voters (CLUSTER_NODES for the default group and the directory). */
  readonly configured: readonly string[];
  /** The Worker's origin, where the control routes are. */
  protected readonly origin: string;

  constructor(origin: string, nodes: readonly string[], place: GroupPlace = DEFAULT_PLACE) {
    this.origin = origin;
    this.name = place.name;
    this.base = origin + place.route;
    this.objectPrefix = place.objectPrefix;
    this.nodes = [...nodes];
    this.configured = [...nodes];
  }

  private async call<T>(method: string, p: string, body?: unknown, timeoutMs = 4000): Promise<T> {
    const r = await fetch(`${this.origin}/__jepsen/${p}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} /__jepsen/${p}: ${r.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  /** The full object name of member `node`, as one path segment of the control routes. */
  private object(node: string): string {
    return encodeURIComponent(this.objectPrefix + node);
  }

  setFaults(node: string, rules: FaultRules): Promise<FaultRules> {
    return this.call('PUT', `faults/${this.object(node)}`, rules);
  }

  status(node: string): Promise<NodeStatus> {
    return this.call('GET', `status/${this.object(node)}`);
  }

  dump(node: string): Promise<NodeDump> {
    return this.call('GET', `dump/${this.object(node)}`, undefined, 8000);
  }

  /** Crashes `node` (ctx.abort()); with `downMs`, it also refuses every call for that long. */
  crash(node: string, downMs = 0): Promise<unknown> {
    return this.call('POST', `crash/${this.object(node)}${downMs > 0 ? `?down_ms=${downMs}` : ''}`);
  }

  /** Compacts `node`'s Raft log up to its applied index now (see worker.ts). */
  compact(node: string): Promise<CompactResult> {
    return this.call('POST', `compact/${this.object(node)}`);
  }

  /** Remembers a node added during the run (status, dump and fault rules then reach it too). */
  addNode(node: string): void {
    if (!this.nodes.includes(node)) this.nodes.push(node);
  }

  /** The status of the leader with the highest term among the nodes that answer, if any. */
  async leaderStatus(): Promise<NodeStatus | undefined> {
    const sts = await Promise.all(this.nodes.map((n) => this.status(n).catch(() => undefined)));
    let best: NodeStatus | undefined;
    for (const st of sts) if (st?.role === 'leader' && (!best || st.term > best.term)) best = st;
    return best;
  }

  /** The leader most nodes agree on, if any answers. */
  async leader(): Promise<string | undefined> {
    const sts = await Promise.all(this.nodes.map((n) => this.status(n).catch(() => undefined)));
    let best: NodeStatus | undefined;
    for (const st of sts) if (st?.role === 'leader' && (!best || st.term > best.term)) best = st;
    return best?.id ?? sts.find((s) => s?.leader)?.leader;
  }

  /**
   * The membership as the leader has it (voters and learners), or undefined
   * when no leader answers. Removed nodes are in `nodes` but not here.
   */
  async membership(): Promise<{ leader: string; term: number; voters: string[]; learners: string[] } | undefined> {
    const st = await this.leaderStatus();
    if (!st) return undefined;
    return { leader: st.id, term: st.term, voters: [...st.conf.voters], learners: [...st.conf.learners] };
  }
}

/**
 * The local Worker (wrangler dev, started, killed -9 and restarted on the
 * same storage) as its default group; `group` reaches the other groups it
 * serves. It starts with the default group's nodes so far as CLUSTER_NODES
 * (the configured ones, then those added during the run).
 */
export class Cluster extends RaftGroup {
  private readonly port: number;
  private readonly inspectorPort: number;
  private readonly persistDir: string;
  private readonly logPath: string;
  private child: ChildProcess | undefined;
  private pgid: number | undefined;
  private exited: Promise<void> | undefined;
  starts = 0;

  constructor(nodes: string[], port: number, inspectorPort: number, workDir: string) {
    super(`http://127.0.0.1:${port}`, nodes);
    this.port = port;
    this.inspectorPort = inspectorPort;
    this.persistDir = path.join(workDir, 'state');
    this.logPath = path.join(workDir, 'wrangler.log');
  }

  get log(): string {
    return this.logPath;
  }

  /** Another group this Worker serves, at `place`, with `nodes` as its initial voters. */
  group(place: GroupPlace, nodes: readonly string[]): RaftGroup {
    return new RaftGroup(this.origin, nodes, place);
  }

  /** Starts wrangler dev and waits (at most `timeoutMs`) until /healthz answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.child) throw new Error('cluster already running');
    const wrangler = path.join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
    const args = [
      wrangler,
      'dev',
      '--config',
      path.join(ROOT, 'wrangler.jepsen.toml'),
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--inspector-port',
      String(this.inspectorPort),
      '--persist-to',
      this.persistDir,
      '--show-interactive-dev-session=false',
      '--var',
      `CLUSTER_NODES:${this.nodes.join(',')}`,
    ];
    const fd = fs.openSync(this.logPath, 'a');
    const child = childProcess.spawn(proc.execPath, args, {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...proc.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
    });
    fs.closeSync(fd);
    child.on('error', () => {});
    let gone = false;
    this.exited = new Promise((resolve) =>
      child.on('exit', () => {
        gone = true;
        resolve();
      }),
    );
    this.child = child;
    this.pgid = child.pid;
    this.starts++;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`wrangler dev exited early; see ${this.logPath}, which ends:\n${tailOf(this.logPath)}`);
      try {
        const r = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return;
      } catch {
        // not up yet
      }
      await sleep(200);
    }
    throw new Error(`wrangler dev did not answer /healthz within ${timeoutMs} ms; see ${this.logPath}`);
  }

  /** kill -9 of the whole process group (wrangler and workerd); synchronous, safe to call twice. */
  kill(): void {
    if (this.pgid !== undefined) {
      try {
        proc.kill(-this.pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    this.pgid = undefined;
    this.child = undefined;
  }

  /** Waits until the killed process group has exited (its port is free again). */
  async killAndWait(): Promise<void> {
    const exited = this.exited;
    this.kill();
    this.exited = undefined;
    if (!exited) return;
    await Promise.race([exited, sleep(5000)]);
    await sleep(100);
  }

  removeState(): void {
    fs.rmSync(this.persistDir, { recursive: true, force: true });
  }
}
