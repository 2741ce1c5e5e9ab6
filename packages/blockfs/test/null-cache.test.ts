import { BlockNotFoundError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { NullCache } from '../src/sources/null-cache.js';
import { makeBlock } from './image-fixtures.js';

describe('NullCache', () => {
  it('keeps nothing: every get is BlockNotFoundError, even after a put', async () => {
    const cache = new NullCache();
    const b = makeBlock(1);
    await expect(cache.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    await cache.put();
    await expect(cache.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(await cache.has()).toBe(false);
    expect(String(cache)).toBe('none');
  });
});
