import { open, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openImageInput } from '../src/image-input.js';
import { tempDir, textBytes } from './helpers.js';

/**
 * The packer's input reads each data block into a buffer it is given (the
 * pack's buffer pool), sparse or not, so a pack reuses its buffers instead of
 * allocating one per block.
 */
const K = 1024;
const BLOCK = 64 * K;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('thfc-input-')));
afterEach(() => cleanup());

/** Counts the buffers it hands out, all of one size. */
function counted(): { take: () => Buffer; given: Set<ArrayBufferLike> } {
  const given = new Set<ArrayBufferLike>();
  return {
    given,
    take: () => {
      const b = Buffer.allocUnsafeSlow(BLOCK);
      given.add(b.buffer);
      return b;
    },
  };
}

/** The input's blocks, each checked to lie in a buffer `take` gave. */
async function collect(input: Awaited<ReturnType<typeof openImageInput>>) {
  const { take, given } = counted();
  const data: Buffer[] = [];
  for await (const step of input.blocks(BLOCK, new AbortController().signal, take)) {
    if (step.kind === 'holes') continue;
    expect(given.has(step.buffer.buffer)).toBe(true);
    data.push(step.buffer);
  }
  await input.close();
  return { data, taken: given.size };
}

describe('openImageInput reads data blocks into buffers from take', () => {
  it('a sparse file: every data block, the short last one too, is in a buffer it was given', async () => {
    const path = join(dir, 'disk.img');
    const size = 40 * BLOCK + 1000;
    await open(path, 'w').then((f) => f.close());
    await truncate(path, size);
    const fh = await open(path, 'r+');
    const text = textBytes(2 * BLOCK, 7);
    await fh.write(text, 0, text.length, 10 * BLOCK);
    await fh.write(text, 0, 1000, 40 * BLOCK);
    await fh.close();
    const input = await openImageInput(path, { stdin: process.stdin }, { signal: new AbortController().signal });
    expect(input.sparse).toBe(true);
    const { data, taken } = await collect(input);
    expect(data.map((d) => d.length)).toEqual([BLOCK, BLOCK, 1000]);
    expect(data[2]?.equals(text.subarray(0, 1000))).toBe(true);
    expect(taken).toBe(3);
  });

  it('a stream (stdin): every block is in a buffer it was given', async () => {
    const bytes = textBytes(3 * BLOCK + 5, 9);
    const stream = Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]);
    const input = await openImageInput('-', { stdin: stream }, { signal: new AbortController().signal });
    const { data, taken } = await collect(input);
    expect(Buffer.concat(data).equals(bytes)).toBe(true);
    expect(data.map((d) => d.length)).toEqual([BLOCK, BLOCK, BLOCK, 5]);
    expect(taken).toBe(4);
  });
});
