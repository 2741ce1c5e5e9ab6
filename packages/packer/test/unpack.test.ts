import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirStore } from '@thfc/store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPack } from '../src/pack.js';
import { runUnpack } from '../src/unpack.js';
import { tempDir, testIo, writeImage } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('runUnpack', () => {
  it('rebuilds the image byte for byte, with zero blocks as holes', async () => {
    const img = join(dir, 'disk.img');
    const bytes = await writeImage(img, [
      ['t', 200 * K],
      ['z', 1024 * K],
      ['r', 50 * K],
      ['z', 7],
    ]);
    const s = await runPack({ image: img, store: join(dir, 's'), blockSize: 64 * K }, testIo());
    const out = join(dir, 'out.img');
    const u = await runUnpack({ index: s.index, out }, testIo());
    expect(u.bytes).toBe(bytes.length);
    expect(Buffer.compare(await readFile(out), bytes)).toBe(0);
    const st = await stat(out);
    expect(st.blocks * 512).toBeLessThan(bytes.length - 900 * K); // the zero run is a hole
  });

  it('writes to stdout with zeros filled in', async () => {
    const img = join(dir, 'disk.img');
    const bytes = await writeImage(img, [
      ['t', 10 * K],
      ['z', 8 * K],
      ['t', 3],
    ]);
    const s = await runPack({ image: img, store: join(dir, 's'), blockSize: 4 * K }, testIo());
    const chunks: Buffer[] = [];
    const io = testIo();
    io.stdout.on('data', (c: Buffer) => chunks.push(c));
    await runUnpack({ index: s.index, out: '-' }, io);
    expect(Buffer.compare(Buffer.concat(chunks), bytes)).toBe(0);
  });

  it('refuses to overwrite without --force, and overwrites with it', async () => {
    const img = join(dir, 'disk.img');
    await writeImage(img, [['t', 10 * K]]);
    const s = await runPack({ image: img, store: join(dir, 's') }, testIo());
    await expect(runUnpack({ index: s.index, out: img }, testIo())).rejects.toThrow(/already exists/);
    await runUnpack({ index: s.index, out: img, force: true }, testIo());
  });

  it('fails on a corrupt block and leaves no output file behind', async () => {
    const img = join(dir, 'disk.img');
    await writeImage(
      img,
      [
        ['t', 64 * K],
        ['t', 64 * K],
      ],
      3,
    );
    const store = join(dir, 's');
    const s = await runPack({ image: img, store, blockSize: 64 * K }, testIo());
    const { decodeIndex } = await import('@thfc/format');
    const ref = decodeIndex(await readFile(s.index)).index.ref(1);
    if (!ref) throw new Error('expected a block');
    const path = new DirStore(store).pathOf(ref.id);
    const b = await readFile(path);
    b.writeUInt8(b.readUInt8(b.length >> 1) ^ 0xff, b.length >> 1);
    await writeFile(path, b);
    await expect(runUnpack({ index: s.index, out: join(dir, 'out.img') }, testIo())).rejects.toMatchObject({
      code: 'ERR_BLOCK_CORRUPT',
    });
    expect((await readdir(dir)).filter((f) => f.includes('out.img'))).toEqual([]);
  });

  it('reports a missing block by name', async () => {
    const img = join(dir, 'disk.img');
    await writeImage(img, [['t', 8 * K]]);
    const s = await runPack({ image: img, store: join(dir, 's') }, testIo());
    await expect(
      runUnpack({ index: s.index, out: join(dir, 'o'), store: join(dir, 'elsewhere') }, testIo()),
    ).rejects.toMatchObject({
      code: 'ERR_BLOCK_NOT_FOUND',
    });
  });
});
