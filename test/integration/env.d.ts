// Bindings the integration tests see (wrangler.toml plus the test vars).
declare namespace Cloudflare {
  interface Env {
    RAFT_NODE: DurableObjectNamespace<import('../../src/node/raft-node.ts').RaftNode>;
  }
  // The Worker's main module, so `exports.default` (cloudflare:workers) is typed.
  interface GlobalProps {
    mainModule: typeof import('../../src/index.ts');
    durableNamespaces: 'RaftNode';
  }
}
