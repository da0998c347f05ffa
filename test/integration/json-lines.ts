/** The `result`s of the JSON lines a /v3 stream (watch, observe) sends within `ms`; stops reading then. */
export async function lines(res: Response, ms: number): Promise<Record<string, unknown>[]> {
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
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { result: Record<string, unknown> }).result);
}
