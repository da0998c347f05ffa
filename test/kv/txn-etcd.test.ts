import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, encodeCommand, type TxnCommand } from '../../src/kv/index.ts';
import { as, b, Harness } from './harness.ts';

const put = (key: string, value = 'v') => ({ type: 'put' as const, key, value: b(value) });
const txn = (t: Partial<TxnCommand>): TxnCommand => ({ type: 'txn', compare: [], success: [], failure: [], ...t });

describe("etcd's txn: range compares and nested txns", () => {
  it('a range compare holds if every key of the range meets it; an empty range compares as a missing key', () => {
    const h = new Harness();
    h.put('r/a', 'x');
    h.put('r/b', 'x');
    h.put('s', 'y');
    const ran = (t: TxnCommand) => as(h.run(t), 'txn').succeeded;
    const valueIs = (v: string, end: string) =>
      txn({ compare: [{ key: 'r/', rangeEnd: end, target: 'value', op: '=', value: b(v) }] });
    expect(ran(valueIs('x', 'r0'))).toBe(true);
    expect(ran(valueIs('x', '\u0000'))).toBe(false);
    // Empty: a value compare fails, the others compare 0.
    expect(ran(valueIs('x', 'r/'))).toBe(false);
    expect(ran(txn({ compare: [{ key: 'q', rangeEnd: 'r', target: 'version', op: '=', value: 0 }] }))).toBe(true);
  });

  it('nested txns take their path on the state before the txn, and write in its one revision', () => {
    const h = new Harness();
    h.put('k', '1');
    const r = as(
      h.run(
        txn({
          success: [
            put('k', '2'),
            // Compared before the txn: k is still 1.
            txn({
              compare: [{ key: 'k', target: 'value', op: '=', value: b('1') }],
              success: [put('n', 'seen-1')],
              failure: [put('n', 'seen-2')],
            }),
          ],
        }),
      ),
      'txn',
    );
    expect(r.revision).toBe(2);
    expect(r.results[1]).toMatchObject({ type: 'txn', succeeded: true, results: [{ type: 'put' }] });
    expect(h.value('n')).toBe('seen-1');
    expect(h.value('k')).toBe('2');
  });

  it("a nested put's missing lease fails the whole txn before anything is written", () => {
    const h = new Harness();
    const r = h.run(txn({ success: [put('a'), txn({ success: [{ ...put('b'), lease: 77 }] })] }));
    expect(r).toMatchObject({ type: 'error', error: 'lease_not_found' });
    expect(h.value('a')).toBeUndefined();
  });

  it("follows etcd's duplicate-key rule across nested txns", () => {
    const ok = (t: TxnCommand) => expect(() => encodeCommand({ cmd: t })).not.toThrow();
    const dup = (t: TxnCommand) => expect(() => encodeCommand({ cmd: t })).toThrow(DuplicateKeyError);
    // A nested txn's two branches never both run.
    ok(txn({ success: [txn({ success: [put('a')], failure: [put('a')] })] }));
    dup(txn({ success: [put('a'), txn({ success: [put('a')] })] }));
    dup(txn({ success: [txn({ success: [put('a')] }), txn({ failure: [put('a')] })] }));
    dup(txn({ success: [{ type: 'delete', key: 'a' }, txn({ success: [put('a')] })] }));
    dup(txn({ success: [txn({ success: [{ type: 'deleteRange', start: 'a', end: 'b' }] }), put('a/x')] }));
  });

  it('a deleteRange without an end deletes every key from its start (etcd\'s range end "\\0")', () => {
    const h = new Harness();
    for (const k of ['a', 'b', 'c']) h.put(k, 'v');
    expect(as(h.run({ type: 'deleteRange', start: 'b' }), 'delete').deleted).toBe(2);
    expect(h.value('a')).toBe('v');
  });
});
