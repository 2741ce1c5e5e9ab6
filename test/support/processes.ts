import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CommandResult, runCommand } from '@thfc/testkit';

export const execFileP = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = {
  pack: join(ROOT, 'packages/packer/dist/cli.js'),
  httpstorged: join(ROOT, 'packages/blockfs/dist/cli.js'),
};

/** The installed entries (package.json `bin`): they hold signals from the first instant, then load the CLI. */
export const ENTRY = {
  pack: join(ROOT, 'packages/packer/dist/bin.js'),
  mirror: join(ROOT, 'packages/mirror/dist/bin.js'),
  httpstorged: join(ROOT, 'packages/blockfs/dist/bin.js'),
};

/** What a command did: its status and output. */
export type Run = CommandResult;

/** Runs a command to completion; never throws on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Run> {
  return runCommand(cmd, args, options);
}

export const node = (script: string, args: string[], options?: { timeoutMs?: number }) =>
  run(process.execPath, [script, ...args], options);

export { tempDir } from '@thfc/testkit';

/** sha256 of a file, computed by a child process (never read a FUSE mount from the test process itself). */
export async function sha256(path: string): Promise<string> {
  const r = await run('sha256sum', [path], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`sha256sum ${path}: ${r.stderr.trim()}`);
  return r.stdout.split(' ')[0] as string;
}
