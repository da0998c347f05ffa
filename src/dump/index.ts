/**
 * The dump of a group (backup, restore, clone): its NDJSON format, checked a
 * line at a time with a streaming SHA-256. Pure (no I/O, no platform API),
 * so the Worker's export and restore, the client and the CLI share it.
 */
export {
  chunksOf,
  DUMP_FORMAT,
  DUMP_VERSION,
  type DumpEnd,
  DumpError,
  type DumpHeader,
  type DumpLease,
  type DumpLine,
  DumpReader,
  DumpWriter,
  dumpErrorLine,
  LineSplitter,
  MAX_DUMP_LINE_BYTES,
  readDump,
} from './format.ts';
export { Sha256 } from './sha256.ts';
