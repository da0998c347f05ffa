import { describe, expect, it } from 'vitest';
import {
  type FlagSpecs,
  firstPositional,
  parseArgs,
  parseDuration,
  UsageError,
  wholeNumber,
} from '../../src/cli/args.ts';

const specs: FlagSpecs = {
  prefix: { type: 'boolean', help: '' },
  rev: { type: 'number', help: '' },
  lease: { type: 'string', help: '' },
  'write-out': { type: 'string', short: 'w', help: '' },
  help: { type: 'boolean', short: 'h', help: '' },
};

describe('parseArgs', () => {
  it('reads --x value, --x=value, booleans and positionals in any order', () => {
    const p = parseArgs(['k', '--rev', '5', '--lease=7', '--prefix', 'end'], specs);
    expect(p).toEqual({ flags: { rev: 5, lease: '7', prefix: true }, positionals: ['k', 'end'] });
  });

  it('reads short flags, with a value apart or after =', () => {
    expect(parseArgs(['-w', 'json', 'k'], specs).flags).toEqual({ 'write-out': 'json' });
    expect(parseArgs(['-w=table', '-h'], specs).flags).toEqual({ 'write-out': 'table', help: true });
  });

  it('takes a boolean as --x=true or --x=false, and refuses other values', () => {
    expect(parseArgs(['--prefix=false'], specs).flags).toEqual({ prefix: false });
    expect(() => parseArgs(['--prefix=yes'], specs)).toThrow(UsageError);
  });

  it('ends the flags at --', () => {
    expect(parseArgs(['--prefix', '--', '--rev', '-w'], specs)).toEqual({
      flags: { prefix: true },
      positionals: ['--rev', '-w'],
    });
  });

  it('keeps a lone - as a positional, and a value that looks like a flag after a string flag', () => {
    expect(parseArgs(['-', '--lease', '--odd'], specs)).toEqual({ flags: { lease: '--odd' }, positionals: ['-'] });
  });

  it('the last of a flag given twice wins', () => {
    expect(parseArgs(['--rev', '1', '--rev=2'], specs).flags).toEqual({ rev: 2 });
  });

  it('refuses an unknown flag, a missing value and a number that is not whole', () => {
    expect(() => parseArgs(['--bogus'], specs)).toThrow('unknown flag --bogus');
    expect(() => parseArgs(['--bogus=1'], specs)).toThrow('unknown flag --bogus');
    expect(() => parseArgs(['-x'], specs)).toThrow('unknown flag -x');
    expect(() => parseArgs(['--rev'], specs)).toThrow('flag --rev needs a value');
    expect(() => parseArgs(['--rev', '1.5'], specs)).toThrow(UsageError);
    expect(() => parseArgs(['--rev', '-1'], specs)).toThrow(UsageError);
  });

  it('does not take a name inherited from Object.prototype as a flag', () => {
    expect(() => parseArgs(['--toString'], specs)).toThrow('unknown flag --toString');
    expect(() => parseArgs(['--__proto__=1'], specs)).toThrow(UsageError);
  });

  it('with restAfter, takes everything after that many positionals as written', () => {
    const p = parseArgs(['--rev', '3', 'name', '--prefix', 'sh', '-c', 'echo --rev'], specs, { restAfter: 1 });
    expect(p).toEqual({ flags: { rev: 3, prefix: true }, positionals: ['name', 'sh', '-c', 'echo --rev'] });
  });
});

describe('firstPositional', () => {
  it('skips flags and the values of flags that take one', () => {
    expect(firstPositional(['-w', 'json', '--prefix', 'get', 'k'], specs)).toBe(3);
    expect(firstPositional(['--lease=1', 'put'], specs)).toBe(1);
    expect(firstPositional(['--prefix', '--', 'get'], specs)).toBe(-1);
    expect(firstPositional([], specs)).toBe(-1);
  });
});

describe('values', () => {
  it('wholeNumber takes decimal digits only', () => {
    expect(wholeNumber('N', '0')).toBe(0);
    expect(wholeNumber('N', '42')).toBe(42);
    for (const bad of ['', '-1', '1e3', '0x10', ' 1', '1.0']) expect(() => wholeNumber('N', bad)).toThrow(UsageError);
  });

  it('parseDuration takes ms, s, m and bare seconds', () => {
    expect(parseDuration('d', '500ms')).toBe(500);
    expect(parseDuration('d', '5s')).toBe(5000);
    expect(parseDuration('d', '1.5')).toBe(1500);
    expect(parseDuration('d', '2m')).toBe(120_000);
    for (const bad of ['', 's', '5h', '-1s', '0ms']) expect(() => parseDuration('d', bad)).toThrow(UsageError);
  });
});
