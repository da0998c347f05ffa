import { describe, expect, it } from 'vitest';
import { apiFetch, newApi } from './api-helpers.ts';

/** The first `event: cluster` frame of the stream, then the stream is closed. */
async function firstClusterEvent(res: Response): Promise<Record<string, unknown>> {
  const reader = (res.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  try {
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    await reader.cancel();
  }
  const frame = text.slice(0, text.indexOf('\n\n'));
  expect(frame.startsWith('event: cluster\n')).toBe(true);
  return JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as Record<string, unknown>;
}

describe('status page', () => {
  it('serves the page and its script without a token, with a policy that runs only our own script', async () => {
    const api = await newApi();
    const guarded = apiFetch(api.prefix, { allowAnonymous: false, authTokens: '[]' });
    const page = await guarded('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<script src="/status.js"></script>');
    const script = await guarded('/status.js');
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    // The page writes what the server says as text, never as HTML.
    expect(await script.text()).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });

  it('streams the cluster view as events: every member, the leader, and the revision moving with writes', async () => {
    const api = await newApi();
    const first = await firstClusterEvent(await api.fetch('/v1/cluster/events'));
    const members = first.members as { name: string; reachable: boolean; role: string }[];
    expect(members.map((m) => m.name).sort()).toEqual(api.names.map((n) => n.slice(n.lastIndexOf(':') + 1)).sort());
    expect(members.every((m) => m.reachable)).toBe(true);
    expect(members.filter((m) => m.role === 'leader').map((m) => m.name)).toEqual([first.leader]);
    const put = await api.fetch('/v1/kv/seen', { method: 'PUT', body: 'x' });
    expect(put.status).toBe(200);
    // The revision is one replica's (a serializable read): a follower may show the write a moment later.
    let revision = first.revision as number;
    for (let i = 0; i < 20 && revision <= (first.revision as number); i++)
      revision = (await firstClusterEvent(await api.fetch('/v1/cluster/events'))).revision as number;
    expect(revision).toBeGreaterThan(first.revision as number);
  });

  it('gives the event stream to the admin role only', async () => {
    const api = await newApi();
    const tokens = JSON.stringify([{ token: 'reader-token-1', role: 'read' }]);
    const guarded = apiFetch(api.prefix, { allowAnonymous: false, authTokens: tokens });
    const res = await guarded('/v1/cluster/events', { headers: { authorization: 'Bearer reader-token-1' } });
    expect(res.status).toBe(403);
  });
});
