import type { LogStore } from '../driver/interfaces.ts';
import type { ConfState, Entry, HardState, Index, Snapshot, SnapshotMeta, Term } from '../raft/index.ts';
import { checkAppend } from './memory-log-store.ts';
import { migrate } from './schema.ts';
import { asBytes, asNumber, asString, type Sql } from './sql.ts';

const TYPE_CODE = { normal: 0, conf: 1 } as const;

/**
 * The Raft WAL in SQLite (tables raft_state, raft_log, raft_snapshot).
 * The hard state, the log bounds and the snapshot metadata are cached in
 * memory (they are small); entries are always read from SQLite, so memory
 * does not grow with the log.
 *
 * The snapshot's data is not stored here: on a Durable Object the state
 * machine's own tables are the snapshot, so `snapshot().data` is empty and
 * the node streams the tables when a follower needs them.
 */
export class SqliteLogStore implements LogStore {
  private readonly sql: Sql;
  private hard: HardState;
  private snap: SnapshotMeta;
  private last: Index;

  constructor(sql: Sql) {
    this.sql = sql;
    migrate(sql);
    const s = sql.exec('SELECT term, vote, commit_index FROM raft_state WHERE id = 0')[0] ?? {};
    this.hard = { term: asNumber(s.term), vote: asString(s.vote), commit: asNumber(s.commit_index) };
    const m = sql.exec('SELECT idx, term, conf FROM raft_snapshot WHERE id = 0')[0] ?? {};
    this.snap = { index: asNumber(m.idx), term: asNumber(m.term), conf: parseConf(asString(m.conf)) };
    const l = sql.exec('SELECT MAX(idx) AS last FROM raft_log')[0];
    this.last = l?.last == null ? this.snap.index : asNumber(l.last);
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.hard, conf: this.snap.conf };
  }

  firstIndex(): Index {
    return this.snap.index + 1;
  }

  lastIndex(): Index {
    return this.last;
  }

  term(i: Index): Term | undefined {
    if (i === this.snap.index) return this.snap.term;
    if (i < this.snap.index || i > this.last) return undefined;
    const row = this.sql.exec('SELECT term FROM raft_log WHERE idx = ?', i)[0];
    return row ? asNumber(row.term) : undefined;
  }

  entries(lo: Index, hi: Index, maxBytes: number): Entry[] {
    if (lo < this.firstIndex()) throw new Error(`sqlite log: entries(${lo}) compacted`);
    const out: Entry[] = [];
    let bytes = 0;
    // Page through so that a byte limit never makes us read the whole range.
    const page = 256;
    for (let from = lo; from < hi; from += page) {
      const rows = this.sql.exec(
        'SELECT idx, term, type, data FROM raft_log WHERE idx >= ? AND idx < ? ORDER BY idx',
        from,
        Math.min(hi, from + page),
      );
      for (const r of rows) {
        const data = asBytes(r.data);
        bytes += data.byteLength + 16;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push({ index: asNumber(r.idx), term: asNumber(r.term), type: r.type === 1 ? 'conf' : 'normal', data });
      }
      if (rows.length < Math.min(hi, from + page) - from) break;
    }
    return out;
  }

  snapshot(): Snapshot {
    return { meta: this.snap, data: new Uint8Array(0) };
  }

  persist(update: {
    snapshot?: Snapshot | undefined;
    entries: readonly Entry[];
    hardState?: HardState | undefined;
  }): void {
    const base = update.snapshot?.meta.index ?? this.snap.index;
    checkAppend(update.entries, base + 1, update.snapshot ? base : this.last);
    this.sql.transaction(() => {
      if (update.snapshot) {
        this.sql.exec('DELETE FROM raft_log');
        this.writeSnapshotMeta(update.snapshot.meta);
        this.last = update.snapshot.meta.index;
      }
      const first = update.entries[0];
      if (first) {
        if (first.index <= this.last) this.sql.exec('DELETE FROM raft_log WHERE idx >= ?', first.index);
        for (const e of update.entries) {
          this.sql.exec(
            'INSERT INTO raft_log (idx, term, type, data) VALUES (?, ?, ?, ?)',
            e.index,
            e.term,
            TYPE_CODE[e.type],
            e.data,
          );
        }
        this.last = update.entries[update.entries.length - 1]?.index ?? this.last;
      }
      if (update.hardState) {
        const h = update.hardState;
        this.sql.exec(
          'UPDATE raft_state SET term = ?, vote = ?, commit_index = ? WHERE id = 0',
          h.term,
          h.vote,
          h.commit,
        );
        this.hard = h;
      }
    });
  }

  compact(meta: SnapshotMeta, _data: Uint8Array): void {
    if (meta.index <= this.snap.index) return;
    if (meta.index > this.last) throw new Error(`sqlite log: compact ${meta.index} beyond last index`);
    this.sql.transaction(() => {
      this.sql.exec('DELETE FROM raft_log WHERE idx <= ?', meta.index);
      this.writeSnapshotMeta(meta);
    });
  }

  private writeSnapshotMeta(meta: SnapshotMeta): void {
    this.sql.exec(
      'UPDATE raft_snapshot SET idx = ?, term = ?, conf = ? WHERE id = 0',
      meta.index,
      meta.term,
      JSON.stringify(meta.conf),
    );
    this.snap = meta;
  }
}

function parseConf(text: string): ConfState {
  try {
    const v = JSON.parse(text) as { voters?: unknown; learners?: unknown };
    const ids = (x: unknown) => (Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : []);
    return { voters: ids(v.voters), learners: ids(v.learners) };
  } catch {
    return { voters: [], learners: [] };
  }
}
