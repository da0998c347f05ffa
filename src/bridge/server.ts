/**
 * The bridge's server: etcd's v3 gRPC services on one port, each call
 * turned into calls on the store's /v3 routes. It holds no state that
 * matters (a watch's last delivered revision, while its stream lasts), so
 * stopping it loses nothing the store acknowledged.
 *
 * @example
 * const bridge = await startBridge({ endpoint: 'http://127.0.0.1:8787', listen: '127.0.0.1:0' });
 * console.log(bridge.port); // etcdctl --endpoints 127.0.0.1:<port> get foo
 * await bridge.close();
 */
import { authService } from './auth.ts';
import { clusterService } from './cluster.ts';
import { electionService, lockService } from './concurrency.ts';
import { Gateway, type SocketOpener } from './gateway.ts';
import { grpc } from './grpc.ts';
import { kvService } from './kv.ts';
import { leaseService } from './lease.ts';
import { maintenanceService } from './maintenance.ts';
import { etcdServices } from './protos.ts';
import type { Bridge } from './unary.ts';
import { watchService } from './watch.ts';

export interface BridgeOptions {
  /** The store's URL (http:// or https://); its /v3 routes serve the calls. */
  readonly endpoint: string;
  /** host:port to listen on (default 127.0.0.1:2379; port 0 picks a free one). */
  readonly listen?: string;
  /** The bearer token to send the store with calls that bring none of their own. */
  readonly token?: string;
  /** The fetch to reach the store with (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Opens the WebSockets a Watch stream's watches travel on (default: Node's WebSocket). */
  readonly webSocket?: SocketOpener;
  /** How often a watch that asked for progress_notify gets one (default 10 minutes, etcd's). */
  readonly progressNotifyMs?: number;
}

export interface BridgeHandle {
  /** The host it listens on, as given. */
  readonly host: string;
  /** The port it listens on (the one picked, for port 0). */
  readonly port: number;
  /** Stops taking calls, ends the open ones, and settles once the server is down. */
  close(): Promise<void>;
}

export const DEFAULT_LISTEN = '127.0.0.1:2379';

/** Reads `host:port` (`[::1]:2379` for IPv6); throws a clear error for anything else. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new Error(`--listen: expected HOST:PORT (e.g. ${DEFAULT_LISTEN}), not ${JSON.stringify(listen)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Starts the bridge; settles once it listens. */
export async function startBridge(options: BridgeOptions): Promise<BridgeHandle> {
  const endpoint = options.endpoint.replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(endpoint) || !URL.canParse(endpoint))
    throw new Error(`the endpoint must be an http:// or https:// URL, not ${JSON.stringify(options.endpoint)}`);
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  const b: Bridge = { gateway: new Gateway(endpoint, options.fetch, options.webSocket), token: options.token };
  const services = etcdServices();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  server.addService(services.KV, kvService(b));
  server.addService(services.Watch, watchService(b, options.progressNotifyMs));
  server.addService(services.Lease, leaseService(b));
  server.addService(services.Cluster, clusterService(b));
  server.addService(services.Maintenance, maintenanceService(b));
  server.addService(services.Auth, authService(b));
  server.addService(services.Lock, lockService(b));
  server.addService(services.Election, electionService(b));
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  let closing: Promise<void> | undefined;
  return {
    host,
    port: bound,
    close() {
      // Open streams (watches) would hold a graceful shutdown for ever: end them.
      closing ??= new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      });
      return closing;
    },
  };
}
