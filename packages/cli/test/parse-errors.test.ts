import { Command, type CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { oneLine, oneLineParseErrors } from '../src/parse-errors.js';

/** Parses ARGV with a table like thfc-pack's, capturing what commander writes to stderr. */
function parse(argv: string[]): { code: number | undefined; err: string } {
  let err = '';
  const program = new Command('tool').exitOverride();
  program.command('pack').argument('<image>').requiredOption('-s, --store <dir>').option('--json');
  oneLineParseErrors(program);
  // Route what commander writes to this test instead of the process's stderr.
  for (const c of [program, ...program.commands]) {
    const out = (c as unknown as { _outputConfiguration: { writeErr: (s: string) => void } })._outputConfiguration;
    out.writeErr = (s: string) => {
      err += s;
    };
  }
  try {
    program.parse(argv, { from: 'user' });
    return { code: undefined, err };
  } catch (e) {
    return { code: (e as CommanderError).exitCode, err };
  }
}

describe('oneLineParseErrors', () => {
  it('folds commander messages into one line with the name and where to get help', () => {
    expect(oneLine('thfc-pack', "error: unknown option '--x'\n(Did you mean --y?)\n", 'thfc-pack pack')).toBe(
      "thfc-pack: unknown option '--x' (Did you mean --y?) (see thfc-pack pack --help)",
    );
  });

  it('names a typo of a required option rather than the option it left out', () => {
    const r = parse(['pack', 'a.img', '--stroe', 's']);
    expect(r.code).toBe(1); // commander's own code; the CLIs map every CommanderError but --help to exit 2
    expect(r.err).toBe("tool: unknown option '--stroe' (Did you mean --store?) (see tool pack --help)\n");
  });

  it('still reports a required option that is simply missing', () => {
    expect(parse(['pack', 'a.img']).err).toBe(
      "tool: required option '-s, --store <dir>' not specified (see tool pack --help)\n",
    );
    expect(parse(['pack', 'a.img', '-s', 'x']).code).toBeUndefined();
  });
});
