import { describe, expect, it } from 'vitest';
import { pruneVictims } from '../src/cache-prune.js';
import type { CacheBlock } from '../src/cache-usage.js';

const block = (id: string, size: number, lastUseMs: number): CacheBlock => ({ id, path: `/c/${id}`, size, lastUseMs });

describe('pruneVictims', () => {
  const blocks = [block('c', 100, 30), block('a', 100, 10), block('d', 50, 40), block('b', 100, 10)];

  it('removes least recently used first (ties by name) until the rest fits', () => {
    expect(pruneVictims(blocks, 200).map((b) => b.id)).toEqual(['a', 'b']);
    expect(pruneVictims(blocks, 149).map((b) => b.id)).toEqual(['a', 'b', 'c']);
  });

  it('removes nothing from a cache that fits, and everything for 0', () => {
    expect(pruneVictims(blocks, 350)).toEqual([]);
    expect(pruneVictims(blocks, 0)).toHaveLength(4);
    expect(pruneVictims([], 0)).toEqual([]);
  });
});
