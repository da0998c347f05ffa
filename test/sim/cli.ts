/**
 * Runs simulator seeds from the command line:
 *   npm run test:sim -- --seeds N [--start S] [--nodes 3|5] [--steps K] [--verbose] [--stale-reads]
 * (`--stale-reads` breaks the reads on purpose, to see a failure being reported.)
 * Prints a summary and, on a failure, the seed and the command that reproduces it
 * (exit code 1). Plain Node 22 with --experimental-strip-types: no TS-only syntax.
 */
import { configForSeed, type SimConfig } from './config.ts';
import { runSeed, type SimResult } from './run.ts';

interface Args {
  seeds: number;
  start: number;
  nodes: 3 | 5 | undefined;
  steps: number | undefined;
  verbose: boolean;
  staleReads: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seeds: 100, start: 1, nodes: undefined, steps: undefined, verbose: false, staleReads: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      return v;
    };
    switch (a) {
      case '--seeds':
        args.seeds = num();
        break;
      case '--start':
        args.start = num();
        break;
      case '--nodes': {
        const n = num();
        if (n !== 3 && n !== 5) throw new Error('--nodes must be 3 or 5');
        args.nodes = n;
        break;
      }
      case '--steps':
        args.steps = num();
        break;
      case '--verbose':
        args.verbose = true;
        break;
      case '--stale-reads':
        args.staleReads = true;
        break;
      case '--help':
      case '-h':
        console.log(
          'usage: npm run test:sim -- --seeds N [--start S] [--nodes 3|5] [--steps K] [--verbose] [--stale-reads]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  return args;
}

function reproduction(seed: number, a: Args): string {
  const extra =
    `${a.nodes ? ` --nodes ${a.nodes}` : ''}${a.steps !== undefined ? ` --steps ${a.steps}` : ''}` +
    `${a.staleReads ? ' --stale-reads' : ''}`;
  return `npm run test:sim -- --seeds 1 --start ${seed}${extra} --verbose`;
}

function main(): number {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const override: Partial<SimConfig> = {
    ...(args.nodes ? { nodes: args.nodes } : {}),
    ...(args.steps !== undefined ? { steps: args.steps } : {}),
    ...(args.staleReads ? { staleReads: true } : {}),
  };
  const t0 = performance.now();
  const total = { ops: 0, ok: 0, fail: 0, unknown: 0, elections: 0, compactions: 0, installs: 0, crashes: 0 };
  const more = {
    partitions: 0,
    transfers: 0,
    confChanges: 0,
    historyCompactions: 0,
    leaseOps: 0,
    quiesced: 0,
    woken: 0,
    delivered: 0,
    dropped: 0,
    inconclusive: 0,
  };
  let failed: SimResult | undefined;
  let ran = 0;
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    const config = configForSeed(seed, override);
    const verbose = args.verbose ? (line: string) => console.log(`  seed ${seed} ${line}`) : undefined;
    const r = runSeed(seed, config, verbose ? { verbose } : {});
    ran++;
    const s = r.stats;
    for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += s[k];
    more.partitions += s.partitions;
    more.transfers += s.transfers;
    more.confChanges += s.confChanges;
    more.historyCompactions += s.historyCompactions;
    more.leaseOps += s.leaseOps;
    more.quiesced += s.quiesced;
    more.woken += s.woken;
    more.delivered += s.delivered;
    more.dropped += s.dropped;
    if (s.linInconclusive) more.inconclusive++;
    if (args.verbose || !r.ok) {
      console.log(
        `seed ${seed} ${config.mix} ${config.nodes} nodes: ${r.ok ? 'ok' : 'FAILED'} ops=${s.ops} unknown=${s.unknown} elections=${s.elections} snapshots=${s.compactions}/${s.installs} trace=${r.trace}`,
      );
    }
    if (!r.ok) {
      failed = r;
      break;
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `seeds=${ran} ops=${total.ops} (ok ${total.ok}, fail ${total.fail}, unknown ${total.unknown}) elections=${total.elections} ` +
      `snapshots: taken ${total.compactions}, installed ${total.installs} crashes=${total.crashes} partitions=${more.partitions} ` +
      `transfers=${more.transfers} confChanges=${more.confChanges} historyCompactions=${more.historyCompactions} leaseOps=${more.leaseOps} quiesced=${more.quiesced} woken=${more.woken} messages=${more.delivered} dropped=${more.dropped} ` +
      `inconclusive=${more.inconclusive} elapsed=${secs.toFixed(1)}s`,
  );
  if (failed) {
    console.log(`\nFAILED seed ${failed.seed} (${failed.kind}): ${failed.error}`);
    console.log(`reproduce: ${reproduction(failed.seed, args)}`);
    return 1;
  }
  return 0;
}

process.exitCode = main();
