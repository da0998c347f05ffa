import { describe, expect, it } from 'vitest';
import { formatTable, kvLines, kvTable, render, toJson, type View } from '../../src/cli/output.ts';
import { watchLines } from '../../src/cli/watch.ts';
import type { KeyValue } from '../../src/client/index.ts';

const utf8 = new TextEncoder();

function kv(key: string, text: string, extra: Partial<KeyValue> = {}): KeyValue {
  return { key, createRevision: 2, modRevision: 3, version: 1, value: utf8.encode(text), text, ...extra };
}

describe('simple output', () => {
  it('get prints each key, then its value, on lines of their own', () => {
    const kvs = [kv('a', 'one'), kv('b', 'two')];
    expect(kvLines(kvs)).toEqual(['a', utf8.encode('one'), 'b', utf8.encode('two')]);
    expect(kvLines(kvs, { keysOnly: true })).toEqual(['a', 'b']);
    expect(kvLines(kvs, { valuesOnly: true })).toEqual([utf8.encode('one'), utf8.encode('two')]);
    expect(kvLines([])).toEqual([]);
  });

  it('watch prints the type, the key and a put value, one per line', () => {
    const w = {
      revision: 9,
      events: [
        { type: 'put' as const, kv: kv('k', 'v') },
        { type: 'delete' as const, kv: kv('k', '') },
      ],
    };
    expect(watchLines(w)).toEqual(['PUT', 'k', utf8.encode('v'), 'DELETE', 'k']);
  });
});

describe('json output', () => {
  it('writes a record as the API does: value as text, no lossy twin', () => {
    expect(JSON.parse(toJson({ kv: kv('a', 'hé'), revision: 4 }))).toEqual({
      kv: { key: 'a', createRevision: 2, modRevision: 3, version: 1, value: 'hé' },
      revision: 4,
    });
  });

  it('writes bytes that are not UTF-8 as valueBase64', () => {
    const bytes = new Uint8Array([0xff, 0x00, 0x41]);
    const j = JSON.parse(toJson(kv('b', '', { value: bytes, text: '\ufffd\u0000A' })));
    expect(j.valueBase64).toBe(btoa('\xff\x00A'));
    expect(j.value).toBeUndefined();
    expect(j.text).toBeUndefined();
  });

  it('leaves out undefined fields, keeps nested arrays, and writes one line', () => {
    const s = toJson({ kv: undefined, list: [kv('a', 'x\ny')], n: null });
    expect(s).not.toContain('\n');
    expect(JSON.parse(s)).toEqual({ list: [expect.objectContaining({ key: 'a', value: 'x\ny' })], n: null });
  });

  it('writes other bytes as base64', () => {
    expect(toJson({ raw: new Uint8Array([1, 2]) })).toBe('{"raw":"AQI="}');
  });
});

describe('table output', () => {
  it('draws an ASCII table in etcdctl style', () => {
    expect(
      formatTable({
        headers: ['KEY', 'VALUE'],
        rows: [
          ['a', 'one'],
          ['long-key', ''],
        ],
      }),
    ).toBe(
      [
        '+----------+-------+',
        '| KEY      | VALUE |',
        '+----------+-------+',
        '| a        | one   |',
        '| long-key |       |',
        '+----------+-------+',
      ].join('\n'),
    );
  });

  it('escapes control characters so a row stays one line', () => {
    const t = formatTable({ headers: ['V'], rows: [['a\nb\tc']] });
    expect(t.split('\n')).toHaveLength(5);
    expect(t).toContain('| a\\nb\\tc |');
  });

  it('has a column per record field, without VALUE for keys only', () => {
    expect(kvTable([kv('a', 'one', { lease: '7' })])).toEqual({
      headers: ['KEY', 'VALUE', 'CREATE_REVISION', 'MOD_REVISION', 'VERSION', 'LEASE'],
      rows: [['a', 'one', '2', '3', '1', '7']],
    });
    expect(kvTable([kv('a', 'one')], { keysOnly: true }).headers).not.toContain('VALUE');
  });
});

describe('render', () => {
  const view: View = { simple: ['OK'], json: { revision: 5 }, table: { headers: ['REVISION'], rows: [['5']] } };

  it('picks the view of each format', () => {
    expect(render('simple', view)).toEqual(['OK']);
    expect(render('json', view)).toEqual(['{"revision":5}']);
    expect(render('table', view)[0]).toContain('| REVISION |');
  });

  it('prints the simple lines for -w table when a view has no table', () => {
    expect(render('table', { simple: ['SUCCESS'], json: {} })).toEqual(['SUCCESS']);
  });
});
