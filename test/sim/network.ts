import type { Message, NodeId } from '../../src/raft/index.ts';
import type { SimConfig } from './config.ts';
import type { SimRng } from './rng.ts';

interface InFlight {
  readonly at: number;
  readonly seq: number;
  readonly msg: Message;
  /** A lost message: at `at` its sender learns it failed (a fetch that errored), nothing is delivered. */
  readonly lost: boolean;
}

/** What `due` hands back: a message to deliver, or a failed send to report to its sender. */
export interface Arrival {
  readonly msg: Message;
  readonly lost: boolean;
}

/**
 * The simulated network: every message gets a random delay (so messages
 * reorder), and may be lost or duplicated. Cuts are one-way (`a` cannot
 * reach `b`) and are checked when a message arrives, so a partition takes
 * effect at once on what is in flight.
 */
export class Network {
  private readonly heap: InFlight[] = [];
  private seq = 0;
  private readonly cuts = new Set<string>();
  private readonly rng: SimRng;
  private readonly net: SimConfig['net'];
  /** Extra one-way delay for messages to or from a node (a slow follower). */
  readonly slow = new Map<NodeId, number>();
  /** Fault-free mode (the heal phase): no loss, no duplicates, no long delays. */
  calm = false;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(rng: SimRng, net: SimConfig['net']) {
    this.rng = rng;
    this.net = net;
  }

  send(m: Message, now: number): void {
    this.sent++;
    const r = this.rng;
    if (!this.calm && r.chance(this.net.drop)) {
      this.dropped++;
      if (this.net.reportLoss) this.push(m, now + this.delay(m), true);
      return;
    }
    this.push(m, now + this.delay(m), false);
    if (!this.calm && r.chance(this.net.duplicate)) {
      this.duplicated++;
      this.push(m, now + this.delay(m), false);
    }
  }

  private delay(m: Message): number {
    const r = this.rng;
    let d = r.range(this.net.minDelay, this.net.maxDelay);
    if (!this.calm && r.chance(this.net.longDelay)) d += r.int(10 * this.net.maxDelay);
    return d + (this.slow.get(m.from) ?? 0) + (this.slow.get(m.to) ?? 0);
  }

  /**
   * Removes and returns what is due at or before `now`, in order. A message
   * across a cut is lost there (and reported to its sender if `reportLoss`).
   */
  due(now: number): Arrival[] {
    const out: Arrival[] = [];
    while (this.heap.length > 0 && (this.heap[0] as InFlight).at <= now) {
      const f = this.pop();
      if (!f.lost && this.cuts.has(`${f.msg.from}>${f.msg.to}`)) {
        this.dropped++;
        if (this.net.reportLoss) out.push({ msg: f.msg, lost: true });
      } else {
        out.push(f);
      }
    }
    return out;
  }

  inFlight(): number {
    return this.heap.length;
  }

  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  cutBoth(a: NodeId, b: NodeId): void {
    this.cut(a, b);
    this.cut(b, a);
  }

  heal(): void {
    this.cuts.clear();
  }

  describeCuts(): string {
    return [...this.cuts].sort().join(' ');
  }

  private push(msg: Message, at: number, lost: boolean): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, msg, lost });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i] as InFlight, h[p] as InFlight)) break;
      [h[i], h[p]] = [h[p] as InFlight, h[i] as InFlight];
      i = p;
    }
  }

  private pop(): InFlight {
    const h = this.heap;
    const top = h[0] as InFlight;
    const last = h.pop() as InFlight;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const rr = l + 1;
        let m = i;
        if (l < h.length && before(h[l] as InFlight, h[m] as InFlight)) m = l;
        if (rr < h.length && before(h[rr] as InFlight, h[m] as InFlight)) m = rr;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as InFlight, h[i] as InFlight];
        i = m;
      }
    }
    return top;
  }
}

function before(a: InFlight, b: InFlight): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
