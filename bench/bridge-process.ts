/**
 * The gRPC bridge in a process of its own for the bench (bench/bridge.ts
 * forks it with the store's URL), so its CPU is neither the load
 * generator's nor workerd's. It says `{ port }` once it listens, and
 * answers `'cpu'` with its CPU time so far (µs, user + system).
 */
import { startBridge } from '../src/bridge/index.ts';

const endpoint = process.argv[2];
if (endpoint === undefined) throw new Error('usage: bridge-process.ts STORE_URL');
const bridge = await startBridge({ endpoint, listen: '127.0.0.1:0' });
process.send?.({ port: bridge.port });
process.on('message', (m: unknown) => {
  if (m !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.on('disconnect', () => {
  void bridge.close().then(() => process.exit(0));
});
