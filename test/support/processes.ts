import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command to completion; never throws on a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  options: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    const t = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (t) clearTimeout(t);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export const node = (script: string, args: string[], options?: { timeoutMs?: number }) =>
  run(process.execPath, [script, ...args], options);

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** sha256 of a file, computed by a child process (never read a FUSE mount from the test process itself). */
export async function sha256(path: string): Promise<string> {
  const r = await run('sha256sum', [path], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`sha256sum ${path}: ${r.stderr.trim()}`);
  return r.stdout.split(' ')[0] as string;
}
