/**
 * Bench-only: the unreplicated baseline. One Durable Object that serves the
 * same path shapes as the public API (PUT/GET /v1/kv/{key}, POST /v1/cas)
 * straight on its own SQLite storage, with the same revision bookkeeping
 * (one store revision, per-key create/mod revision and version), so a
 * cluster's figures can be read as a ratio to "one object, no Raft".
 */
import { DurableObject } from 'cloudflare:workers';

interface Row extends Record<string, SqlStorageValue> {
  value: ArrayBuffer;
  create_revision: number;
  mod_revision: number;
  version: number;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Response =>
  Response.json(body, { status, headers });

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export class BaselineStore extends DurableObject<Record<string, unknown>> {
  private revision: number;

  constructor(ctx: DurableObjectState, env: Record<string, unknown>) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(
      'CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL, mod_revision INTEGER NOT NULL, version INTEGER NOT NULL)',
    );
    sql.exec('CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY, revision INTEGER NOT NULL)');
    const row = sql.exec<{ revision: number }>('SELECT revision FROM meta WHERE id = 0').toArray()[0];
    this.revision = row?.revision ?? 0;
  }

  private read(key: string): Row | undefined {
    return this.ctx.storage.sql
      .exec<Row>('SELECT value, create_revision, mod_revision, version FROM kv WHERE key = ?', key)
      .toArray()[0];
  }

  /** One write: the key row and the store revision, in one transaction. */
  private put(key: string, value: Uint8Array, old: Row | undefined): number {
    return this.ctx.storage.transactionSync(() => {
      const rev = this.revision + 1;
      const sql = this.ctx.storage.sql;
      sql.exec(
        'INSERT INTO kv (key, value, create_revision, mod_revision, version) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision, version = version + 1',
        key,
        value,
        old?.create_revision ?? rev,
        rev,
        1,
      );
      sql.exec(
        'INSERT INTO meta (id, revision) VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET revision = excluded.revision',
        rev,
      );
      this.revision = rev;
      return rev;
    });
  }

  override async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname.startsWith('/v1/kv/')) {
      const key = decodeURIComponent(url.pathname.slice('/v1/kv/'.length));
      if (req.method === 'GET') {
        const row = this.read(key);
        const headers = { 'X-Revision': String(this.revision) };
        if (!row) return json({ error: { code: 'key_not_found', message: key } }, 404, headers);
        return new Response(row.value, {
          headers: { ...headers, ETag: `"${row.mod_revision}"`, 'Content-Type': 'application/octet-stream' },
        });
      }
      if (req.method === 'PUT') {
        const value = new Uint8Array(await req.arrayBuffer());
        const rev = this.put(key, value, this.read(key));
        return json({ revision: rev }, 200, { 'X-Revision': String(rev), ETag: `"${rev}"` });
      }
    }
    if (url.pathname === '/v1/cas' && req.method === 'POST') {
      const body = (await req.json()) as {
        key: string;
        value: string;
        expect: { mod_revision?: number; version?: number; absent?: boolean; value?: string };
      };
      const cur = this.read(body.key);
      const e = body.expect;
      let ok: boolean;
      if (e.mod_revision !== undefined) ok = cur?.mod_revision === e.mod_revision;
      else if (e.version !== undefined) ok = (cur?.version ?? 0) === e.version;
      else if (e.absent) ok = cur === undefined;
      else ok = cur !== undefined && new TextDecoder().decode(cur.value) === e.value;
      if (ok) {
        const rev = this.put(body.key, new TextEncoder().encode(body.value), cur);
        return json({ succeeded: true, revision: rev }, 200, { 'X-Revision': String(rev) });
      }
      const current = cur
        ? {
            key: body.key,
            value_base64: toBase64(new Uint8Array(cur.value)),
            create_revision: cur.create_revision,
            mod_revision: cur.mod_revision,
            version: cur.version,
          }
        : undefined;
      return json({ succeeded: false, revision: this.revision, ...(current ? { current } : {}) });
    }
    return json({ error: { code: 'not_found', message: `${req.method} ${url.pathname}` } }, 404);
  }
}
