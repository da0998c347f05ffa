/**
 * The slices of Node's built-in modules the runner uses. The project compiles
 * against the Workers types, not @types/node, so they are typed here and
 * loaded with process.getBuiltinModule (Node 22.3+).
 */

export interface ChildProcess {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  on(event: 'exit', fn: (code: number | null, signal: string | null) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  unref(): void;
  kill(signal?: string): boolean;
}

interface ChildProcessModule {
  spawn(
    cmd: string,
    args: readonly string[],
    opts: { detached?: boolean; stdio?: unknown; env?: Record<string, string | undefined>; cwd?: string },
  ): ChildProcess;
  spawnSync(
    cmd: string,
    args: readonly string[],
    opts: { encoding: 'utf8' },
  ): { status: number | null; stdout: string };
}

interface FsModule {
  mkdtempSync(prefix: string): string;
  rmSync(path: string, opts: { recursive?: boolean; force?: boolean }): void;
  openSync(path: string, flags: string): number;
  closeSync(fd: number): void;
  writeFileSync(path: string, data: string): void;
  existsSync(path: string): boolean;
  readFileSync(path: string, encoding: 'utf8'): string;
  mkdirSync(path: string, opts: { recursive: boolean }): void;
}

interface OsModule {
  tmpdir(): string;
}

interface PathModule {
  join(...parts: string[]): string;
  resolve(...parts: string[]): string;
  dirname(p: string): string;
}

interface Server {
  listen(port: number, host: string, cb: () => void): void;
  address(): { port: number } | string | null;
  close(cb: () => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
}

interface NetModule {
  createServer(): Server;
}

interface UrlModule {
  fileURLToPath(u: string): string;
}

export interface NodeProcess {
  readonly argv: string[];
  readonly env: Record<string, string | undefined>;
  readonly execPath: string;
  readonly pid: number;
  exitCode: number | undefined;
  exit(code: number): never;
  kill(pid: number, signal: string): void;
  on(event: string, fn: (...args: unknown[]) => void): void;
  hrtime: { bigint(): bigint };
  stdout: { write(s: string): void };
  getBuiltinModule(name: string): unknown;
}

export const proc = process as NodeProcess;
export const childProcess = proc.getBuiltinModule('node:child_process') as ChildProcessModule;
export const fs = proc.getBuiltinModule('node:fs') as FsModule;
export const os = proc.getBuiltinModule('node:os') as OsModule;
export const path = proc.getBuiltinModule('node:path') as PathModule;
export const net = proc.getBuiltinModule('node:net') as NetModule;
export const url = proc.getBuiltinModule('node:url') as UrlModule;

/**
 * `n` distinct free TCP ports on 127.0.0.1. All `n` listeners are held open until
 * every port is known, so two picks of one run never collide (a process started
 * elsewhere may still take one before we bind it).
 */
export async function freePorts(n: 2): Promise<[number, number]>;
export async function freePorts(n: 4): Promise<[number, number, number, number]>;
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.on('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((srv) => {
    const a = srv.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  });
  await Promise.all(servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
  return ports;
}

/** The last `lines` lines of a text file, or '' when it cannot be read. */
export function tailOf(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
