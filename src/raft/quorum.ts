import type { Index, NodeId } from './types.ts';

/** Outcome of counting votes among a set of voters. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest index that a majority of `voters` have matched (paper §5.3,
 * "a majority of matchIndex[i] >= N"). With no voters there is nothing to
 * commit, so it answers 0.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => Index): Index {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  // Sorted descending, the (majority-1)-th value is matched by a majority.
  return matches[Math.floor(voters.length / 2)] ?? 0;
}

/** Counts granted and rejected votes (paper §5.2): a majority of either decides. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const majority = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= majority) return 'won';
  if (rejected >= majority) return 'lost';
  return 'pending';
}

/** Whether `acked` contains a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], acked: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (acked(id)) n++;
  return n >= Math.floor(voters.length / 2) + 1;
}
