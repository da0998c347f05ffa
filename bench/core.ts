/**
 * Core speed: committed-and-applied entries per second of an in-memory
 * 3-node cluster with an instant network, for several proposal batch sizes.
 * Run: npm run bench:core [-- --entries 200000]
 */
import { type ApplyItem, Driver, type StateMachine } from '../src/driver/index.ts';
import type { ConfState, Message, Snapshot } from '../src/raft/index.ts';
import { MemoryLogStore } from '../src/storage/index.ts';

class CountingMachine implements StateMachine<number> {
  private last = 0;
  private confState: ConfState | undefined;
  applied(): number {
    return this.last;
  }
  conf(): ConfState | undefined {
    return this.confState;
  }
  apply(items: readonly ApplyItem[]): number[] {
    const out: number[] = [];
    for (const it of items) {
      this.last = it.index;
      if (it.kind === 'command') out.push(it.index);
      else if (it.kind === 'conf') this.confState = it.conf;
    }
    return out;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(s: Snapshot): void {
    this.last = s.meta.index;
  }
}

function rng(seed: number) {
  let a = seed;
  return { int: (n: number) => ((a = (a * 1103515245 + 12345) % 2147483648), a % n) };
}

function run(batch: number, total: number): { entriesPerSec: number; heapMb: number } {
  const ids = ['n0', 'n1', 'n2'];
  const queue: Message[] = [];
  const drivers = new Map<string, Driver<number>>();
  const machines = new Map<string, CountingMachine>();
  ids.forEach((id, i) => {
    const sm = new CountingMachine();
    machines.set(id, sm);
    drivers.set(
      id,
      new Driver<number>({
        raft: { id, rng: rng(i + 1), electionTicks: 10, heartbeatTicks: 1 },
        log: new MemoryLogStore(),
        sm,
        transport: { send: (ms) => queue.push(...ms) },
        bootstrap: { voters: ids, learners: [] },
        compactAfterEntries: 10_000,
        deferProcessing: true,
      }),
    );
  });
  const deliver = () => {
    // Index-walk instead of shift(): the queue can grow large with no copying.
    for (let i = 0; i < queue.length; i++) {
      const m = queue[i] as Message;
      drivers.get(m.to)?.receive(m);
    }
    queue.length = 0;
  };
  const leaderDriver = drivers.get('n0') as Driver<number>;
  leaderDriver.campaign();
  for (let i = 0; i < 50 && leaderDriver.status().role !== 'leader'; i++) deliver();
  if (leaderDriver.status().role !== 'leader') throw new Error('no leader');
  deliver();

  const payload = new Uint8Array(64).fill(7);
  const start = machines.get('n0')?.applied() ?? 0;
  const t0 = performance.now();
  let proposed = 0;
  while (proposed < total) {
    for (let i = 0; i < batch; i++) leaderDriver.propose(payload, () => {});
    leaderDriver.process();
    proposed += batch;
    deliver();
  }
  const target = start + proposed;
  for (let i = 0; i < 100 && [...machines.values()].some((m) => m.applied() < target); i++) deliver();
  const secs = (performance.now() - t0) / 1000;
  for (const m of machines.values()) if (m.applied() < target) throw new Error('not all applied');
  return { entriesPerSec: Math.round(proposed / secs), heapMb: Math.round(process.memoryUsage().heapUsed / 1e5) / 10 };
}

const argv = process.argv.slice(2);
const totalArg = argv.indexOf('--entries');
const total = totalArg >= 0 ? Number(argv[totalArg + 1]) : 200_000;
console.log(`core bench: 3 nodes, in-memory, instant network, ${total} entries of 64 bytes, node ${process.version}`);
console.log('batch  entries/s  heapMB');
for (const batch of [1, 64]) {
  run(batch, Math.min(total, 20_000)); // warm-up
  const r = run(batch, total);
  console.log(`${String(batch).padStart(5)}  ${String(r.entriesPerSec).padStart(9)}  ${String(r.heapMb).padStart(6)}`);
}
