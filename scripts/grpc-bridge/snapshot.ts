/**
 * `etcdctl snapshot save` through the bridge, and back: keys (one on a
 * lease) put through the bridge, saved by the real etcdctl, the file
 * checked as a durable-raft dump (header, counts, SHA-256; its size what
 * etcdctl 3.5+ checks), restored with our CLI into a new group, and read
 * back through a second bridge started with `--group` on that group: the
 * same keys and values. That bridge also shows that --group picks the group
 * dumped: before the restore, its save fails and leaves no file; after, the
 * file it saves is the new group's dump.
 */
import { DumpReader, readDump } from '../../src/dump/index.ts';
import { path, proc } from '../jepsen/node-api.ts';
import type { Check } from './etcd3.ts';
import { ctl, durableRaft, type Run, startProxy } from './processes.ts';

const fs = proc.getBuiltinModule('node:fs') as {
  existsSync(p: string): boolean;
  readFileSync(p: string): Uint8Array;
  readdirSync(p: string): string[];
};

const PREFIX = 'gsnap/';
const COPY = 'bridge-copy';

const show = (r: Run): string =>
  `exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 400))}, stderr ${JSON.stringify(r.stderr.slice(0, 600))}`;

async function* whole(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** What a file holds as a dump: its header's group and revision, its keys by name, or why it is not one. */
async function readFile(
  file: string,
): Promise<{ group: string; revision: number; keys: Map<string, string>; leases: number; bytes: number } | string> {
  const bytes = fs.readFileSync(file);
  const reader = new DumpReader();
  const keys = new Map<string, string>();
  try {
    for await (const line of readDump(whole(bytes), reader))
      if (line.kind === 'kv') keys.set(String(line.kv.key), String(line.kv.value));
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  const { header, end } = reader.finish();
  return { group: header.group, revision: header.revision, keys, leases: end.leases, bytes: bytes.byteLength };
}

/** `key value` lines of etcdctl's `get --prefix` as a map. */
function pairs(r: Run): Map<string, string> {
  const lines = r.stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(lines[i] as string, lines[i + 1] as string);
  return out;
}

/** Only the keys under PREFIX (the other checks write beside these ones). */
const under = (m: Map<string, string>): Map<string, string> => new Map([...m].filter(([k]) => k.startsWith(PREFIX)));

/** A dump read, in a few words (for a failure's detail). */
const summary = (d: { group: string; revision: number; keys: Map<string, string>; leases: number; bytes: number }) =>
  JSON.stringify({ ...d, keys: d.keys.size, ours: [...under(d.keys)] });

const same = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

export async function snapshotChecks(store: string, ep: string, listen: string, dir: string): Promise<Check[]> {
  const out: Check[] = [];
  const grant = await ctl(ep, ['lease', 'grant', '600']);
  const lease = /^lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1] ?? '0';
  for (let i = 0; i < 5; i++) await ctl(ep, ['put', `${PREFIX}${i}`, `value ${i}`]);
  await ctl(ep, ['put', `${PREFIX}leased`, 'on a lease', `--lease=${lease}`]);
  await ctl(ep, ['put', `${PREFIX}0`, 'value 0, again']);
  const source = await ctl(ep, ['get', '--prefix', PREFIX]);

  const file = path.join(dir, 'etcdctl.db');
  const save = await ctl(ep, ['snapshot', 'save', file]);
  const dump = fs.existsSync(file) ? await readFile(file) : 'no file';
  const ok =
    save.code === 0 &&
    save.stdout === `Snapshot saved at ${file}\n` &&
    typeof dump !== 'string' &&
    dump.group === 'default' &&
    dump.bytes % 512 === 32 &&
    dump.leases >= 1 &&
    same(under(dump.keys), pairs(source)) &&
    pairs(source).size === 6;
  out.push({
    name: "etcdctl snapshot save through the bridge: a whole durable-raft dump (trailer's counts and SHA-256 check)",
    ok,
    detail: `${show(save)}; dump ${typeof dump === 'string' ? dump : summary(dump)}`,
  });

  // A bridge on a group that does not exist yet: its save fails and leaves nothing behind.
  const copy = await startProxy(store, listen, COPY);
  const early = path.join(dir, 'early.db');
  const refused = await ctl(copy.endpoint, ['snapshot', 'save', early]);
  out.push({
    name: 'etcdctl snapshot save of a group that does not exist: NotFound, no file, no .part',
    ok:
      refused.code !== 0 &&
      refused.stderr.includes(`Error: rpc error: code = NotFound desc = durable-raft: no group "${COPY}"`) &&
      !fs.existsSync(early) &&
      !fs.readdirSync(dir).some((f) => f.startsWith('early.db')),
    detail: show(refused),
  });

  const restore = await durableRaft(store, ['snapshot', 'restore', file, '--group', COPY]);
  const back = await ctl(copy.endpoint, ['get', '--prefix', PREFIX]);
  out.push({
    name: `durable-raft snapshot restore of etcdctl's file --group ${COPY}: the same keys and values, read through a --group bridge`,
    ok:
      restore.code === 0 &&
      restore.stdout.startsWith(`Restored group ${COPY} from ${file}: `) &&
      pairs(back).size === 6 &&
      same(pairs(back), pairs(source)),
    detail: `${show(restore)}; source ${show(source)}; copy ${show(back)}`,
  });

  const again = path.join(dir, 'copy.db');
  const saveCopy = await ctl(copy.endpoint, ['snapshot', 'save', again]);
  const copied = fs.existsSync(again) ? await readFile(again) : 'no file';
  out.push({
    name: `etcdctl snapshot save through the --group ${COPY} bridge: that group's dump`,
    ok:
      saveCopy.code === 0 &&
      typeof copied !== 'string' &&
      copied.group === COPY &&
      same(copied.keys, typeof dump === 'string' ? new Map() : dump.keys),
    detail: `${show(saveCopy)}; dump ${typeof copied === 'string' ? copied : summary(copied)}`,
  });
  await copy.proc.stop();
  return out;
}
