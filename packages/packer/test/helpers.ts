import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { CommandIo } from '@thfc/cli';
import { type CommandResult, capturedOutput, runCommand } from '@thfc/testkit';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export { tempDir } from '@thfc/testkit';

/** Seeded, compressible, non-repeating bytes (text-like), so blocks are distinct but compress. */
export function textBytes(n: number, seed: number): Buffer {
  const words = ['block', 'image', 'mirror', 'verify', 'cache', 'fuse', 'boot', 'index', 'store', 'zero'];
  let x = seed >>> 0 || 1;
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const w = `${words[x % words.length]}${x % 997} `;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** An image laid out from parts: 'z' zeros, 't' text, 'r' random, each `n` bytes. */
export function imageBytes(parts: [kind: 'z' | 't' | 'r', n: number][], seed = 1): Buffer {
  return Buffer.concat(
    parts.map(([k, n], i) => (k === 'z' ? Buffer.alloc(n) : k === 'r' ? randomBytes(n) : textBytes(n, seed * 100 + i))),
  );
}

export async function writeImage(path: string, parts: [kind: 'z' | 't' | 'r', n: number][], seed = 1): Promise<Buffer> {
  const b = imageBytes(parts, seed);
  await writeFile(path, b);
  return b;
}

export function testIo(
  options: { stdin?: Uint8Array; signal?: AbortSignal; env?: Record<string, string> } = {},
): CommandIo & {
  out: () => string;
} {
  return {
    ...capturedOutput(),
    stdin: options.stdin ? Readable.from([options.stdin]) : Readable.from([]),
    signal: options.signal ?? new AbortController().signal,
    progress: false,
    env: options.env ?? {},
  };
}

export type CliResult = CommandResult;

/** Runs the built CLI in a child process, as a user would. */
export function runCli(
  args: string[],
  options: { input?: Uint8Array; uid?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return runCommand(process.execPath, [CLI, ...args], options);
}
