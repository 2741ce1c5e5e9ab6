import { CheckFailedError, EXIT, InputError } from '@thfc/format';
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { reportError } from '../src/report-error.js';

function report(e: unknown): { code: number; err: string } {
  let err = '';
  const code = reportError('tool', e, { write: (s: string) => (err += s) });
  return { code, err };
}

describe('reportError', () => {
  it('a typed error is one line, NAME: message, and its exit code', () => {
    expect(report(new InputError('x.img: no such file or directory'))).toEqual({
      code: EXIT.INPUT,
      err: 'tool: x.img: no such file or directory\n',
    });
    expect(report(new CheckFailedError('2 blocks missing')).code).toBe(EXIT.CHECK_FAILED);
  });

  it("commander's own errors were printed already: 2, or 0 for --help and --version", () => {
    expect(report(new CommanderError(1, 'commander.unknownOption', 'x'))).toEqual({ code: EXIT.USAGE, err: '' });
    expect(report(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'))).toEqual({
      code: EXIT.OK,
      err: '',
    });
  });

  it('an untyped error is a bug: 70, with its stack', () => {
    const r = report(new TypeError('x is undefined'));
    expect(r.code).toBe(EXIT.SOFTWARE);
    expect(r.err).toMatch(/^tool: internal error \(please report\): TypeError: x is undefined\n {4}at /);
  });
});
