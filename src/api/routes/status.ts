/**
 * GET / (the status page) and GET /status.js (its script). Public: they hold
 * no data; the script asks for it with the token the user types in.
 */
import type { App } from '../env.ts';
import { queryOf } from '../request.ts';
import { STATUS_HTML, STATUS_JS } from '../status-page.ts';

const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
};

export function statusRoutes(app: App): void {
  app.get('/', (c) => {
    queryOf(c.get('input'), []);
    return c.body(STATUS_HTML, 200, { ...PAGE_HEADERS, 'Content-Type': 'text/html; charset=utf-8' });
  });
  app.get('/status.js', (c) => {
    queryOf(c.get('input'), []);
    return c.body(STATUS_JS, 200, { ...PAGE_HEADERS, 'Content-Type': 'text/javascript; charset=utf-8' });
  });
}
