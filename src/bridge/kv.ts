/** etcd's KV service: each method is one /v3/kv route. */
import type { Handler } from './grpc.ts';
import { type Bridge, forward } from './unary.ts';

export function kvService(b: Bridge): Record<string, Handler> {
  return {
    Range: forward(b, '/v3/kv/range', false),
    Put: forward(b, '/v3/kv/put', true),
    DeleteRange: forward(b, '/v3/kv/deleterange', true),
    Txn: forward(b, '/v3/kv/txn', true),
    Compact: forward(b, '/v3/kv/compaction', true),
  };
}
