import type { C } from './env.ts';

/**
 * A response built with one call into the runtime. Hono's `c.json` and
 * `c.body`, given more than one header (or after `c.header`), copy them
 * into a `Headers` one `set` at a time, each a call into the runtime: for
 * the ten headers of a key's GET that was about 4% of the Worker's thread
 * at 64 clients. A Response returned as it is skips the X-Request-Id that
 * app.ts prepared with `c.header`, so it goes in here.
 */
export function respond(
  c: C,
  status: number,
  body: BodyInit | null,
  headers: Readonly<Record<string, string>>,
): Response {
  return new Response(body, { status, headers: { ...headers, 'X-Request-Id': c.get('requestId') } });
}

/** `respond` with a JSON body, as `c.json` sends it. */
export function respondJson(c: C, status: number, value: unknown, headers: Readonly<Record<string, string>>): Response {
  return respond(c, status, JSON.stringify(value), { ...headers, 'Content-Type': 'application/json' });
}
