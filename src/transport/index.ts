export {
  decodeEnvelope,
  ENVELOPE_VERSION,
  type Envelope,
  EnvelopeError,
  encodeEnvelope,
  MAX_ENVELOPE_BYTES,
} from './codec.ts';
export { FaultLayer, type FaultRules, NO_FAULTS } from './faults.ts';
export { FetchTransport, type FetchTransportOptions, type Peer, RAFT_PATH } from './fetch-transport.ts';
export {
  type AckMsg,
  type ChunkMsg,
  decodeStreamMsg,
  encodeStreamMsg,
  MAX_STREAM_BYTES,
  SNAPSHOT_PATH,
  STREAM_VERSION,
  type StreamMsg,
} from './stream-codec.ts';
