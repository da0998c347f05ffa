// Stands in for @types/node, which protobufjs (under @grpc/proto-loader)
// lists as a dependency. durable-raft type-checks against the Workers types
// only: Node's own typings would change the globals of every file (setTimeout
// returning a Timeout, not a number). package.json's `overrides` puts this
// empty package where @types/node would go; the Node-only code that needs
// Node's APIs types the slices it uses itself (src/bridge/grpc.ts,
// src/cli/node.ts, scripts/jepsen/node-api.ts).
export {};
