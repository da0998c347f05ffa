import { describe, expect, it } from 'vitest';
import { newApi } from './api-helpers.ts';
import { lines } from './json-lines.ts';

const b64 = (s: string) => btoa(s);

describe('v3 gateway: watch', () => {
  it('streams created, then the history from a revision, one JSON line per result', async () => {
    const api = await newApi();
    await api.fetch('/v1/kv/w/a', { method: 'PUT', body: '1' });
    await api.fetch('/v1/kv/w/a', { method: 'DELETE' });
    const res = await api.fetch('/v3/watch', {
      method: 'POST',
      body: JSON.stringify({
        create_request: { key: b64('w/'), range_end: b64('w0'), start_revision: '1', prev_kv: true },
      }),
    });
    expect(res.status).toBe(200);
    const got = await lines(res, 1000);
    // The replica that serves it may not have applied the delete yet: its revision then.
    expect(got[0]).toMatchObject({ created: true });
    const created = got[0] as { header: { revision: string } };
    expect(['2', '3']).toContain(created.header.revision);
    const events = got.flatMap((r) => (r.events as unknown[]) ?? []);
    expect(events).toEqual([
      { kv: { key: b64('w/a'), create_revision: '2', mod_revision: '2', version: '1', value: b64('1') } },
      {
        type: 'DELETE',
        kv: { key: b64('w/a'), mod_revision: '3' },
        prev_kv: { key: b64('w/a'), create_revision: '2', mod_revision: '2', version: '1', value: b64('1') },
      },
    ]);
  });
});
