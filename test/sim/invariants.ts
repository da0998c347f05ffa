import type { ApplyItem } from '../../src/driver/index.ts';
import type { Entry, HardState, Index, NodeId, Status, Term } from '../../src/raft/index.ts';
import type { MemoryLogStore } from '../../src/storage/index.ts';
import { hashBytes, hashString } from './hash.ts';

/** A safety property failed; the world adds the seed and the virtual time. */
export class SimViolation extends Error {
  readonly kind: string;
  constructor(kind: string, message: string) {
    super(`${kind}: ${message}`);
    this.kind = kind;
    this.name = 'SimViolation';
  }
}

/** The identity of an entry's content (its type and bytes). */
export function entryHash(e: Pick<Entry, 'type' | 'data'>): number {
  return hashBytes(e.data, e.type === 'conf' ? 0x1234567 : 0x811c9dc5);
}

/** The identity of an applied item (the state machine's view of an entry). */
export function itemHash(it: ApplyItem): number {
  switch (it.kind) {
    case 'command':
      return hashBytes(it.data);
    case 'noop':
      return 0x6e6f6f70;
    case 'conf':
      return hashString(`conf:${it.conf.voters.join(',')}|${it.conf.learners.join(',')}`);
  }
}

/**
 * The Raft safety properties (paper §5.2-5.4, Figure 3), checked
 * incrementally on every persist, apply and event of the run:
 * - Election Safety: at most one leader per term, over the whole run;
 * - Log Matching: one (index, term) names one entry everywhere, and logs
 *   that agree on an entry agree on every entry before it;
 * - Leader Completeness: a new leader holds every entry committed before it;
 * - State Machine Safety: every node applies the same item at an index and
 *   reaches the same state digest there;
 * plus the durable-state rules the driver relies on (§5.1, Figure 2):
 * term and commit never go back, one vote per term, no committed entry
 * overwritten, and a restart resumes from at least the persisted commit.
 */
export class Invariants {
  /** term -> its leader. */
  private readonly leaders = new Map<Term, NodeId>();
  /** `${index}:${term}` -> entry hash, for every entry any store ever held. */
  private readonly entries = new Map<string, number>();
  /** index -> the committed entry there (term and hash), and the term in which it was first seen committed. */
  private readonly committed = new Map<Index, { term: Term; hash: number; inTerm: Term }>();
  private maxCommitted = 0;
  /** index -> hash of the item applied there. */
  private readonly applied = new Map<Index, number>();
  /** applied index -> digest of the state machine right after it. */
  private readonly states = new Map<Index, string>();
  /** Per node: the commit index last observed in its current life. */
  private readonly commitSeen = new Map<NodeId, Index>();
  private readonly appliedSeen = new Map<NodeId, Index>();
  elections = 0;

  /** Called with the update a store is about to make durable, before it does. */
  onPersist(
    node: NodeId,
    store: MemoryLogStore,
    update: {
      snapshot?: { meta: { index: Index; term: Term } } | undefined;
      entries: readonly Entry[];
      hardState?: HardState | undefined;
    },
  ): void {
    const before = store.initialState().hardState;
    const hs = update.hardState;
    if (hs) {
      if (hs.term < before.term)
        throw new SimViolation('term regression', `${node} persists term ${hs.term} after ${before.term}`);
      if (hs.term === before.term && before.vote !== '' && hs.vote !== before.vote)
        throw new SimViolation(
          'double vote',
          `${node} changes its vote in term ${hs.term}: ${before.vote} -> ${hs.vote}`,
        );
      if (hs.commit < before.commit)
        throw new SimViolation('commit regression', `${node} persists commit ${hs.commit} after ${before.commit}`);
    }
    const first = update.entries[0];
    if (!update.snapshot && first && first.index <= store.lastIndex() && first.index <= before.commit) {
      throw new SimViolation(
        'committed entry overwritten',
        `${node} truncates its log at ${first.index}, at or below its commit ${before.commit}`,
      );
    }
    for (const e of update.entries) {
      const h = entryHash(e);
      const key = `${e.index}:${e.term}`;
      const seen = this.entries.get(key);
      if (seen === undefined) this.entries.set(key, h);
      else if (seen !== h)
        throw new SimViolation('log matching', `${node} persists another entry at index ${e.index} term ${e.term}`);
    }
  }

  /** Called after a node applied a batch; `digest` is its state right after the last item. */
  onApply(node: NodeId, items: readonly ApplyItem[], lastIndex: Index, digest: string): void {
    for (const it of items) {
      const h = itemHash(it);
      const seen = this.applied.get(it.index);
      if (seen === undefined) this.applied.set(it.index, h);
      else if (seen !== h)
        throw new SimViolation('state machine safety', `${node} applies another entry at index ${it.index}`);
    }
    this.checkState(node, lastIndex, digest);
  }

  /** Called after a node installed a snapshot at `index`. */
  onRestore(node: NodeId, index: Index, digest: string): void {
    this.checkState(node, index, digest);
  }

  private checkState(node: NodeId, index: Index, digest: string): void {
    const seen = this.states.get(index);
    if (seen === undefined) this.states.set(index, digest);
    else if (seen !== digest)
      throw new SimViolation(
        'state machine safety',
        `${node} state at applied index ${index} differs: ${digest} vs ${seen}`,
      );
    const prev = this.appliedSeen.get(node) ?? 0;
    if (index < prev) throw new SimViolation('applied regression', `${node} applied index ${index} after ${prev}`);
    this.appliedSeen.set(node, index);
  }

  /** After any event on a live node: leadership, commit progress, Leader Completeness. */
  afterEvent(node: NodeId, st: Status, store: MemoryLogStore): void {
    const prevCommit = this.commitSeen.get(node) ?? 0;
    if (st.commit < prevCommit)
      throw new SimViolation('commit regression', `${node} commit ${st.commit} after ${prevCommit}`);
    if (st.commit > prevCommit) {
      this.recordCommitted(node, st.term, store, Math.max(prevCommit + 1, store.firstIndex()), st.commit);
      this.commitSeen.set(node, st.commit);
    }
    if (st.role !== 'leader') return;
    const leader = this.leaders.get(st.term);
    if (leader === undefined) {
      this.leaders.set(st.term, node);
      this.elections++;
      this.checkLeaderCompleteness(node, st.term, store);
    } else if (leader !== node) {
      throw new SimViolation('election safety', `${node} and ${leader} both lead term ${st.term}`);
    }
  }

  private recordCommitted(node: NodeId, term: Term, store: MemoryLogStore, lo: Index, hi: Index): void {
    if (lo > hi) return;
    const ents = store.entries(lo, hi + 1, Number.POSITIVE_INFINITY);
    if (ents.length !== hi - lo + 1)
      throw new SimViolation(
        'commit beyond log',
        `${node} commits ${hi} but its store holds ${lo}..${store.lastIndex()}`,
      );
    for (const e of ents) {
      const h = entryHash(e);
      const c = this.committed.get(e.index);
      if (c === undefined) this.committed.set(e.index, { term: e.term, hash: h, inTerm: term });
      else if (c.term !== e.term || c.hash !== h)
        throw new SimViolation(
          'state machine safety',
          `${node} commits ${e.index}@${e.term}, but ${e.index}@${c.term} was committed before`,
        );
    }
    this.maxCommitted = Math.max(this.maxCommitted, hi);
  }

  /**
   * Leader Completeness (§5.4): the leader of term T holds every entry
   * committed in an earlier term. (A slow candidate may still win an older
   * term after a newer one committed entries: those it need not hold.)
   */
  private checkLeaderCompleteness(node: NodeId, term: Term, store: MemoryLogStore): void {
    for (let i = store.firstIndex(); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (c === undefined || c.inTerm >= term) continue;
      if (store.term(i) !== c.term)
        throw new SimViolation(
          'leader completeness',
          `${node} leads term ${term} with ${i}@${store.term(i) ?? 'none'}, but ${i}@${c.term} was committed in term ${c.inTerm}`,
        );
    }
  }

  /** Called when a node comes back: it must resume from at least what it had made durable. */
  onRestart(node: NodeId, st: Status, persistedCommit: Index, persistedApplied: Index): void {
    if (st.commit < persistedCommit)
      throw new SimViolation(
        'commit regression',
        `${node} restarts at commit ${st.commit} < persisted ${persistedCommit}`,
      );
    if (st.applied < persistedApplied)
      throw new SimViolation(
        'applied regression',
        `${node} restarts at applied ${st.applied} < persisted ${persistedApplied}`,
      );
    this.commitSeen.set(node, st.commit);
  }

  /** Log Matching (§5.3) over whole stores: two logs that agree on an entry agree on all before it. */
  checkLogMatching(stores: readonly { id: NodeId; store: MemoryLogStore }[]): void {
    for (let x = 0; x < stores.length; x++) {
      for (let y = x + 1; y < stores.length; y++) {
        const a = stores[x] as { id: NodeId; store: MemoryLogStore };
        const b = stores[y] as { id: NodeId; store: MemoryLogStore };
        const lo = Math.max(a.store.firstIndex(), b.store.firstIndex());
        let i = Math.min(a.store.lastIndex(), b.store.lastIndex());
        while (i >= lo && a.store.term(i) !== b.store.term(i)) i--;
        for (let j = i - 1; j >= lo; j--) {
          if (a.store.term(j) !== b.store.term(j))
            throw new SimViolation(
              'log matching',
              `${a.id} and ${b.id} agree at ${i} but differ at ${j} (${a.store.term(j)} vs ${b.store.term(j)})`,
            );
        }
      }
    }
  }

  summary(): { elections: number; maxCommitted: Index } {
    return { elections: this.elections, maxCommitted: this.maxCommitted };
  }
}
