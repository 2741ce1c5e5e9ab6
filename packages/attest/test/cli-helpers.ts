import { fileURLToPath } from 'node:url';
import { type CommandResult, runCommand } from '@thfc/testkit';

export { tempDir } from '@thfc/testkit';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** Runs the built thfc-attest in a child process, as a user would; bounded at 60 s. */
export function runAttest(args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, [CLI, ...args], { timeoutMs: 60_000 });
}
