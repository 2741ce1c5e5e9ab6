/** One command line as a POSIX shell would read it back: what --dry-run prints. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(program: string, args: readonly string[]): string {
  return [program, ...args].map(shellQuote).join(' ');
}
