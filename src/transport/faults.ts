import type { NodeId } from '../raft/index.ts';

/**
 * Test-only fault rules between named nodes. Compiled in everywhere but
 * consulted only when the node was started with fault injection enabled (a
 * binding the production configuration never sets).
 */
export interface FaultRules {
  /** Directed links that drop everything: "a>b" drops a's messages to b. */
  readonly blocked: readonly string[];
  /** Probability in [0, 1] that a batch is dropped. */
  readonly dropRate: number;
  /** Probability in [0, 1] that a batch is sent twice. */
  readonly duplicateRate: number;
  /** Added latency per batch, in ms (0 = none). */
  readonly delayMs: number;
}

export const NO_FAULTS: FaultRules = { blocked: [], dropRate: 0, duplicateRate: 0, delayMs: 0 };

export class FaultLayer {
  private rules: FaultRules = NO_FAULTS;
  private readonly random: () => number;

  constructor(random: () => number) {
    this.random = random;
  }

  set(rules: FaultRules): void {
    this.rules = rules;
  }

  get(): FaultRules {
    return this.rules;
  }

  /** How to send a batch from `from` to `to`: how many copies (0 = drop) and after what delay. */
  plan(from: NodeId, to: NodeId): { copies: number; delayMs: number } {
    const r = this.rules;
    if (r.blocked.includes(`${from}>${to}`)) return { copies: 0, delayMs: 0 };
    if (r.dropRate > 0 && this.random() < r.dropRate) return { copies: 0, delayMs: 0 };
    const copies = r.duplicateRate > 0 && this.random() < r.duplicateRate ? 2 : 1;
    return { copies, delayMs: r.delayMs };
  }

  /** Whether an incoming batch on the link `from` -> `to` must be dropped (a partition cuts both sides). */
  blocks(from: NodeId, to: NodeId): boolean {
    return this.rules.blocked.includes(`${from}>${to}`);
  }

  /** Validates rules from the fault-control route. */
  static parse(v: unknown): FaultRules {
    if (typeof v !== 'object' || v === null) throw new Error('fault rules: expected an object');
    const o = v as Record<string, unknown>;
    const rate = (x: unknown, name: string) => {
      if (x === undefined) return 0;
      if (typeof x !== 'number' || !(x >= 0 && x <= 1)) throw new Error(`fault rules: ${name} must be in [0, 1]`);
      return x;
    };
    const blocked = o.blocked ?? [];
    if (!Array.isArray(blocked) || !blocked.every((b) => typeof b === 'string' && /^[^>]+>[^>]+$/.test(b))) {
      throw new Error('fault rules: blocked must be a list of "from>to"');
    }
    const delayMs = o.delayMs ?? 0;
    if (typeof delayMs !== 'number' || !(delayMs >= 0 && delayMs <= 10_000))
      throw new Error('fault rules: delayMs must be in [0, 10000]');
    return {
      blocked,
      dropRate: rate(o.dropRate, 'dropRate'),
      duplicateRate: rate(o.duplicateRate, 'duplicateRate'),
      delayMs,
    };
  }
}
