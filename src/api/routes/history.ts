/** History and watch: POST /v1/compact and GET /v1/watch (Server-Sent Events, or a WebSocket upgrade). */
import { needRole } from '../commands.ts';
import type { App } from '../env.ts';
import { compactedError } from '../errors.ts';
import { nat, obj, readJson } from '../input.ts';
import { unavailable, write } from '../outcomes.ts';
import { queryOf } from '../request.ts';
import { WATCH_QUERY, watchSpecOf } from '../watch-route.ts';

export function historyRoutes(app: App): void {
  // ---- history and watch ----

  app.get('/v1/watch', async (c) => {
    const p = c.get('principal');
    needRole(p, 'read');
    if (c.req.header('upgrade')?.toLowerCase() === 'websocket') {
      // Watches are created by messages on the socket (watch-sockets.ts), checked against the same principal.
      queryOf(c.get('input'), []);
      const res = await c.get('client').watchSocket(p);
      if (!res) throw unavailable('no replica accepted the WebSocket');
      return res;
    }
    const spec = watchSpecOf(queryOf(c.get('input'), WATCH_QUERY), c.req.header('last-event-id'), p);
    const out = await c.get('client').watch(spec);
    if (out.kind === 'compacted') throw compactedError(spec.startRevision ?? 0, out.compacted);
    if (out.kind === 'unavailable') throw unavailable(out.detail);
    return c.body(out.stream, 200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      'X-Revision': String(out.revision),
    });
  });

  app.post('/v1/compact', async (c) => {
    needRole(c.get('principal'), 'admin');
    queryOf(c.get('input'), []);
    const body = obj(await readJson(c.req.raw, 4096), 'body', ['revision']);
    const revision = nat(body.revision, 'revision');
    const result = await write(c, { type: 'compact', revision });
    if (result.type !== 'compact') throw new Error(`unexpected result ${result.type}`);
    return c.json({ revision: result.revision, compact_revision: result.compacted }, 200, {
      'X-Revision': String(result.revision),
    });
  });
}
