/**
 * Backup, restore and clone, as etcdctl names them: snapshot save FILE
 * (the group's dump, checked as it comes, to a temporary file renamed to
 * FILE once whole) and snapshot restore FILE --group NEW (checked first,
 * then streamed to the store, which makes group NEW of it). A file that
 * `etcdctl snapshot save` wrote through `durable-raft grpc-proxy` is the same
 * dump (its trailer line padded with spaces): it restores as it is. An
 * etcd snapshot (a bbolt file) is refused with a word on what to do instead.
 */
import {
  BadRequestError,
  CompactedError,
  DumpError,
  DumpReader,
  DurableRaftError,
  readDump,
  UnavailableError,
} from '../client/index.ts';
import { LineSplitter } from '../dump/index.ts';
import { UsageError } from './args.ts';
import { arg, type Command, numberFlag } from './command.ts';
import { type FileHandle, fs } from './node.ts';

const save: Command = {
  name: 'snapshot save',
  args: 'FILE',
  summary: "write the group's dump (every key, its leases, as of one revision) to FILE",
  details: [
    'The dump is NDJSON, checked as it comes (counts and SHA-256), written to a temporary file beside',
    'FILE and renamed to FILE only once whole: a save that fails leaves FILE as it was. --group picks',
    'the group to dump. Needs the admin role and a token not limited to key prefixes.',
  ].join('\n'),
  min: 1,
  max: 1,
  flags: { revision: { type: 'number', value: 'N', help: 'the group as of revision N (default: now)' } },
  async run(ctx) {
    const file = arg(ctx, 0);
    const revision = numberFlag(ctx, 'revision');
    const stop = ctx.interrupt();
    const snap = await ctx.client().snapshot({ ...(revision === undefined ? {} : { revision }), signal: stop.signal });
    const part = `${file}.${crypto.randomUUID().slice(0, 8)}.part`;
    const out = await fs.promises.open(part, 'wx').catch((e: unknown) => {
      throw new UsageError(`cannot write ${part} (beside FILE): ${messageOf(e)}`);
    });
    const reader = new DumpReader();
    let bytes = 0;
    try {
      const lines = new LineSplitter();
      for await (const chunk of snap.body) {
        await writeAll(out, chunk);
        bytes += chunk.byteLength;
        for (const line of lines.push(chunk)) reader.read(line);
      }
      reader.finish(lines.end());
      await out.sync();
      await out.close();
      await fs.promises.rename(part, file);
    } catch (e) {
      await out.close().catch(() => {});
      await fs.promises.rm(part, { force: true });
      throw e instanceof DumpError ? storeErrorOf(e) : e;
    }
    const end = reader.end;
    const view = {
      file,
      group: reader.header?.group,
      revision: snap.revision,
      keys: end?.keys ?? 0,
      leases: end?.leases ?? 0,
      bytes,
      sha256: end?.sha256,
    };
    ctx.print({
      simple: [
        `Snapshot saved at ${file}: revision ${view.revision}, ${count(view.keys, 'key')}, ${count(view.leases, 'lease')}`,
      ],
      json: view,
      table: {
        headers: ['FILE', 'REVISION', 'KEYS', 'LEASES', 'BYTES'],
        rows: [[file, String(view.revision), String(view.keys), String(view.leases), String(bytes)]],
      },
    });
  },
};

const restore: Command = {
  name: 'snapshot restore',
  args: 'FILE --group NEW',
  summary: 'make the new group named by --group from the dump in FILE',
  details: [
    'FILE is checked first (a dump cut short or corrupted is refused at once), then streamed to the store,',
    'which checks it again and makes the group only once the whole dump is in: a refused or failed',
    "restore leaves no group. Keys get the new group's revisions; leases keep their ids with the TTL",
    'they had left. Needs the admin role and a token not limited to groups. FILE may also be one that',
    "etcdctl snapshot save wrote through 'durable-raft grpc-proxy' (the same dump); etcd's own snapshots",
    '(bbolt files) are not read: move etcd keys with etcdctl make-mirror through grpc-proxy instead.',
  ].join('\n'),
  min: 1,
  max: 1,
  flags: { size: { type: 'number', value: 'N', help: "the new group's voters: 3 (default) or 5" } },
  async run(ctx) {
    const name = ctx.group;
    if (name === undefined || name === 'default')
      throw new UsageError('--group NEW names the group to create (a new one: not the default group)');
    const size = numberFlag(ctx, 'size') ?? 3;
    if (size !== 3 && size !== 5) throw new UsageError('--size is 3 or 5');
    const file = arg(ctx, 0);
    await check(file);
    const stop = ctx.interrupt();
    const r = await ctx.client().restore(name, fs.createReadStream(file), { size, signal: stop.signal });
    ctx.print({
      simple: [
        `Restored group ${r.name} from ${file}: ${count(r.keys, 'key')}, ${count(r.leases, 'lease')}, at revision ${r.revision} (${r.source.group} at revision ${r.source.revision})`,
        ...(r.expiredLeases > 0
          ? [`${count(r.expiredLeases, 'lease')} ran out during the restore, with ${count(r.expiredKeys, 'key')}`]
          : []),
      ],
      json: r,
      table: {
        headers: ['GROUP', 'KEYS', 'LEASES', 'REVISION', 'SOURCE', 'SOURCE_REVISION'],
        rows: [
          [r.name, String(r.keys), String(r.leases), String(r.revision), r.source.group, String(r.source.revision)],
        ],
      },
    });
  },
};

/** Reads FILE through as a dump: a refusal names the file and the line. */
async function check(file: string): Promise<void> {
  let first: Uint8Array | undefined;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for await (const chunk of fs.createReadStream(file)) {
      first ??= chunk;
      yield chunk;
    }
  }
  try {
    for await (const _ of readDump(chunks())) {
      // Each line is checked as it is read; the trailer at the end.
    }
  } catch (e) {
    if (e instanceof DumpError && first !== undefined && isBolt(first))
      throw new BadRequestError(
        400,
        'bad_dump',
        `${file}: an etcd snapshot (a bbolt file), not a durable-raft dump: etcd restores it (etcdutl snapshot restore; etcdctl before 3.5); ` +
          "to bring etcd's keys here, run etcdctl make-mirror through 'durable-raft grpc-proxy'",
      );
    if (e instanceof DumpError) throw new BadRequestError(400, 'bad_dump', `${file}: ${e.message}`);
    throw new UsageError(`cannot read ${file}: ${messageOf(e)}`);
  }
}

/** bbolt's first page: a 16-byte page header, then the meta page's magic 0xED0CDAED (little-endian). */
const BOLT_MAGIC = [0xed, 0xda, 0x0c, 0xed];

function isBolt(head: Uint8Array): boolean {
  return BOLT_MAGIC.every((b, i) => head[16 + i] === b);
}

async function writeAll(out: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let at = 0; at < chunk.byteLength; ) at += (await out.write(chunk, at, chunk.byteLength - at)).bytesWritten;
}

/** A dump that ended badly, as the error of the store that sent it (for the exit code and the line). */
function storeErrorOf(e: DumpError): DurableRaftError {
  const s = e.storeError;
  if (s === undefined) return new UnavailableError(0, 'truncated', `the dump broke off: ${e.message}`);
  if (s.code === 'compacted') return new CompactedError(0, s.message);
  if (s.code === 'unavailable') return new UnavailableError(503, s.code, s.message);
  return new DurableRaftError(500, s.code, s.message);
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const SNAPSHOT_COMMANDS: readonly Command[] = [save, restore];
