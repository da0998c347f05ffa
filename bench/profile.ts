/**
 * CPU profiles of the Worker under load (issue 17: profile before changing
 * anything). workerd's V8 inspector, which Miniflare opens on
 * `inspectorPort`, speaks the Chrome DevTools protocol: this connects to the
 * Worker's target, samples with Profiler.start/stop around one measured run,
 * writes the `.cpuprofile` (open it in Chrome's DevTools, Performance tab)
 * and sums the samples by function for a printed summary.
 */
import { writeFileSync } from 'node:fs';

interface CdpProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One open DevTools session on a workerd target. */
export class Profiler {
  private readonly ws: WebSocket;
  private next = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown };
      if (m.id !== undefined) this.waiting.get(m.id)?.(m.result);
    });
  }

  /** Connects to the first target workerd lists on `port` (the Worker whose objects run the cluster). */
  static async connect(port: number): Promise<Profiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
      webSocketDebuggerUrl: string;
      title?: string;
    }[];
    const t = targets[0];
    if (!t) throw new Error(`no inspector target on port ${port}`);
    const ws = new WebSocket(t.webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('inspector: cannot connect')), { once: true });
    });
    const p = new Profiler(ws);
    await p.call('Profiler.enable');
    await p.call('Profiler.setSamplingInterval', { interval: 200 });
    return p;
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Samples while `during` runs; writes the profile to `file` and returns the top functions by self time. */
  async around<T>(file: string, during: () => Promise<T>): Promise<{ result: T; top: string[] }> {
    await this.call('Profiler.start');
    const result = await during();
    const { profile } = (await this.call('Profiler.stop')) as { profile: CdpProfile };
    writeFileSync(file, JSON.stringify(profile));
    return { result, top: topSelf(profile, 25) };
  }

  close(): void {
    this.ws.close();
  }
}

/** The functions with the most self time, as "share  name (file:line)" lines; idle time is left out of the shares. */
function topSelf(p: CdpProfile, n: number): string[] {
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  let idle = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const f = byId.get(id)?.callFrame;
    const name = f?.functionName || '(anonymous)';
    if (name === '(idle)' || name === '(program)') {
      idle += dt;
      return;
    }
    const where = f?.url ? ` ${f.url.replace(/^.*\//, '')}:${(f.lineNumber ?? 0) + 1}` : '';
    const key = `${name}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const span = p.endTime - p.startTime;
  const lines = [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  return [
    `busy ${((100 * total) / span).toFixed(0)}% of ${(span / 1000).toFixed(0)} ms (idle/program ${((100 * idle) / span).toFixed(0)}%)`,
    ...lines,
  ];
}
