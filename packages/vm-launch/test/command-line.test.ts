import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandLine, shellQuote } from '../src/command-line.js';

/** What /bin/sh makes of a printed command line: its words, one per NUL. */
function shellWords(line: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${line}`]);
  return out.toString('utf8').split('\0').slice(0, -1);
}

describe('shellQuote', () => {
  it('leaves plain words alone and quotes the rest', () => {
    expect(shellQuote('file=/a/b,format=raw')).toBe('file=/a/b,format=raw');
    expect(shellQuote('console=ttyS0 root=/dev/vda')).toBe("'console=ttyS0 root=/dev/vda'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('')).toBe("''");
  });

  it('a printed command line reads back as the same argument vector in /bin/sh', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary-ascii', minLength: 0, maxLength: 12 }).filter((s) => !s.includes('\0')),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        (args) => {
          expect(shellWords(commandLine('x', args).slice(2))).toEqual(args);
        },
      ),
      { numRuns: 60 },
    );
  });
});
