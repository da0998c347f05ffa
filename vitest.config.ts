import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

/**
 * Two projects (shared/DESIGN.md, Tests):
 * - `core`: plain Node. The Raft core, the deterministic simulator, the state
 *   machine, storage and the driver: no Cloudflare APIs.
 * - `workers`: inside workerd through @cloudflare/vitest-plugin, with the
 *   production wrangler.toml plus the test-only vars below: real Durable
 *   Objects, real SQLite, internal fetch, alarms, ctx.abort().
 */

/** Test-only settings: fast ticks so elections take milliseconds, and the fault layer. */
const TEST_VARS = {
  TICK_MS: '20',
  HEARTBEAT_TICKS: '2',
  ELECTION_TICKS: '10',
  ELECTION_JITTER_TICKS: '10',
  QUIESCE_AFTER_TICKS: '25',
  RPC_TIMEOUT_MS: '1000',
  // Compact often, so tests reach snapshots with hundreds of entries, not tens of thousands.
  COMPACT_AFTER_ENTRIES: '500',
  COMPACT_KEEP_ENTRIES: '100',
  // A short history, so tests reach automatic compaction after a few hundred writes.
  HISTORY_KEEP_REVISIONS: '200',
  FAULT_INJECTION: 'enabled',
  // Knobs of the longer runs, read by the tests from env (import.meta.env is fixed when a test file is first transformed).
  ...knobs('FUZZ_RUNS', 'FUZZ_SEED', 'BOUNDS_ENTRIES'),
};

function knobs(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]]] : [])));
}

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'core',
          environment: 'node',
          include: [
            'test/raft/**/*.test.ts',
            'test/sim/**/*.test.ts',
            'test/support/**/*.test.ts',
            'test/kv/**/*.test.ts',
            'test/dump/**/*.test.ts',
            'test/storage/**/*.test.ts',
            'test/driver/**/*.test.ts',
            'test/transport/**/*.test.ts',
            'test/node/**/*.test.ts',
            'test/cli/**/*.test.ts',
            'test/bridge/**/*.test.ts',
          ],
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: TEST_VARS,
              // Vitest 5 probes node:inspector (it copes when it is missing, but the plugin logs an error).
              compatibilityFlags: ['enable_nodejs_inspector_module'],
            },
          }),
        ],
        test: {
          name: 'workers',
          include: ['test/integration/**/*.test.ts', 'test/client/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
