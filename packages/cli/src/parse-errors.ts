import type { Command, Option } from 'commander';

/**
 * commander's parse errors as thfc reports every error: one line,
 * `NAME: message (see NAME --help)`, on stderr; the caller maps the
 * CommanderError to exit 2. Call it on the finished command table (after
 * every subcommand is added): it also makes a typo of a required option
 * (`--stroe`) name the typo rather than the option it left missing.
 */
export function oneLineParseErrors(
  program: Command,
  name: string = program.name(),
  /** The command line whose --help a message points to (default: the command's path under NAME). */
  helpFor?: (cmd: Command, path: string) => string,
): Command {
  // Subcommands copied their parent's settings when they were added: each is configured here.
  const visit = (cmd: Command, path: string) => {
    cmd.configureOutput({
      writeErr: (s: string) => process.stderr.write(s),
      outputError: (message: string, write: (s: string) => void) =>
        write(`${oneLine(name, message, helpFor ? helpFor(cmd, path) : path)}\n`),
    });
    typoBeforeMissing(cmd);
    for (const sub of cmd.commands) visit(sub, `${path} ${sub.name()}`);
  };
  visit(program, name);
  return program;
}

/**
 * `error: unknown option '--stroe'\n(Did you mean --store?)` →
 * `thfc-pack: unknown option '--stroe' (Did you mean --store?) (see thfc-pack pack --help)`.
 */
export function oneLine(name: string, message: string, helpFor: string = name): string {
  const text = message
    .replace(/^error: /, '')
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
  return `${name}: ${text} (see ${helpFor} --help)`;
}

/**
 * commander checks required options before unknown ones, so `--stroe DIR`
 * used to say "required option --store not specified". An unknown option
 * among the arguments is the better error: it names the typo and suggests
 * the right spelling.
 */
function typoBeforeMissing(cmd: Command): void {
  // Reaching a commander method its typings mark private: the hook it offers for this message.
  const c = cmd as unknown as {
    missingMandatoryOptionValue(o: Option): void;
    unknownOption(flag: string): void;
    args: string[];
  };
  const missing = c.missingMandatoryOptionValue.bind(cmd);
  c.missingMandatoryOptionValue = (option: Option) => {
    const typo = c.args.find((a) => /^--?[A-Za-z]/.test(a));
    if (typo) c.unknownOption(typo.replace(/=.*$/, ''));
    missing(option);
  };
}
