// Bindings the integration tests see (wrangler.toml plus the test vars).
declare namespace Cloudflare {
  interface Env {
    RAFT_NODE: DurableObjectNamespace<import('../../src/node/raft-node.ts').RaftNode>;
  }
}
