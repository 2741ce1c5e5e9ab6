import { execFileSync } from 'node:child_process';
import { open, readFile, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, tempDir, textBytes } from './helpers.js';

/**
 * Sparse packing through the real CLI and real qemu-img/qemu-nbd: holes are
 * never read, and the index is the same as for the dense image; unpack
 * writes holes back; a qcow2 image packs to the index of its raw twin.
 */
const K = 1024;
const M = 1024 * K;
const env = { SOURCE_DATE_EPOCH: '1700000000' };
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir('thfc-sparse-')));
afterEach(() => cleanup());

/** A sparse file of `size` bytes with text written at `at` (offsets): the rest are holes. */
async function sparseImage(path: string, size: number, at: number[]): Promise<void> {
  await open(path, 'w').then((f) => f.close());
  await truncate(path, size);
  const fh = await open(path, 'r+');
  try {
    for (const [i, off] of at.entries()) await fh.write(textBytes(300 * K, i + 1), 0, 300 * K, off);
  } finally {
    await fh.close();
  }
}

interface Summary {
  digest: string;
  bytesIn: number;
  bytesRead: number;
  zeroBlocks: number;
  inputFormat: string;
}

async function pack(image: string, store: string, extra: string[] = [], path?: string): Promise<Summary> {
  const r = await runCli(['pack', image, '-s', store, '--name', 'disk', '--json', ...extra], {
    env: path === undefined ? env : { ...env, PATH: path },
  });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Summary;
}

describe('sparse packing', () => {
  it('packs a 1 TiB sparse file without reading its holes, to the index of the dense image', async () => {
    const sparse = join(dir, 'sparse.img');
    // Data in three places: block-aligned, straddling two 4 MiB blocks, and straddling the short last block.
    const size = 2 ** 40 + 123 * K;
    await sparseImage(sparse, size, [0, 2 ** 39 + 4 * M - 100 * K, size - 300 * K]);
    const s = await pack(sparse, join(dir, 'store'), ['-b', '4M']);
    expect(s.bytesIn).toBe(size);
    // The five blocks holding data are read (the last is 123 KiB); no hole block is.
    expect(s.bytesRead).toBe(4 * 4 * M + 123 * K);
    expect(s.zeroBlocks).toBe(Math.ceil(size / (4 * M)) - 5);

    // The dense twin of a smaller image: same index, every byte read.
    const small = join(dir, 'small.img');
    await sparseImage(small, 64 * M + 5 * K + 7, [M, 40 * M - 7 * K]);
    const dense = join(dir, 'dense.img');
    execFileSync('cp', ['--sparse=never', small, dense]);
    expect((await stat(dense)).blocks * 512).toBeGreaterThanOrEqual(64 * M);
    const a = await pack(small, join(dir, 'a'));
    const b = await pack(dense, join(dir, 'b'));
    expect(a.digest).toBe(b.digest);
    expect(a.bytesRead).toBeLessThan(2 * M);
    expect(b.bytesRead).toBe(64 * M + 5 * K + 7);
    expect(await readFile(join(dir, 'a', 'disk.idx'))).toEqual(await readFile(join(dir, 'b', 'disk.idx')));
  });

  it('without qemu-img, reads everything and gives the same index', async () => {
    const img = join(dir, 'img');
    await sparseImage(img, 16 * M, [3 * M]);
    const withQemu = await pack(img, join(dir, 'a'));
    const without = await pack(img, join(dir, 'b'), [], join(dir, 'no-such-bin'));
    expect(without.bytesRead).toBe(16 * M);
    expect(withQemu.bytesRead).toBeLessThan(16 * M);
    expect(without.digest).toBe(withQemu.digest);
  });

  it('unpack writes holes, not zeros, and the bytes match', async () => {
    const img = join(dir, 'img');
    await sparseImage(img, 256 * M + 3 * K, [0, 100 * M, 256 * M - 297 * K]);
    await pack(img, join(dir, 's'));
    const out = join(dir, 'out.img');
    const r = await runCli(['unpack', join(dir, 's', 'disk.idx'), out]);
    expect(r.code, r.stderr).toBe(0);
    const st = await stat(out);
    expect(st.size).toBe(256 * M + 3 * K);
    expect(st.blocks * 512).toBeLessThan(4 * M); // three data blocks of 256 KiB, a little more at most
    execFileSync('cmp', [img, out]);
  });

  it('packs qcow2 (plain and compressed) to the same index as its raw image', async () => {
    const raw = join(dir, 'disk.img');
    await sparseImage(raw, 96 * M + 512, [5 * M, 50 * M + 3]);
    const base = await pack(raw, join(dir, 'raw'));
    for (const extra of [[], ['-c']]) {
      const q = join(dir, `disk${extra.length}.qcow2`);
      execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...extra, raw, q]);
      const s = await pack(q, join(dir, `q${extra.length}`));
      expect(s.inputFormat).toBe('qcow2');
      expect(s.bytesIn).toBe(96 * M + 512);
      expect(s.bytesRead).toBeLessThan(4 * M);
      expect(s.digest).toBe(base.digest);
    }
  });

  it('refuses a qcow2 with a backing file unless its format is given', async () => {
    const raw = join(dir, 'base.img');
    await sparseImage(raw, 8 * M, [M]);
    const overlay = join(dir, 'top.qcow2');
    execFileSync('qemu-img', ['create', '-f', 'qcow2', '-F', 'raw', '-b', raw, overlay]);
    const r = await runCli(['pack', overlay, '-s', join(dir, 's')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/backing file .*--input-format qcow2/);
    const s = await pack(overlay, join(dir, 's'), ['--input-format', 'qcow2']);
    expect(s.digest).toBe((await pack(raw, join(dir, 'r'))).digest);
  });
});
