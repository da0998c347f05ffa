/**
 * watch: every change of a key, an interval or a prefix, printed as it comes
 * until SIGINT or SIGTERM (then exit 0). The client's watch resumes by itself
 * after a disconnect, from the revision after the last one printed.
 */
import type { WatchOptions, WatchResponse } from '../client/index.ts';
import { UsageError } from './args.ts';
import { arg, boolFlag, type Command, numberFlag } from './command.ts';
import type { Line } from './output.ts';

/** etcdctl's simple form of one revision: for each event, its type, key and value on lines of their own. */
export function watchLines(w: WatchResponse, o: { prevKv?: boolean } = {}): Line[] {
  const lines: Line[] = [];
  for (const e of w.events) {
    lines.push(e.type === 'put' ? 'PUT' : 'DELETE', e.kv.key);
    if (o.prevKv && e.prevKv) lines.push(e.prevKv.key, e.prevKv.value);
    if (e.type === 'put') lines.push(e.kv.value);
  }
  return lines;
}

const watch: Command = {
  name: 'watch',
  args: 'KEY [END]',
  summary: 'print each change of a key, of [KEY, END), or under a prefix, until interrupted',
  details:
    'Simple output prints PUT or DELETE, the key, and (for a put) the value, one per line; -w json prints one JSON\nper revision. It resumes by itself after a disconnect; a start below the compaction point exits 3.',
  min: 1,
  max: 2,
  flags: {
    prefix: { type: 'boolean', help: 'every key under the prefix KEY' },
    rev: { type: 'number', value: 'N', help: 'start at revision N (default: the next one)' },
    'prev-kv': { type: 'boolean', help: 'also print the record each event replaced' },
  },
  async run(ctx) {
    const key = arg(ctx, 0);
    const end = ctx.positionals[1];
    const prefix = boolFlag(ctx, 'prefix');
    if (prefix && end !== undefined) throw new UsageError('--prefix takes one KEY, not an END');
    const stop = ctx.interrupt();
    const prevKv = boolFlag(ctx, 'prev-kv');
    const startRevision = numberFlag(ctx, 'rev') || undefined;
    const target = prefix ? { prefix: key } : end === undefined ? { key } : { key, rangeEnd: end };
    const o: WatchOptions = { ...target, startRevision, prevKv, signal: stop.signal };
    for await (const w of ctx.client().watch(o)) {
      if (w.events.length === 0) continue;
      ctx.print({ simple: watchLines(w, { prevKv }), json: w });
    }
  },
};

export const WATCH_COMMANDS: readonly Command[] = [watch];
