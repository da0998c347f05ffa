/** An Io that keeps what a command writes (stdout lines, stderr lines) and reads an empty stdin. */
import type { Io } from '../../src/cli/command.ts';

export function fakeIo(): Io & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    write: (l) => out.push(typeof l === 'string' ? l : new TextDecoder().decode(l)),
    warn: (l) => err.push(l),
    readStdin: async () => new Uint8Array(0),
  };
}
