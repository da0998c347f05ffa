/**
 * The processes the bridge's live checks start: etcdctl runs (to their end,
 * or held open while something else happens), and the bridge itself (the
 * real CLI, `durable-raft grpc-proxy`). Every one is remembered until it
 * exits, so a run can kill whatever it started.
 */
import { path, proc, sleep, url } from '../jepsen/node-api.ts';

const ROOT = path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'durable-raft.mjs');
export const ETCDCTL = proc.env.ETCDCTL ?? '/usr/bin/etcdctl';
/** The longest one etcdctl run may take. */
const RUN_MS = 15_000;

interface Readable {
  on(event: 'data', fn: (chunk: Uint8Array) => void): void;
}
interface Child {
  readonly pid?: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: { end(data?: string): void; on(event: 'error', fn: (e: Error) => void): void };
  on(event: 'close', fn: (code: number | null, signal: string | null) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  kill(signal?: string): boolean;
}
const { spawn } = proc.getBuiltinModule('node:child_process') as {
  spawn(cmd: string, args: readonly string[], o: { env: Record<string, string | undefined>; cwd: string }): Child;
};

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<Proc>();

/** A started process: what it printed so far, and its exit. */
export class Proc {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: Child;

  constructor(cmd: string, args: readonly string[], env: Record<string, string | undefined>, input?: string) {
    this.child = spawn(cmd, args, { env: { ...proc.env, ...env }, cwd: ROOT });
    const out = new TextDecoder();
    const err = new TextDecoder();
    this.child.stdout.on('data', (c) => {
      this.stdout += out.decode(c, { stream: true });
    });
    this.child.stderr.on('data', (c) => {
      this.stderr += err.decode(c, { stream: true });
    });
    // A process that exits without reading its stdin makes this write fail (EPIPE): not the run's failure.
    this.child.stdin.on('error', () => {});
    this.child.stdin.end(input ?? '');
    // 'close', not 'exit': only then has all it wrote to stdout and stderr been read.
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code) => resolve(code));
      this.child.on('error', (e) => {
        this.stderr += e.message;
        resolve(null);
      });
    });
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  /** Waits until stdout satisfies `check`; false after `ms` (or if it exits first). */
  async until(check: (stdout: string) => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    let gone = false;
    void this.exited.then(() => {
      gone = true;
    });
    while (!check(this.stdout)) {
      if (Date.now() > deadline || gone) return check(this.stdout);
      await sleep(25);
    }
    return true;
  }

  /** Sends `signal` and waits for the exit (SIGKILL after 5 s). */
  async stop(signal = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(killer);
    return code;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  run(): Run {
    return { code: null, stdout: this.stdout, stderr: this.stderr };
  }
}

/** Kills every process still running. */
export function killAll(): void {
  for (const p of running) p.kill();
}

/** An etcdctl process (API 3) against `endpoint` (host:port), held open. */
export function etcdctl(endpoint: string, args: readonly string[], input?: string): Proc {
  return new Proc(ETCDCTL, ['--endpoints', endpoint, '--dial-timeout', '3s', ...args], { ETCDCTL_API: '3' }, input);
}

/** Runs etcdctl to its end (killed after RUN_MS). */
export async function ctl(endpoint: string, args: readonly string[], input?: string): Promise<Run> {
  const p = etcdctl(endpoint, args, input);
  const timer = setTimeout(() => p.kill(), RUN_MS);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** Runs our CLI (`durable-raft ARGS --endpoint store`) to its end (killed after RUN_MS). */
export async function durableRaft(store: string, args: readonly string[]): Promise<Run> {
  const p = new Proc(proc.execPath, [BIN, ...args, '--endpoint', store], {
    DURABLE_RAFT_TOKEN: undefined,
    DURABLE_RAFT_GROUP: undefined,
  });
  const timer = setTimeout(() => p.kill(), RUN_MS);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/**
 * The bridge through the CLI, listening on `listen` in front of `store`
 * (the default group, or `group`); settles once it says where.
 */
export async function startProxy(
  store: string,
  listen: string,
  group?: string,
): Promise<{ proc: Proc; endpoint: string }> {
  const groupArgs = group === undefined ? [] : ['--group', group];
  const p = new Proc(proc.execPath, [BIN, 'grpc-proxy', '--listen', listen, '--endpoint', store, ...groupArgs], {
    DURABLE_RAFT_TOKEN: undefined,
    DURABLE_RAFT_GROUP: undefined,
  });
  const said = /listening on (\S+) /;
  if (!(await p.until((s) => said.test(s), 15_000)))
    throw new Error(`grpc-proxy did not start: ${p.stdout} ${p.stderr}`);
  return { proc: p, endpoint: (said.exec(p.stdout) as RegExpExecArray)[1] as string };
}
