import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CODEC, InputError } from '@thfc/format';
import { DirStore } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openImageInput } from '../src/image-input.js';
import { type PackBlocksOptions, packBlocks } from '../src/pack-blocks.js';
import { tempDir, testIo, textBytes, writeImage } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

/** packBlocks over the raw file IMG into DIR/s, with no index written: the loop alone. */
async function pack(img: string, workers = 2) {
  const store = join(dir, 's');
  await mkdir(join(store, 'blocks'), { recursive: true });
  const input = await openImageInput(
    img,
    { stdin: process.stdin },
    { format: 'raw', signal: new AbortController().signal },
  );
  const o: PackBlocksOptions = {
    image: img,
    store,
    name: 'disk',
    blockSize: 64 * K,
    hash: 'sha1',
    codec: DEFAULT_CODEC,
    workers,
  };
  return packBlocks(input, new DirStore(store), o, testIo());
}

describe('packBlocks', () => {
  it('one entry per block in image order; a block met twice and a block already stored are written once', async () => {
    const img = join(dir, 'disk.img');
    const a = textBytes(64 * K, 1);
    const b = textBytes(64 * K, 2);
    await writeFile(img, Buffer.concat([a, Buffer.alloc(64 * K), b, a, Buffer.from('tail')]));
    const first = await pack(img);
    expect(first.entries.length).toBe(5);
    expect(first.bytesIn).toBe(4 * 64 * K + 4);
    expect(first.newBlocks).toBe(3); // a, b and the tail; the zero block is not stored
    expect(first.newBytes).toBeGreaterThan(0);

    const again = await pack(img, 1);
    expect(again.entries.length).toBe(5);
    expect([again.newBlocks, again.newBytes]).toEqual([0, 0]);
  });

  it('an empty image is an input error', async () => {
    const img = join(dir, 'empty.img');
    await writeImage(img, []);
    await expect(pack(img)).rejects.toThrow(InputError);
  });
});
