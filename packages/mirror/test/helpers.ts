import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { CommandIo } from '@thfc/cli';
import { runPack } from '@thfc/packer';
import { capturedOutput } from '@thfc/testkit';
import { request } from 'undici';
import { type RunningMirror, type ServeOptions, startMirror } from '../src/serve.js';

export { tempDir } from '@thfc/testkit';

export type TestIo = CommandIo & { out: () => string; err: () => string };

export function testIo(signal?: AbortSignal): TestIo {
  return {
    ...capturedOutput(),
    stdin: Readable.from([]),
    signal: signal ?? new AbortController().signal,
    progress: false,
    env: {},
  };
}

/** Distinct, compressible 4 KiB-aligned text: each block differs (seeded counter), so every block is its own file. */
function textBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let o = 0; o < n; o += 64) {
    const line = Buffer.from(`thfc mirror test ${seed} offset ${o} `.padEnd(63, '.') + '\n');
    line.copy(b, o, 0, Math.min(64, n - o));
  }
  return b;
}

/**
 * Packs an image of `parts` ('t' text, 'r' random, 'z' zeros, each n bytes)
 * into STORE/NAME.idx with the real packer, and returns the image bytes.
 */
export async function packImage(
  work: string,
  store: string,
  name: string,
  parts: [kind: 't' | 'r' | 'z', n: number][],
  options: { blockSize?: number; seed?: number } = {},
): Promise<Buffer> {
  const seed = options.seed ?? 1;
  const image = Buffer.concat(
    parts.map(([k, n], i) =>
      k === 'z' ? Buffer.alloc(n) : k === 'r' ? randomBytes(n) : textBytes(n, seed * 1000 + i),
    ),
  );
  const path = join(work, `${name}.img`);
  await writeFile(path, image);
  await runPack({ image: path, store, name, blockSize: options.blockSize ?? 64 * 1024, workers: 1 }, testIo());
  return image;
}

/** A mirror on 127.0.0.1, a free port, no access log unless asked. */
export function testMirror(options: Partial<ServeOptions> & { store: string }, io = testIo()): Promise<RunningMirror> {
  return startMirror({ listen: '127.0.0.1:0', accessLog: false, ...options }, io);
}

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One GET (or HEAD) with undici, the body read whole. */
export async function get(
  url: string,
  headers: Record<string, string> = {},
  method: 'GET' | 'HEAD' = 'GET',
): Promise<Fetched> {
  const res = await request(url, { method, headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}
