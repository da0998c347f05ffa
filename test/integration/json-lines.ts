/** What a streamed answer sends within `ms` (all of it, if it ends sooner); then it stops reading. */
export async function textWithin(res: Response, ms: number): Promise<string> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = '';
  const until = Date.now() + ms;
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) break;
    const next = await Promise.race([reader.read(), new Promise<'late'>((r) => setTimeout(() => r('late'), left))]);
    if (next === 'late' || next.done) break;
    text += dec.decode(next.value, { stream: true });
  }
  await reader.cancel().catch(() => {});
  return text;
}

/** The `result`s of the JSON lines a /v3 stream (watch, observe) sends within `ms`. */
export async function lines(res: Response, ms: number): Promise<Record<string, unknown>[]> {
  return (await textWithin(res, ms))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { result: Record<string, unknown> }).result);
}
