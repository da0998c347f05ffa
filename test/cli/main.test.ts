import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/args.ts';
import { EXIT, errorLine, exitCodeOf } from '../../src/cli/command.ts';
import { COMMANDS, main, resolveCommand } from '../../src/cli/main.ts';
import { txnRequestOf } from '../../src/cli/txn-json.ts';
import {
  BadRequestError,
  CompactedError,
  ConflictError,
  NotFoundError,
  OutcomeUnknownError,
  UnavailableError,
} from '../../src/client/index.ts';
import { fakeIo } from './fake-io.ts';

describe('--group', () => {
  it("puts every request under the group's routes; the default group has none", async () => {
    const seen: string[] = [];
    const fetchFn = async (input: RequestInfo | URL) => {
      seen.push(String(input));
      return Response.json({ kvs: [], count: 0, more: false, revision: 1 }, { headers: { 'x-revision': '1' } });
    };
    const { createClient } = await import('../../src/client/index.ts');
    for (const group of ['acme', 'default', undefined]) {
      const c = createClient({ endpoint: 'http://store/', fetch: fetchFn, ...(group ? { group } : {}) });
      await c.range({ prefix: 'a' }).catch(() => {});
    }
    expect(seen.map((u) => new URL(u).pathname)).toEqual(['/groups/acme/v1/kv', '/v1/kv', '/v1/kv']);
    expect(() => createClient({ endpoint: 'http://store', group: 'Bad' })).toThrow(TypeError);
  });
});

describe('resolveCommand', () => {
  it('finds a command or a subcommand past global flags, and leaves the rest', () => {
    expect(resolveCommand(['-w', 'json', 'get', 'k', '--prefix'])).toMatchObject({
      command: { name: 'get' },
      rest: ['-w', 'json', 'k', '--prefix'],
    });
    expect(resolveCommand(['lease', '--endpoint', 'http://x', 'grant', '10'])).toMatchObject({
      command: { name: 'lease grant' },
      rest: ['--endpoint', 'http://x', '10'],
    });
    expect(resolveCommand(['member'])).toMatchObject({ group: 'member' });
    expect(resolveCommand(['help', 'lock'])).toMatchObject({ command: { name: 'lock' }, rest: ['--help'] });
  });

  it('refuses an unknown command or subcommand', () => {
    expect(() => resolveCommand(['frob'])).toThrow(UsageError);
    expect(() => resolveCommand(['lease', 'frob'])).toThrow('unknown command "lease frob"');
    expect(() => resolveCommand(['toString'])).toThrow(UsageError);
  });
});

describe('main without a store', () => {
  it('--help works for every command, exit 0', async () => {
    for (const c of COMMANDS) {
      const io = fakeIo();
      expect(await main([...c.name.split(' '), '--help'], io)).toBe(EXIT.ok);
      expect(io.out.join('\n')).toContain(`Usage: durable-raft ${c.name}`);
      expect(io.out.join('\n')).toContain('Exit codes:');
    }
  });

  it('an unknown flag is exit 2 with one error line and the usage line', async () => {
    const io = fakeIo();
    expect(await main(['get', '--bogus', 'k'], io)).toBe(EXIT.usage);
    expect(io.err).toEqual(['Error: unknown flag --bogus', 'Usage: durable-raft get KEY [END] [flags] (see --help)']);
  });

  it('counts arguments and checks -w and the endpoint', async () => {
    for (const argv of [
      ['get'],
      ['get', 'a', 'b', 'c'],
      ['get', 'k', '-w', 'yaml'],
      ['get', 'k', '--endpoint', 'ftp://x'],
      ['get', 'k', '--group', 'Not_A_Group'],
      ['grpc-proxy', '--group', '-x'],
    ]) {
      const io = fakeIo();
      expect(await main(argv, io)).toBe(EXIT.usage);
      expect(io.err[0]).toMatch(/^Error: /);
    }
  });

  it('no command prints the help on stderr, exit 2', async () => {
    const io = fakeIo();
    expect(await main([], io)).toBe(EXIT.usage);
    expect(io.err[0]).toContain('Usage: durable-raft [global flags] COMMAND');
  });
});

describe('exit codes and error lines', () => {
  it('maps each kind of error to its exit code', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new NotFoundError(404, 'key_not_found', 'no'))).toBe(3);
    expect(exitCodeOf(new BadRequestError(400, 'bad_request', 'no'))).toBe(3);
    expect(exitCodeOf(new ConflictError(409, 'lock_busy', 'busy'))).toBe(3);
    expect(exitCodeOf(new CompactedError(5, 'compacted'))).toBe(3);
    expect(exitCodeOf(new UnavailableError(503, 'no_leader', 'none'))).toBe(4);
    expect(exitCodeOf(new UnavailableError(0, 'network', 'fetch failed'))).toBe(4);
    expect(exitCodeOf(new OutcomeUnknownError(504, 'outcome_unknown', '?'))).toBe(5);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
  });

  it('writes one line: Error: <code>: <message>', () => {
    expect(errorLine(new CompactedError(5, 'revision 2 is compacted'))).toBe(
      'Error: compacted: revision 2 is compacted',
    );
    expect(errorLine(new Error('two\n  lines'))).toBe('Error: two lines');
  });
});

describe('txn JSON', () => {
  it("takes the API's snake_case and the client's camelCase alike", () => {
    const api = txnRequestOf({
      compare: [{ key: 'k', target: 'create_revision', op: '=', value: 3 }],
      success: [{ delete_prefix: { prefix: 'p/', prev_kv: true } }, { put: { key: 'b', value_base64: 'AQI=' } }],
    });
    expect(api).toEqual({
      compare: [{ key: 'k', target: 'createRevision', op: '=', value: 3 }],
      success: [{ deletePrefix: { prefix: 'p/', prevKv: true } }, { put: { key: 'b', value: new Uint8Array([1, 2]) } }],
      failure: [],
    });
    expect(txnRequestOf({ failure: [{ get: { key: 'k' } }] }).failure).toEqual([{ get: { key: 'k' } }]);
  });

  it('refuses what is not a txn', () => {
    for (const bad of [
      [],
      'x',
      { compare: {} },
      { success: [{ frob: {} }] },
      { other: [] },
      { success: [{ get: {}, put: {} }] },
    ])
      expect(() => txnRequestOf(bad)).toThrow(UsageError);
  });
});
