import { expect } from 'vitest';
import type { TestApi } from './api-helpers.ts';

/** Opens a WebSocket on `path` (a watch route) of `api`; the upgrade must be answered 101. */
export async function openSocket(api: TestApi, path: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const res = await api.fetch(path, { headers: { upgrade: 'websocket', ...headers } });
  expect(res.status).toBe(101);
  const ws = res.webSocket;
  if (!ws) throw new Error('no socket');
  return ws;
}

/** A WebSocket client for the watch-socket tests: it queues what it receives. */
export class SocketClient {
  readonly got: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  readonly ws: WebSocket;
  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.accept();
    ws.addEventListener('message', (e) => {
      this.got.push(JSON.parse(e.data as string) as Record<string, unknown>);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }
  /** Waits until `n` messages have arrived in all; returns them. */
  async upTo(n: number, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.got.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} messages, got ${JSON.stringify(this.got)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, left);
      });
    }
    return this.got.slice(0, n);
  }
}
