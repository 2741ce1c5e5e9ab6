import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockId } from '@thfc/format';
import { afterEach, describe, expect, it } from 'vitest';
import { InlineVerifier } from '../src/io/file-verifier.js';
import { corrupted, patternBytes, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function fileWith(bytes: Uint8Array): Promise<number> {
  const t = await tempDir('thfc-verifier-');
  const path = join(t.dir, 'block');
  await writeFile(path, bytes);
  const fd = openSync(path, 'r');
  cleanups.push(async () => {
    closeSync(fd);
    await t.cleanup();
  });
  return fd;
}

describe('InlineVerifier', () => {
  it('true for a file that hashes to the name (sha1 and sha256), false otherwise', async () => {
    const verifier = new InlineVerifier();
    const data = patternBytes(256 * 1024, 1);
    const fd = await fileWith(data);
    expect(await verifier.verify(fd, data.length, blockId(data, 'sha1'))).toBe(true);
    expect(await verifier.verify(fd, data.length, blockId(data, 'sha256'))).toBe(true);
    expect(await verifier.verify(fd, data.length, blockId(corrupted(data), 'sha1'))).toBe(false);
    expect(await verifier.verify(fd, data.length - 1, blockId(data, 'sha1'))).toBe(false); // a prefix is not the block
    expect(await verifier.verify(fd, data.length, 'not-a-block-name')).toBe(false);
    const short = await fileWith(data.subarray(0, 1000));
    expect(await verifier.verify(short, data.length, blockId(data, 'sha1'))).toBe(false);
  });

  it('checks blocks of different sizes and many at once with its reused buffers', async () => {
    const verifier = new InlineVerifier();
    const blocks = [100, 256 * 1024, 4096, 256 * 1024, 1].map((n, i) => patternBytes(n, i + 2));
    const fds = await Promise.all(blocks.map(fileWith));
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(
        blocks.map((b, i) => verifier.verify(fds[i] as number, b.length, blockId(b, 'sha1'))),
      );
      expect(results).toEqual([true, true, true, true, true]);
    }
    await verifier.close();
  });

  it('an unreadable descriptor rejects', async () => {
    await expect(new InlineVerifier().verify(1_000_000, 10, blockId(new Uint8Array(10), 'sha1'))).rejects.toThrow(
      /EBADF/,
    );
  });
});
