import { Hono } from 'hono';

/** The JSON body of every error the public API answers with (shared/DESIGN.md, HTTP API conventions). */
export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/**
 * The public HTTP API. It never routes to a node's internal Raft routes
 * (`/internal/*`): those are reached only through Durable Object stubs.
 */
export const app = new Hono();

app.get('/healthz', (c) => c.json({ ok: true }));

app.notFound((c) => c.json(errorBody('not_found', `no route ${c.req.method} ${new URL(c.req.url).pathname}`), 404));

app.onError((err, c) => {
  console.error('unhandled error', err);
  return c.json(errorBody('internal', 'internal error'), 500);
});
