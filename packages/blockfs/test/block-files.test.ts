import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blockPath } from '@thfc/format';
import { afterEach, describe, expect, it } from 'vitest';
import { type CacheFile, listNames, walkBlockFiles } from '../src/cache/block-files.js';
import { makeBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function cacheDir(): Promise<string> {
  const { dir, cleanup } = await tempDir('thfc-block-files-');
  cleanups.push(cleanup);
  return dir;
}

const rethrow = (e: unknown): never => {
  throw e;
};
const describeFile = (f: CacheFile) =>
  f.kind === 'block' ? `block ${f.shard}/${f.id} ${f.stats.size}` : `other ${f.shard ?? '-'} ${f.name}`;

describe('walkBlockFiles', () => {
  it('finds each block file in its shard, and names everything else it meets, in a shard or beside them', async () => {
    const cache = await cacheDir();
    const a = makeBlock(1);
    const b = makeBlock(2);
    for (const blk of [a, b]) {
      await mkdir(join(cache, blockPath(blk.ref.id), '..'), { recursive: true });
      await writeFile(join(cache, blockPath(blk.ref.id)), blk.data);
    }
    const shard = a.ref.id.slice(0, 2);
    await writeFile(join(cache, 'blocks', shard, `.tmp-${a.ref.id}.123.1`), 'half');
    // A block's name in the wrong shard, a directory with a block's name, a shard that is not one, a loose file.
    const other = b.ref.id.slice(0, 2) === shard ? makeBlock(3) : b;
    await writeFile(join(cache, 'blocks', shard, other.ref.id), 'misplaced');
    await mkdir(join(cache, 'blocks', `${shard}`, `${shard}${'0'.repeat(other.ref.id.length - 2)}`));
    await mkdir(join(cache, 'blocks', 'zz'));
    await writeFile(join(cache, 'blocks', 'README'), 'x');

    const found = [...walkBlockFiles(cache, rethrow)].map(describeFile).sort();
    expect(found).toEqual(
      [
        `block ${a.ref.id.slice(0, 2)}/${a.ref.id} ${a.data.length}`,
        `block ${b.ref.id.slice(0, 2)}/${b.ref.id} ${b.data.length}`,
        `other ${shard} .tmp-${a.ref.id}.123.1`,
        `other ${shard} ${other.ref.id}`,
        `other ${shard} ${shard}${'0'.repeat(other.ref.id.length - 2)}`,
        'other - README',
        'other - zz',
      ].sort(),
    );
  });

  it('finds nothing in a cache with no blocks/ (new, or not a directory at all), without calling onError', async () => {
    const cache = await cacheDir();
    const errors: string[] = [];
    expect([...walkBlockFiles(cache, (_e, p) => errors.push(p))]).toEqual([]);
    await writeFile(join(cache, 'blocks'), 'not a directory');
    expect([...walkBlockFiles(cache, (_e, p) => errors.push(p))]).toEqual([]);
    expect(listNames(join(cache, 'missing'), rethrow)).toEqual([]);
    expect(errors).toEqual([]);
  });
});
