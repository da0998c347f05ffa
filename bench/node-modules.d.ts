/**
 * The few Node APIs the bench runner and load generator use: the project
 * has no @types/node (its types are @cloudflare/workers-types), so these
 * minimal declarations keep `tsc` checking bench/*.ts.
 */
interface ImportMeta {
  readonly url: string;
}

declare module 'node:http' {
  interface IncomingMessage {
    readonly statusCode?: number;
    readonly headers: Record<string, string | string[] | undefined>;
    on(event: 'data', cb: (chunk: Uint8Array) => void): this;
    on(event: 'end', cb: () => void): this;
    on(event: 'error', cb: (e: unknown) => void): this;
  }
  interface ClientRequest {
    on(event: 'error', cb: (e: unknown) => void): this;
    end(body?: string): void;
  }
  class Agent {
    constructor(opts?: { keepAlive?: boolean; maxSockets?: number; maxFreeSockets?: number });
    destroy(): void;
  }
  function request(
    url: URL,
    opts: { agent?: Agent; method?: string; headers?: Record<string, string | number> },
    cb: (res: IncomingMessage) => void,
  ): ClientRequest;
}

declare module 'node:child_process' {
  interface ChildProcess {
    readonly pid?: number;
    readonly exitCode: number | null;
    send(message: unknown): boolean;
    disconnect(): void;
    kill(signal?: string): boolean;
    once(event: 'message', cb: (m: never) => void): this;
    once(event: 'exit', cb: (code: number | null) => void): this;
    off(event: 'exit', cb: (code: number | null) => void): this;
  }
  function fork(
    modulePath: string,
    args: string[],
    opts: { execArgv?: string[]; stdio?: (string | number)[] },
  ): ChildProcess;
  function execFileSync(file: string, args: string[], opts: { cwd?: string; encoding: 'utf8' }): string;
}

declare module 'node:fs' {
  function readFileSync(path: string, encoding: 'utf8'): string;
  function readdirSync(path: string): string[];
  function writeFileSync(path: string, data: string): void;
  function mkdirSync(path: string, opts?: { recursive?: boolean }): void;
  function mkdtempSync(prefix: string): string;
  function rmSync(path: string, opts?: { recursive?: boolean; force?: boolean }): void;
}

declare module 'node:os' {
  const os: {
    tmpdir(): string;
    platform(): string;
    release(): string;
    arch(): string;
    cpus(): { model: string; times: { user: number; nice: number; sys: number; idle: number; irq: number } }[];
    totalmem(): number;
    loadavg(): number[];
  };
  export default os;
}

declare module 'node:path' {
  const path: {
    join(...parts: string[]): string;
    resolve(...parts: string[]): string;
    dirname(p: string): string;
    relative(from: string, to: string): string;
  };
  export default path;
}

declare module 'node:url' {
  function fileURLToPath(url: string): string;
}

declare module 'node:net' {
  interface Server {
    once(event: 'error', cb: (e: unknown) => void): this;
    listen(port: number, host: string, cb: () => void): this;
    address(): { port: number } | string | null;
    close(cb?: () => void): this;
  }
  function createServer(): Server;
}

declare module 'node:module' {
  function createRequire(from: string): (id: string) => unknown;
}
