import { FakeSource } from '@thfc/format/testing';
import { verified } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskCache } from '../src/io/disk-cache.js';
import { WriteBehind } from '../src/io/write-behind.js';
import { type CacheCounters, CachedReader } from '../src/sources/cached-reader.js';
import { CheckedReader } from '../src/sources/checked-reader.js';
import { HotBlocks } from '../src/sources/hot-blocks.js';
import { MemoryReader } from '../src/sources/memory-reader.js';
import { deferred, FakeReader, makeBlock, readWhole, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

/** memory(FakeReader) alone: the --nocache tree's RAM, with nothing below it that is hot. */
function inRam() {
  const inner = new FakeReader();
  const memory = new MemoryReader({ inner });
  return { inner, memory, hot: new HotBlocks({ memory }) };
}

/** The mount's tree, `memory(cached(checked(behind(disk)), remote))`, over a real disk cache and a fake remote. */
async function tree() {
  const t = await tempDir('thfc-hot-');
  cleanups.push(t.cleanup);
  const disk = new DiskCache({}, { dir: t.dir });
  cleanups.push(async () => disk.close());
  const writer = new WriteBehind({ sink: disk });
  const checked = new CheckedReader({ disk, writer });
  const remote = new FakeSource('remote');
  const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0 };
  const cached = new CachedReader({ local: checked, remote: verified(remote), counters });
  const memory = new MemoryReader({ inner: cached });
  return { disk, writer, checked, remote, counters, cached, memory, hot: new HotBlocks({ memory, cached, checked }) };
}

describe('HotBlocks.readNow', () => {
  it('a block in RAM is copied now, at the offset asked for, and counted as a memory hit', async () => {
    const { inner, memory, hot } = inRam();
    const b = makeBlock(11);
    inner.blocks.set(b.ref.id, b.data);
    await readWhole(memory, b.ref); // handed up whole: kept
    inner.blocks.delete(b.ref.id); // only RAM can answer now
    const dst = new Uint8Array(300).fill(0xaa);
    expect(hot.readNow(b.ref, dst, 100, 50, 100)).toBe(true);
    expect(same(dst.subarray(100, 200), b.data.subarray(50, 150))).toBe(true);
    expect(dst.subarray(0, 100).every((x) => x === 0xaa)).toBe(true);
    expect(dst.subarray(200).every((x) => x === 0xaa)).toBe(true);
    expect(memory.hits).toBe(1);
    expect(inner.reads).toEqual([b.ref.id]);
  });

  it('a block not in RAM, with nothing hot below, is false and copies and counts nothing', () => {
    const { inner, memory, hot } = inRam();
    const b = makeBlock(13);
    inner.blocks.set(b.ref.id, b.data);
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot.readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(memory.hits).toBe(0);
    expect(inner.reads).toEqual([]);
  });

  it('never serves a block in RAM shorter than the read', async () => {
    const { inner, memory, hot } = inRam();
    const b = makeBlock(14);
    const shrinking = Buffer.from(b.data);
    inner.blocks.set(b.ref.id, shrinking);
    await readWhole(memory, b.ref);
    structuredClone(shrinking.buffer, { transfer: [shrinking.buffer as ArrayBuffer] }); // detach: length 0 now
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot.readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(memory.hits).toBe(0);
  });

  /** Holds every write to the disk until `release()`: the blocks stay pending, served from their buffers. */
  function holdWrites(disk: DiskCache) {
    const gate = deferred();
    const put = disk.put.bind(disk);
    disk.put = async (ref, data, options) => {
      await gate.promise;
      return put(ref, data, options);
    };
    return { release: () => gate.resolve() };
  }

  it('a block written behind is copied from the write-behind and counted as a cache hit, not a memory one', async () => {
    const { disk, writer, remote, counters, memory, hot } = await tree();
    const b = makeBlock(40);
    remote.blocks.set(b.ref.id, b.stored);
    const writes = holdWrites(disk);
    expect(same(await readWhole(memory, b.ref), b.data)).toBe(true);
    expect(memory.holds(b.ref.id)).toBe(false); // the local cache has it in hand: not kept in RAM too
    const dst = new Uint8Array(1000).fill(0xaa);
    expect(hot.readNow(b.ref, dst, 100, 3000, 500)).toBe(true);
    expect(same(dst.subarray(100, 600), b.data.subarray(3000, 3500))).toBe(true);
    expect(dst.subarray(600).every((x) => x === 0xaa)).toBe(true);
    expect(counters).toMatchObject({ hits: 1, fetched: 1 });
    expect(memory.hits).toBe(0);
    writes.release();
    await writer.idle();
  });

  it('false while a fetch of the block is in flight, even when the local cache could answer; true once it is over', async () => {
    const { disk, writer, checked, remote, counters, memory, hot } = await tree();
    const b = makeBlock(43);
    remote.blocks.set(b.ref.id, b.stored);
    const fetch = deferred();
    remote.onGet = async () => {
      await fetch.promise;
      return undefined;
    };
    const writes = holdWrites(disk);
    const reading = readWhole(memory, b.ref);
    await settle();
    void checked.keep(b.ref, b.data); // e.g. another fetch path handed it over meanwhile: pending now
    expect(writer.pending(b.ref.id)).toBeDefined();
    const dst = new Uint8Array(b.ref.size).fill(0xaa);
    expect(hot.readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(false);
    expect(dst.every((x) => x === 0xaa)).toBe(true);
    expect(counters.hits).toBe(0);
    fetch.resolve();
    expect(same(await reading, b.data)).toBe(true);
    expect(hot.readNow(b.ref, dst, 0, 0, b.ref.size)).toBe(true);
    expect(same(dst, b.data)).toBe(true);
    expect(counters).toMatchObject({ hits: 1, fetched: 1 });
    expect(remote.calls).toHaveLength(1);
    writes.release();
    await writer.idle();
  });
});
