import { describe, expect, it } from 'vitest';
import { STATUS_JS } from '../../src/api/status-page.ts';

/**
 * The status page's script is JavaScript inside a template literal, where a
 * backslash is easily lost (a regex's `\/` turns into `/`): it must parse.
 * Only parsed here (never run: it needs a browser's DOM).
 */
describe('status page script', () => {
  it('parses', () => {
    expect(() => new Function(STATUS_JS)).not.toThrow();
  });
});
