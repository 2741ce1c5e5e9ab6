import { describe, expect, it } from 'vitest';
import { DEFAULT_LOG, nbdFastStart } from '../src/daemonize.js';

describe('nbdFastStart', () => {
  it('takes `nbd` to run in the background, with its log file', () => {
    expect(nbdFastStart(['nbd', '--socket', 's', 'u'])).toEqual({ args: ['--socket', 's', 'u'], log: DEFAULT_LOG });
    expect(nbdFastStart(['nbd', '--log', 'a.log', '--socket', 's', 'u'])?.log).toBe('a.log');
    expect(nbdFastStart(['nbd', '--log=b.log', '--log', 'c.log', 'u'])?.log).toBe('c.log');
    expect(nbdFastStart(['nbd', '-v', '--socket', 's', 'u'])).toBeDefined();
  });

  it('leaves the foreground, help, a daemon already started and every other command to the full command', () => {
    for (const argv of [
      ['nbd', '-f', 'u'],
      ['nbd', '--foreground', 'u'],
      ['nbd', '-vf', 'u'],
      ['nbd', '--help'],
      ['nbd', '-h'],
      ['nbd', '--ready-fd', '3', 'u'],
      ['nbd', '--', 'u'],
      ['nbd', '--log'],
      ['stats', 's'],
      ['mnt', 'u'],
      [],
    ])
      expect(nbdFastStart(argv), argv.join(' ')).toBeUndefined();
  });
});
