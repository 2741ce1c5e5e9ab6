import { MirrorUnavailableError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MEMORY_CACHE_BYTES, MemoryReader } from '../src/sources/memory-reader.js';
import { FakeReader, makeBlock, readWhole, type TestBlock } from './image-fixtures.js';

function setup(maxBytes?: number) {
  const inner = new FakeReader();
  return { inner, memory: new MemoryReader({ inner }, { maxBytes }) };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('MemoryReader', () => {
  it('keeps a block the layer below hands up whole; later reads copy from RAM', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(1);
    inner.blocks.set(b.ref.id, b.data);
    expect(memory.holds(b.ref.id)).toBe(false);
    expect(same(await readWhole(memory, b.ref), b.data)).toBe(true);
    expect(memory.holds(b.ref.id)).toBe(true);
    const dst = new Uint8Array(300).fill(0xaa);
    expect(await memory.read(b.ref, dst, 100, 50, 100)).toBeUndefined();
    expect(same(dst.subarray(100, 200), b.data.subarray(50, 150))).toBe(true);
    expect(dst.subarray(200).every((x) => x === 0xaa)).toBe(true);
    expect(inner.reads).toEqual([b.ref.id]);
    expect(memory.hits).toBe(1);
  });

  it('keeps nothing when the layer below copied a slice alone (a verified disk hit)', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(2);
    inner.blocks.set(b.ref.id, b.data);
    inner.handUp = false;
    await readWhole(memory, b.ref);
    await readWhole(memory, b.ref);
    expect(memory.holds(b.ref.id)).toBe(false);
    expect(inner.reads).toHaveLength(2);
  });

  it('keeps what load() hands up, and skips loading what it holds', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(3);
    inner.blocks.set(b.ref.id, b.data);
    await memory.load(b.ref, { priority: 'background' });
    expect(memory.holds(b.ref.id)).toBe(true);
    expect(await memory.load(b.ref)).toBeUndefined();
    expect(inner.loads).toEqual([b.ref.id]);
  });

  it('holds at most maxBytes, evicting the least recently used', async () => {
    const blocks = [makeBlock(4), makeBlock(5), makeBlock(6), makeBlock(7)];
    const { inner, memory } = setup((blocks[0] as TestBlock).ref.size * 3);
    for (const b of blocks) inner.blocks.set(b.ref.id, b.data);
    const [b0, b1, b2, b3] = blocks as [TestBlock, TestBlock, TestBlock, TestBlock];
    await readWhole(memory, b0.ref);
    await readWhole(memory, b1.ref);
    await readWhole(memory, b2.ref);
    await readWhole(memory, b0.ref); // b0 is now the most recently used
    await readWhole(memory, b3.ref); // evicts b1
    expect(blocks.map((b) => memory.holds(b.ref.id))).toEqual([true, false, true, true]);
  });

  it('does not keep a block larger than the whole cache; maxBytes 0 keeps nothing and still serves', async () => {
    for (const max of [0, 4095]) {
      const { inner, memory } = setup(max);
      const b = makeBlock(8);
      inner.blocks.set(b.ref.id, b.data);
      expect(same(await readWhole(memory, b.ref), b.data)).toBe(true);
      expect(same(await readWhole(memory, b.ref), b.data)).toBe(true);
      expect(memory.holds(b.ref.id)).toBe(false);
      expect(inner.reads).toHaveLength(2);
      expect(memory.hits).toBe(0);
    }
  });

  it('never serves a block shorter than the read (a buffer given away reads as empty)', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(10);
    const shrinking = Buffer.from(b.data);
    inner.blocks.set(b.ref.id, shrinking);
    await readWhole(memory, b.ref);
    inner.blocks.set(b.ref.id, b.data);
    structuredClone(shrinking.buffer, { transfer: [shrinking.buffer as ArrayBuffer] }); // detach: length 0 now
    expect(same(await readWhole(memory, b.ref), b.data)).toBe(true);
    expect(inner.reads).toHaveLength(2);
  });

  it('errors pass through and nothing is kept', async () => {
    const { inner, memory } = setup();
    const b = makeBlock(9);
    const down = new MirrorUnavailableError('fake(inner)', 'down');
    inner.onRead = () => {
      throw down;
    };
    await expect(readWhole(memory, b.ref)).rejects.toBe(down);
    expect(memory.holds(b.ref.id)).toBe(false);
  });

  it('defaults to 32 MiB and prints its size and inner reader', () => {
    expect(DEFAULT_MEMORY_CACHE_BYTES).toBe(32 * 1024 * 1024);
    expect(String(setup().memory)).toBe('memory(32M, fake(reader))');
    expect(String(setup(1000).memory)).toBe('memory(1000, fake(reader))');
  });
});
