import { describe, expect, it } from 'vitest';
import { Cluster } from './harness.ts';

describe('harness smoke', () => {
  it('elects a leader and replicates to every node', () => {
    const c = new Cluster(['a', 'b', 'c']);
    const leader = c.elect();
    const out = c.propose(leader, 'x=1');
    expect(out?.status).toBe('applied');
    c.tickAll(3);
    for (const n of c.nodes.values()) expect(n.sm.log).toEqual(['x=1']);
  });
});
