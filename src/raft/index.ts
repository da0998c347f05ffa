/** The pure Raft core: see README "Raft core" and shared/DESIGN.md. */
export { applyToConf, decodeConfChange, encodeConfChange } from './conf-change.ts';
export type { Config } from './config.ts';
export { entrySize } from './log.ts';
export type { ProposeResult } from './raft.ts';
export { RawNode, type Status } from './raw-node.ts';
export type { Storage } from './storage.ts';
export * from './types.ts';
