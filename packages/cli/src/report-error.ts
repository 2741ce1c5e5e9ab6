import { EXIT, exitCodeOf, ThfcError } from '@thfc/format';
import { CommanderError } from 'commander';

/**
 * The one place a thfc command turns an error into what the user sees and
 * the process's exit code. A typed error prints `NAME: message` on stderr;
 * an untyped one is a bug and prints its stack. commander has already
 * printed its own parse errors (see oneLineParseErrors): they only map to 2,
 * and `--help`/`--version` to 0.
 */
export function reportError(name: string, e: unknown, stderr: { write(s: string): unknown } = process.stderr): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  if (e instanceof ThfcError) {
    stderr.write(`${name}: ${e.message}\n`);
    return exitCodeOf(e);
  }
  stderr.write(`${name}: internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
  return EXIT.SOFTWARE;
}
