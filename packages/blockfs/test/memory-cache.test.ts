import { BlockNotFoundError, MirrorUnavailableError } from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MEMORY_CACHE_BYTES, MemoryCache } from '../src/sources/memory-cache.js';
import { makeBlock, type TestBlock } from './image-fixtures.js';

function setup(maxBytes?: number) {
  const inner = new FakeSource('inner');
  return { inner, memory: new MemoryCache({ inner }, { maxBytes }) };
}

/** What one entry costs the cache: stored plus decoded bytes. */
const cost = (b: TestBlock) => b.stored.length + b.ref.size;

describe('MemoryCache', () => {
  it('a miss asks the inner source; a hit does not', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(1);
    inner.blocks.set(b.ref.id, b.stored);
    expect(memory.holds(b.ref.id)).toBe(false);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(memory.holds(b.ref.id)).toBe(true);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(inner.calls).toEqual([b.ref.id]);
    expect(memory.hits).toBe(2);
  });

  it('holds at most maxBytes, evicting the least recently used', async () => {
    const blocks = [makeBlock(2), makeBlock(3), makeBlock(4), makeBlock(5)];
    const { inner, memory } = setup(cost(blocks[0] as TestBlock) * 3);
    for (const b of blocks) inner.blocks.set(b.ref.id, b.stored);
    const [b0, b1, b2, b3] = blocks as [TestBlock, TestBlock, TestBlock, TestBlock];
    await memory.get(b0.ref);
    await memory.get(b1.ref);
    await memory.get(b2.ref);
    await memory.get(b0.ref); // b0 is now the most recently used
    await memory.get(b3.ref); // evicts b1
    expect(blocks.map((b) => memory.holds(b.ref.id))).toEqual([true, false, true, true]);
    const calls = inner.calls.length;
    await memory.get(b1.ref);
    expect(inner.calls.length).toBe(calls + 1);
  });

  it('does not keep a block larger than the whole cache', async () => {
    const b = makeBlock(6);
    const { inner, memory } = setup(cost(b) - 1);
    inner.blocks.set(b.ref.id, b.stored);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(memory.holds(b.ref.id)).toBe(false);
    await memory.get(b.ref);
    expect(inner.calls).toHaveLength(2);
  });

  it('maxBytes 0 keeps nothing and still serves', async () => {
    const b = makeBlock(7);
    const { inner, memory } = setup(0);
    inner.blocks.set(b.ref.id, b.stored);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(inner.calls).toHaveLength(2);
    expect(memory.hits).toBe(0);
  });

  it('errors pass through and are not cached', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(8);
    const down = new MirrorUnavailableError('fake(inner)', 'down');
    inner.onGet = () => {
      throw down;
    };
    await expect(memory.get(b.ref)).rejects.toBe(down);
    inner.onGet = undefined;
    await expect(memory.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(memory.holds(b.ref.id)).toBe(false);
    inner.blocks.set(b.ref.id, b.stored);
    expect(await memory.get(b.ref)).toBe(b.stored);
    expect(inner.calls).toHaveLength(3);
  });

  it('has() answers from RAM first, then asks the inner source', async () => {
    const { inner, memory } = setup();
    const [a, b] = [makeBlock(9), makeBlock(10)];
    inner.blocks.set(a.ref.id, a.stored);
    await memory.get(a.ref);
    inner.blocks.delete(a.ref.id);
    expect(await memory.has(a.ref)).toBe(true);
    expect(await memory.has(b.ref)).toBe(false);
    inner.blocks.set(b.ref.id, b.stored);
    expect(await memory.has(b.ref)).toBe(true);
  });

  it('defaults to 64 MiB and prints its inner source', () => {
    expect(DEFAULT_MEMORY_CACHE_BYTES).toBe(64 * 1024 * 1024);
    expect(String(setup().memory)).toBe('memory(fake(inner))');
  });
});
