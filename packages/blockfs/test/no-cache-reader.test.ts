import { BlockNotFoundError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';
import { makeBlock, readWhole } from './image-fixtures.js';

describe('NoCacheReader', () => {
  it('keeps nothing: holds nothing, every read and load is BlockNotFoundError, even after keep()', async () => {
    const cache = new NoCacheReader();
    const b = makeBlock(1);
    await expect(readWhole(cache, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(await cache.keep()).toBe(false);
    expect(cache.holds()).toBe(false);
    await expect(readWhole(cache, b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    await expect(cache.load(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(String(cache)).toBe('none');
  });
});
