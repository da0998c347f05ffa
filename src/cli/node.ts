/**
 * The slices of Node's built-ins the CLI uses. The project compiles against
 * the Workers types, not @types/node, so they are typed here and loaded with
 * process.getBuiltinModule (Node 22.3+), as scripts/jepsen/node-api.ts does.
 * Every other CLI file reaches Node only through this one.
 */

export interface ChildProcess {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  on(event: 'exit', fn: (code: number | null, signal: string | null) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  kill(signal?: string): boolean;
}

interface ChildProcessModule {
  spawn(
    cmd: string,
    args: readonly string[],
    opts: { stdio?: unknown; env?: Record<string, string | undefined> },
  ): ChildProcess;
}

interface OsModule {
  constants: { signals: Record<string, number> };
}

interface WriteStream {
  write(s: string | Uint8Array, cb?: () => void): boolean;
  on(event: 'error', fn: (e: Error & { code?: string }) => void): void;
}

export interface NodeProcess {
  readonly argv: string[];
  readonly env: Record<string, string | undefined>;
  readonly stdin: AsyncIterable<Uint8Array> & { readonly isTTY?: boolean };
  readonly stdout: WriteStream;
  readonly stderr: WriteStream;
  exitCode: number | undefined;
  exit(code: number): never;
  on(event: 'SIGINT' | 'SIGTERM', fn: (signal: string) => void): void;
  off(event: 'SIGINT' | 'SIGTERM', fn: (signal: string) => void): void;
  getBuiltinModule(name: string): unknown;
}

/** An open file (node:fs/promises FileHandle). */
export interface FileHandle {
  write(data: Uint8Array, offset: number, length: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

interface FsModule {
  /** The file's bytes, a chunk at a time. */
  createReadStream(path: string): AsyncIterable<Uint8Array>;
  promises: {
    open(path: string, flags: string): Promise<FileHandle>;
    rename(from: string, to: string): Promise<void>;
    rm(path: string, o: { force: boolean }): Promise<void>;
  };
}

export const proc = process as unknown as NodeProcess;
export const childProcess = proc.getBuiltinModule('node:child_process') as ChildProcessModule;
export const os = proc.getBuiltinModule('node:os') as OsModule;
export const fs = proc.getBuiltinModule('node:fs') as FsModule;

/** The conventional exit code of a process ended by `signal` (128 + its number). */
export function signalExitCode(signal: string): number {
  return 128 + (os.constants.signals[signal] ?? 0);
}
