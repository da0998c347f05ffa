/**
 * grpc-proxy: serves etcd's v3 gRPC API on a local port in front of the
 * store (src/bridge), for etcdctl and etcd's client libraries, until SIGINT
 * or SIGTERM. The bridge (and gRPC) is loaded only when this command runs.
 */

import { groupPath } from '../client/index.ts';
import { UsageError } from './args.ts';
import { type Command, EXIT, stringFlag } from './command.ts';

const grpcProxy: Command = {
  name: 'grpc-proxy',
  args: '',
  summary: "serve etcd's v3 gRPC API (etcdctl, clientv3, etcd3) in front of the store, until interrupted",
  details: [
    "Each gRPC call becomes calls on the store's /v3 routes with the --token given (a client that sends its",
    'own token, after Authenticate, has that one forwarded instead). It holds no state that matters: stop and',
    'start it at will; etcd\'s clients resume their watches. It prints "listening on HOST:PORT" once it serves.',
    '  ETCDCTL_API=3 etcdctl --endpoints 127.0.0.1:2379 get --prefix config/',
    "etcdctl snapshot save FILE saves the group's dump (a durable-raft dump, not etcd's bbolt file): restore it",
    "with 'durable-raft snapshot restore FILE --group NEW', not with etcdutl.",
  ].join('\n'),
  min: 0,
  max: 0,
  flags: {
    listen: {
      type: 'string',
      value: 'HOST:PORT',
      help: 'where to serve gRPC (default 127.0.0.1:2379; port 0 picks a free one)',
    },
  },
  async run(ctx) {
    const { DEFAULT_LISTEN, parseListen, startBridge } = await import('../bridge/index.ts');
    const listen = stringFlag(ctx, 'listen') ?? DEFAULT_LISTEN;
    try {
      parseListen(listen);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const stop = ctx.interrupt();
    // The group's routes (--group): every call of the bridge goes to them.
    const endpoint = ctx.endpoint + groupPath(ctx.group);
    const bridge = await startBridge({
      endpoint,
      listen,
      ...(ctx.token === undefined ? {} : { token: ctx.token }),
    });
    const host = bridge.host.includes(':') ? `[${bridge.host}]` : bridge.host;
    ctx.io.write(`listening on ${host}:${bridge.port} (etcd v3 gRPC) for ${endpoint}`);
    await stop.received;
    await bridge.close();
    return EXIT.ok;
  },
};

export const GRPC_PROXY_COMMANDS: readonly Command[] = [grpcProxy];
