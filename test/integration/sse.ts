/** Reads Server-Sent Events from a stream, one message at a time, for tests. */
export interface SseMessage {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: unknown;
}

export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buf = '';
  ended = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** The next message (comments skipped), or undefined if the stream ends or nothing comes within `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<SseMessage | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cut = this.buf.indexOf('\n\n');
      if (cut >= 0) {
        const frame = this.buf.slice(0, cut);
        this.buf = this.buf.slice(cut + 2);
        const m = parse(frame);
        if (m) return m;
        continue;
      }
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), left);
      });
      const got = await Promise.race([this.reader.read(), timeout]);
      if (timer !== undefined) clearTimeout(timer);
      if (got === 'timeout') return undefined;
      if (got.done) this.ended = true;
      else this.buf += this.decoder.decode(got.value, { stream: true });
    }
  }

  /** The next `n` change messages' data, failing on anything else or on a timeout. */
  async changes(n: number, timeoutMs = 5000): Promise<{ revision: number; events: Record<string, unknown>[] }[]> {
    const out: { revision: number; events: Record<string, unknown>[] }[] = [];
    while (out.length < n) {
      const m = await this.next(timeoutMs);
      if (!m) throw new Error(`expected ${n} changes, got ${out.length} then ${this.ended ? 'the end' : 'nothing'}`);
      if (m.event === 'progress') continue;
      if (m.event !== 'change') throw new Error(`expected a change, got ${m.event}: ${JSON.stringify(m.data)}`);
      out.push(m.data as { revision: number; events: Record<string, unknown>[] });
    }
    return out;
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

function parse(frame: string): SseMessage | undefined {
  let event = 'message';
  let id: string | undefined;
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'id') id = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return undefined;
  return { event, id, data: JSON.parse(data.join('\n')) };
}
