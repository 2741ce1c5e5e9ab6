import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { blockId, decodeIndex, verifyIndexSignatures } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runKeygen } from '../src/keygen.js';
import { runPack } from '../src/pack.js';
import { imageBytes, tempDir, testIo, writeImage } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

async function blockFiles(store: string): Promise<string[]> {
  const out: string[] = [];
  for (const shard of await readdir(join(store, 'blocks'))) {
    for (const f of await readdir(join(store, 'blocks', shard))) out.push(f);
  }
  return out.sort();
}

describe('runPack', () => {
  it('splits, names by SHA-1 of the uncompressed bytes, skips zero blocks, keeps the exact size', async () => {
    const img = join(dir, 'disk.img');
    const bytes = await writeImage(img, [
      ['t', 64 * K],
      ['z', 128 * K],
      ['t', 64 * K + 123],
    ]);
    const s = await runPack({ image: img, store: join(dir, 's'), blockSize: 64 * K }, testIo());
    expect(s.name).toBe('disk');
    expect(s.blocks).toBe(5);
    expect(s.zeroBlocks).toBe(2);
    expect(s.uniqueBlocks).toBe(3);
    expect(s.newBlocks).toBe(3);
    expect(s.bytesIn).toBe(bytes.length);
    const d = decodeIndex(await readFile(s.index));
    expect(d.index.header.size).toBe(bytes.length);
    expect(d.index.isZero(1) && d.index.isZero(2)).toBe(true);
    expect(d.index.ref(0)?.id).toBe(blockId(bytes.subarray(0, 64 * K), 'sha1'));
    expect(d.index.ref(4)?.size).toBe(123);
    expect(d.index.ref(4)?.id).toBe(blockId(bytes.subarray(256 * K), 'sha1'));
    expect(await blockFiles(join(dir, 's'))).toHaveLength(3);
  });

  it('stores a repeated block once and reuses the store on a second run', async () => {
    const img = join(dir, 'a.img');
    const t = imageBytes([['t', 64 * K]], 7);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(img, Buffer.concat([t, t, t]));
    const store = join(dir, 's');
    const first = await runPack({ image: img, store, blockSize: 64 * K }, testIo());
    expect([first.blocks, first.uniqueBlocks, first.newBlocks]).toEqual([3, 1, 1]);
    const again = await runPack({ image: img, store, blockSize: 64 * K }, testIo());
    expect(again.newBlocks).toBe(0);
    expect(again.newBytes).toBe(0);
    expect(again.storedBytes).toBe(first.storedBytes);
  });

  it('reads an image from stdin (-) and needs --name for it', async () => {
    const bytes = imageBytes([
      ['t', 100 * K],
      ['z', 64 * K],
    ]);
    const s = await runPack(
      { image: '-', name: 'piped', store: join(dir, 's'), blockSize: 64 * K },
      testIo({ stdin: bytes }),
    );
    expect(s.bytesIn).toBe(bytes.length);
    expect(s.blocks).toBe(3);
    await expect(runPack({ image: '-', store: join(dir, 's') }, testIo({ stdin: bytes }))).rejects.toThrow(/--name/);
  });

  it('is deterministic: same image and options give the same index bytes', async () => {
    const img = join(dir, 'd.img');
    await writeImage(img, [
      ['t', 300 * K],
      ['z', 100 * K],
    ]);
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const a = await runPack({ image: img, store: join(dir, 's1') }, testIo({ env }));
    const b = await runPack({ image: img, store: join(dir, 's2'), workers: 1 }, testIo({ env }));
    expect(Buffer.compare(await readFile(a.index), await readFile(b.index))).toBe(0);
    expect(decodeIndex(await readFile(a.index)).index.header.created).toBe('2023-11-14T22:13:20Z');
  });

  it('supports zlib, none, sha256 and other block sizes', async () => {
    const img = join(dir, 'c.img');
    await writeImage(img, [
      ['t', 40 * K],
      ['r', 40 * K],
    ]);
    for (const [codec, level] of [
      ['zlib', 6],
      ['none', 0],
    ] as const) {
      const s = await runPack(
        { image: img, store: join(dir, codec), codec: { codec, level }, blockSize: 16 * K },
        testIo(),
      );
      const d = decodeIndex(await readFile(s.index));
      const codecs = new Set([...d.index.entries()].map((e) => (e.zero ? 'zero' : e.codec)));
      expect(codecs.has(codec)).toBe(true);
      if (codec === 'zlib') expect(codecs.has('none')).toBe(true); // random blocks do not pay
    }
    const s = await runPack({ image: img, store: join(dir, 'sha'), hash: 'sha256', blockSize: 4 * K }, testIo());
    const d = decodeIndex(await readFile(s.index));
    expect(d.index.header.hash).toBe('sha256');
    expect(d.index.ref(0)?.id).toHaveLength(64);
    expect(d.index.blockCount).toBe(20);
  });

  it('signs with --sign and records --previous', async () => {
    const img = join(dir, 'p.img');
    await writeImage(img, [['t', 70 * K]]);
    const key = join(dir, 'k');
    const kg = await runKeygen({ keyFile: key });
    const store = join(dir, 's');
    const v1 = await runPack({ image: img, store, name: 'v1' }, testIo());
    const v2 = await runPack({ image: img, store, name: 'v2', sign: key, previous: v1.index }, testIo());
    const d = decodeIndex(await readFile(v2.index));
    expect(d.index.header.previous).toBe(v1.digest);
    expect(verifyIndexSignatures(d)).toEqual([expect.objectContaining({ keyId: kg.keyId, valid: true })]);
  });

  it('refuses bad inputs before touching the store', async () => {
    const io = testIo();
    const store = join(dir, 's');
    await expect(runPack({ image: join(dir, 'nope.img'), store }, io)).rejects.toThrow(/no such file/);
    await expect(runPack({ image: dir, store }, io)).rejects.toThrow(/is a directory/);
    const empty = join(dir, 'empty.img');
    await writeImage(empty, []);
    await expect(runPack({ image: empty, store }, io)).rejects.toThrow(/empty/);
    const img = join(dir, 'x.img');
    await writeImage(img, [['t', 10 * K]]);
    await expect(runPack({ image: img, store, blockSize: 3000 }, io)).rejects.toThrow(/power of two/);
    await expect(runPack({ image: img, store, name: '../evil' }, io)).rejects.toThrow(/bad image name/);
    await expect(stat(store)).rejects.toThrow();
  });

  it('stops on abort with an InterruptedError and leaves only whole blocks', async () => {
    const img = join(dir, 'big.img');
    await writeImage(img, [['t', 4096 * K]]);
    const ac = new AbortController();
    ac.abort(new Error('test'));
    await expect(
      runPack({ image: img, store: join(dir, 's'), blockSize: 64 * K }, testIo({ signal: ac.signal })),
    ).rejects.toMatchObject({
      code: 'ERR_INTERRUPTED',
    });
    const files = await blockFiles(join(dir, 's'));
    expect(files.every((f) => !f.startsWith('.tmp'))).toBe(true);
    await expect(stat(join(dir, 's', 'big.idx'))).rejects.toThrow();
  });
});
