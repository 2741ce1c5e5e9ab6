import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSource,
  MirrorUnavailableError,
} from '@thfc/format';
import type { FetchOptions } from '@thfc/store';
import { MemoryLogger, verified } from '@thfc/store';
import { describe, expect, it } from 'vitest';
import {
  ImageReader,
  type ImageReaderOptions,
  newReadStream,
  READAHEAD_START_BLOCKS,
  type ReadStream,
  STREAM_STEP_BYTES,
} from '../src/image-reader.js';
import type { BlockReader } from '../src/sources/block-reader.js';
import { CachedReader } from '../src/sources/cached-reader.js';
import { HotBlocks } from '../src/sources/hot-blocks.js';
import { MemoryReader } from '../src/sources/memory-reader.js';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';
import { deferred, makeImage, patternBytes, RecordingSource, type TestImage } from './image-fixtures.js';

const BS = 4096;

/** `n` distinct blocks; those listed in `zeros` are all-zero; the last is `lastSize` bytes. */
function image(n: number, options: { zeros?: number[]; lastSize?: number } = {}): TestImage {
  const blocks = Array.from({ length: n }, (_, i) => {
    const size = i === n - 1 ? (options.lastSize ?? BS) : BS;
    return options.zeros?.includes(i) ? new Uint8Array(size) : patternBytes(size, i + 1);
  });
  return makeImage(blocks);
}

/** The image's blocks as a reader sees them: cached(none, remote), fetching (and verifying) each read. */
function blocksOf(img: TestImage, remote: BlockSource = img.source): BlockReader {
  return new CachedReader({ local: new NoCacheReader(), remote: verified(remote) });
}

function reader(img: TestImage, options: ImageReaderOptions = {}, blocks: BlockReader = blocksOf(img)) {
  const logger = new MemoryLogger();
  return { logger, reader: new ImageReader({ index: img.decoded.index, blocks, logger }, options) };
}

/** Records the options of every read and load on the way down. */
class RecordingReader implements BlockReader {
  readonly reads: { id: string; priority: FetchOptions['priority']; signal: AbortSignal | undefined }[] = [];
  readonly loads: { id: string; priority: FetchOptions['priority'] }[] = [];
  /** When set, every load waits for it (read-ahead held in a queue). */
  loadGate?: Promise<void>;
  constructor(readonly inner: BlockReader) {}
  read(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number, options?: FetchOptions) {
    this.reads.push({ id: ref.id, priority: options?.priority, signal: options?.signal });
    return this.inner.read(ref, dst, at, from, length, options);
  }
  async load(ref: BlockRef, options?: FetchOptions) {
    this.loads.push({ id: ref.id, priority: options?.priority });
    await this.loadGate;
    return this.inner.load(ref, options);
  }
  toString() {
    return `recording(${this.inner})`;
  }
}

/** Reads [position, +length) into a buffer pre-filled with 0xAA, so untouched bytes show. */
async function readRange(r: ImageReader, position: number, length: number, stream?: ReadStream) {
  const buf = new Uint8Array(length + 16).fill(0xaa);
  const n = await r.read(buf, length, position, stream);
  return { n, buf };
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('ImageReader reads', () => {
  it('returns the image’s bytes for ranges inside, across and spanning many blocks', async () => {
    const img = image(5, { lastSize: 1000 });
    const { reader: r } = reader(img);
    expect(r.size).toBe(4 * BS + 1000);
    expect(r.name).toBe('img');
    for (const [pos, len] of [
      [0, BS],
      [10, 20],
      [BS - 100, 200],
      [BS - 1, 2],
      [100, 3 * BS],
      [0, 4 * BS + 1000],
      [3 * BS + 5, BS + 995],
    ] as const) {
      const { n, buf } = await readRange(r, pos, len);
      expect(n).toBe(len);
      expect(same(buf.subarray(0, n), img.bytes.subarray(pos, pos + len))).toBe(true);
      expect(buf.subarray(n).every((x) => x === 0xaa)).toBe(true);
    }
    expect(r.counters.reads).toBe(7);
    expect(r.counters.readErrors).toBe(0);
  });

  it('fills zero blocks without asking the source', async () => {
    const img = image(4, { zeros: [1, 2] });
    const { reader: r } = reader(img);
    const { n, buf } = await readRange(r, BS, 2 * BS);
    expect(n).toBe(2 * BS);
    expect(buf.subarray(0, n).every((x) => x === 0)).toBe(true);
    expect(img.source.calls).toEqual([]);

    const all = await readRange(r, 0, 4 * BS);
    expect(same(all.buf.subarray(0, all.n), img.bytes)).toBe(true);
    expect(img.source.calls).toEqual([img.decoded.index.ref(0)?.id, img.decoded.index.ref(3)?.id]);
  });

  it('reads at or past the end return 0; reads over the end are clipped', async () => {
    const img = image(2, { lastSize: 100 });
    const size = BS + 100;
    const { reader: r } = reader(img);
    expect((await readRange(r, size, 10)).n).toBe(0);
    expect((await readRange(r, size + BS * 10, 10)).n).toBe(0);
    expect((await readRange(r, 0, 0)).n).toBe(0);
    const { n, buf } = await readRange(r, size - 10, 4096);
    expect(n).toBe(10);
    expect(same(buf.subarray(0, 10), img.bytes.subarray(size - 10))).toBe(true);
    expect(buf.subarray(10).every((x) => x === 0xaa)).toBe(true);
    expect(r.counters.bytesRead).toBe(10);
  });

  for (const [name, error] of [
    ['could not answer', new MirrorUnavailableError('fake(image)', 'down')],
    ['not found', new BlockNotFoundError('x', 'fake(image)')],
  ] as const) {
    it(`a source that ${name} rejects the read, counted and logged`, async () => {
      const img = image(3);
      const { reader: r, logger } = reader(img);
      img.source.onGet = (ref) => {
        if (ref.id === img.decoded.index.ref(1)?.id) throw error;
        return undefined;
      };
      await expect(r.read(new Uint8Array(3 * BS), 3 * BS, 0)).rejects.toBe(error);
      expect(r.counters.readErrors).toBe(1);
      expect(r.counters.bytesRead).toBe(0);
      expect(logger.lines).toEqual([`FAULT read img [0, +${3 * BS}) failed: ${error.message}`]);
    });
  }

  it('never copies out wrong bytes: a source answering another block’s bytes rejects', async () => {
    const img = image(2);
    const { reader: r } = reader(img);
    const other = img.source.blocks.get(img.decoded.index.ref(1)?.id as string);
    img.source.onGet = () => other;
    const buf = new Uint8Array(BS).fill(0xaa);
    await expect(r.read(buf, BS, 0)).rejects.toBeInstanceOf(BlockCorruptError);
    expect(buf.every((x) => x === 0xaa)).toBe(true);
  });

  it('readTimeoutMs bounds a source that never answers', async () => {
    const img = image(2);
    const { reader: r, logger } = reader(img, { readTimeoutMs: 50 });
    img.source.onGet = () => new Promise<undefined>(() => {});
    const started = Date.now();
    const e = await r.read(new Uint8Array(BS), BS, 0).catch((e: unknown) => e);
    expect((e as Error).name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(logger.lines).toEqual([`FAULT read img [0, +${BS}) failed: no answer within 50 ms`]);
    expect(r.counters.readErrors).toBe(1);
  }, 5000);

  it('the caller’s abort stops a read that is waiting', async () => {
    const img = image(2);
    const { reader: r } = reader(img);
    img.source.onGet = () => new Promise<undefined>(() => {});
    const ac = new AbortController();
    const p = r.read(new Uint8Array(BS), BS, 0, undefined, ac.signal);
    ac.abort(new Error('unmounting'));
    await expect(p).rejects.toThrow('unmounting');
  });

  it('demand reads ask the block reader with priority demand and a signal when bounded', async () => {
    const img = image(2);
    const rec = new RecordingReader(blocksOf(img));
    const { reader: r } = reader(img, { readTimeoutMs: 1000 }, rec);
    await r.read(new Uint8Array(BS), BS, 0);
    expect(rec.reads).toHaveLength(1);
    expect(rec.reads[0]?.priority).toBe('demand');
    expect(rec.reads[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it('a read spanning blocks where one fails settles only after the others stop writing into the buffer', async () => {
    const img = image(3);
    const gate = deferred();
    const slow: BlockReader = {
      async read(ref, dst, at, from, length, options) {
        if (ref.id === img.decoded.index.ref(2)?.id) await gate.promise; // still copying when block 1 fails
        return blocksOf(img).read(ref, dst, at, from, length, options);
      },
      load: (ref, options) => blocksOf(img).load(ref, options),
    };
    img.source.onGet = (ref) => {
      if (ref.id === img.decoded.index.ref(1)?.id) throw new MirrorUnavailableError('fake(image)', 'down');
      return undefined;
    };
    const { reader: r } = reader(img, {}, slow);
    let settled = false;
    const p = r.read(new Uint8Array(3 * BS), 3 * BS, 0).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    gate.resolve();
    await expect(p).rejects.toBeInstanceOf(MirrorUnavailableError);
  });
});

describe('ImageReader.readNow', () => {
  /** memory(cached(none, remote)): a block is served now once a read() has put it in RAM. */
  function setup(img: TestImage, inner: BlockReader = blocksOf(img)) {
    const memory = new MemoryReader({ inner });
    const hot = new HotBlocks({ memory });
    const observed: number[] = [];
    const r = new ImageReader({
      index: img.decoded.index,
      // The tree and its hot index, as ImageSource joins them.
      blocks: {
        read: memory.read.bind(memory),
        load: memory.load.bind(memory),
        readNow: hot.readNow.bind(hot),
        toString: () => String(memory),
      },
      logger: new MemoryLogger(),
      observers: [(i) => observed.push(i)],
    });
    /** readNow of [position, +length) into a buffer pre-filled with 0xAA. */
    const readNow = (position: number, length: number, stream?: ReadStream) => {
      const buf = new Uint8Array(length + 16).fill(0xaa);
      return { n: r.readNow(buf, length, position, stream), buf };
    };
    return { memory, observed, r, readNow };
  }

  it('undefined when one block of the range cannot be served now, even though the first could: nothing counted or observed', async () => {
    const img = image(4);
    const { memory, observed, r, readNow } = setup(img);
    await readRange(r, 0, BS); // block 0 is in RAM, block 1 is not
    const counters = { ...r.counters };
    const seen = [...observed];
    const stream = newReadStream();
    expect(readNow(100, 2 * BS, stream).n).toBeUndefined();
    expect(memory.hits).toBe(1); // block 0 was served, block 1 was not
    expect(r.counters).toEqual(counters);
    expect(observed).toEqual(seen);
    expect(stream).toEqual(newReadStream()); // the stream did not advance either
    expect(img.source.calls).toEqual([img.decoded.index.ref(0)?.id]); // and nothing was fetched

    // read() then starts over and gives the right bytes, counted once.
    const { n, buf } = await readRange(r, 100, 2 * BS, stream);
    expect(n).toBe(2 * BS);
    expect(same(buf.subarray(0, n), img.bytes.subarray(100, 100 + 2 * BS))).toBe(true);
    expect(buf.subarray(n).every((x) => x === 0xaa)).toBe(true);
    expect(r.counters).toMatchObject({ reads: counters.reads + 1, bytesRead: counters.bytesRead + 2 * BS });
    expect(observed).toEqual([...seen, 0, 1, 2]);
  });

  it('copies a range now once its blocks are in RAM; counts and observes it exactly once', async () => {
    const img = image(4);
    const { observed, r, readNow } = setup(img);
    await readRange(r, 0, 3 * BS);
    const calls = img.source.calls.length;
    const counters = { ...r.counters };
    observed.length = 0;
    const { n, buf } = readNow(BS - 10, BS + 20);
    expect(n).toBe(BS + 20);
    expect(same(buf.subarray(0, BS + 20), img.bytes.subarray(BS - 10, 2 * BS + 10))).toBe(true);
    expect(buf.subarray(BS + 20).every((x) => x === 0xaa)).toBe(true);
    expect(r.counters).toEqual({ ...counters, reads: counters.reads + 1, bytesRead: counters.bytesRead + BS + 20 });
    expect(observed).toEqual([0, 1, 2]);
    expect(img.source.calls).toHaveLength(calls);
  });

  it('fills zero blocks, and observes only the blocks that are not zero', async () => {
    const img = image(4, { zeros: [1, 2] });
    const { observed, r, readNow } = setup(img);
    await readRange(r, 0, BS);
    await readRange(r, 3 * BS, BS);
    observed.length = 0;
    const all = readNow(0, 4 * BS);
    expect(all.n).toBe(4 * BS);
    expect(same(all.buf.subarray(0, 4 * BS), img.bytes)).toBe(true);
    expect(all.buf.subarray(4 * BS).every((x) => x === 0xaa)).toBe(true);
    expect(observed).toEqual([0, 3]);
    const zeros = readNow(BS + 5, 2 * BS - 10); // zero blocks only: nothing to wait for, ever
    expect(zeros.n).toBe(2 * BS - 10);
    expect(zeros.buf.subarray(0, 2 * BS - 10).every((x) => x === 0)).toBe(true);
    expect(zeros.buf.subarray(2 * BS - 10).every((x) => x === 0xaa)).toBe(true);
    expect(observed).toEqual([0, 3]);
    expect(r.counters).toMatchObject({ reads: 4, bytesRead: 2 * BS + 4 * BS + 2 * BS - 10 });
  });

  it('0 at or past the end and for an empty read; clipped over the end', async () => {
    const img = image(2, { lastSize: 100 });
    const size = BS + 100;
    const { r, readNow } = setup(img);
    expect(readNow(size, 10).n).toBe(0);
    expect(readNow(size + 10 * BS, 10).n).toBe(0);
    expect(readNow(0, 0).n).toBe(0);
    expect(r.counters).toMatchObject({ reads: 0, bytesRead: 0 });
    await readRange(r, BS, 100);
    const { n, buf } = readNow(size - 10, BS);
    expect(n).toBe(10);
    expect(same(buf.subarray(0, 10), img.bytes.subarray(size - 10))).toBe(true);
    expect(buf.subarray(10).every((x) => x === 0xaa)).toBe(true);
    expect(r.counters).toMatchObject({ reads: 2, bytesRead: 110 });
  });

  it('undefined when the block reader has no readNow (no hot index)', () => {
    const img = image(2, { zeros: [0, 1] });
    const r = new ImageReader({ index: img.decoded.index, blocks: new RecordingReader(blocksOf(img)) });
    const buf = new Uint8Array(BS).fill(0xaa);
    expect(r.readNow(buf, BS, 0)).toBeUndefined();
    expect(r.counters).toMatchObject({ reads: 0, bytesRead: 0 });
  });

  it('a stream of reads answered now reads ahead as read() does', async () => {
    const img = image(20);
    const rec = new RecordingReader(blocksOf(img));
    const { r, readNow } = setup(img, rec);
    await readRange(r, 0, 3 * BS); // no stream: no read-ahead
    expect(rec.loads).toEqual([]);
    const stream = newReadStream();
    for (let i = 0; i < 3; i++) expect(readNow(i * BS, BS, stream).n).toBe(BS);
    expect(rec.loads.map((l) => l.id)).toEqual([3, 4, 5, 6].map((i) => img.decoded.index.ref(i)?.id));
    expect(rec.loads.every((l) => l.priority === 'background')).toBe(true);
    expect(r.counters.readaheadIssued).toBe(4);
  });
});

describe('ImageReader read-ahead', () => {
  function setup(n: number, options: ImageReaderOptions & { zeros?: number[] } = {}) {
    const img = image(n, { zeros: options.zeros });
    const rec = new RecordingReader(blocksOf(img));
    const { reader: r, logger } = reader(img, options, rec);
    const idOf = (i: number) => img.decoded.index.ref(i)?.id;
    const background = () => rec.loads.filter((g) => g.priority === 'background').map((g) => g.id);
    const readBlock = (i: number, stream: ReadStream) => r.read(new Uint8Array(BS), BS, i * BS, stream);
    return { img, rec, r, logger, idOf, background, readBlock };
  }

  it('starts once reads form a stream, asks for the next N blocks in the background, then keeps one window ahead', async () => {
    const { r, idOf, background, readBlock } = setup(20, { readaheadBlocks: 4 });
    const stream = newReadStream();
    await readBlock(0, stream);
    await readBlock(1, stream);
    expect(background()).toEqual([]);
    await readBlock(2, stream);
    expect(background()).toEqual([3, 4, 5, 6].map(idOf));
    expect(r.counters.readaheadIssued).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 10)); // read-ahead settles
    await readBlock(3, stream);
    expect(background()).toEqual([3, 4, 5, 6, 7].map(idOf)); // only the block that entered the window
  });

  it('a kernel read size below the block size (several reads per block) is still one stream', async () => {
    const { background, r } = setup(10, { readaheadBlocks: 2 });
    const stream = newReadStream();
    for (let pos = 0; pos < 2 * BS; pos += BS / 2) await r.read(new Uint8Array(BS / 2), BS / 2, pos, stream);
    expect(background().length).toBeGreaterThan(0);
  });

  it('two requests of one stream arriving out of order are still the stream', async () => {
    const { idOf, background, r } = setup(20, { readaheadBlocks: 2 });
    const stream = newReadStream();
    const half = BS / 2;
    // Half-block requests (as 128 KiB FUSE reads of 256 KiB blocks); the second half of block 0 arrives after block 1's first.
    for (const pos of [0, 2 * half, half, 3 * half, 4 * half]) await r.read(new Uint8Array(half), half, pos, stream);
    expect(background()).toEqual([2, 3, 4].map(idOf)); // never reset: an out-of-order request would restart detection
  });

  it('the read deadline is armed only when a layer looks at the signal (a read that waits on a fetch)', async () => {
    const img = image(2);
    const seen: FetchOptions[] = [];
    const peek: BlockReader = {
      read: (_ref, dst, at, _from, length, options) => {
        if (options) seen.push(options);
        dst.fill(0, at, at + length);
        return Promise.resolve(undefined); // answered without looking at options.signal
      },
      load: () => Promise.resolve(undefined),
    };
    const { reader: r } = reader(img, { readTimeoutMs: 30 }, peek);
    await r.read(new Uint8Array(BS), BS, 0);
    const options = seen[0] as FetchOptions;
    expect(options.priority).toBe('demand');
    expect(typeof Object.getOwnPropertyDescriptor(options, 'signal')?.get).toBe('function'); // not made yet
    const signal = options.signal as AbortSignal;
    expect(options.signal).toBe(signal); // made once
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    expect((signal.reason as Error).name).toBe('TimeoutError');
  });

  it('random reads issue no read-ahead', async () => {
    const { r, background, readBlock } = setup(20, { readaheadBlocks: 4 });
    const stream = newReadStream();
    for (const i of [5, 1, 9, 3, 17, 12, 0, 7]) await readBlock(i, stream);
    expect(background()).toEqual([]);
    expect(r.counters.readaheadIssued).toBe(0);
  });

  it('without a stream, or with readaheadBlocks 0, there is no read-ahead', async () => {
    const a = setup(10, { readaheadBlocks: 4 });
    for (let i = 0; i < 5; i++) await a.r.read(new Uint8Array(BS), BS, i * BS);
    expect(a.background()).toEqual([]);
    const b = setup(10, { readaheadBlocks: 0 });
    const stream = newReadStream();
    for (let i = 0; i < 5; i++) await b.readBlock(i, stream);
    expect(b.background()).toEqual([]);
  });

  it('starts at READAHEAD_START_BLOCKS and ramps up as the stream goes on, to the most blocks allowed', async () => {
    const { img, background, readBlock } = setup(300, { readaheadBlocks: 64 });
    const stream = newReadStream();
    for (let i = 0; i < 3; i++) await readBlock(i, stream);
    expect(background()).toHaveLength(READAHEAD_START_BLOCKS);
    const max = 64;
    const blockOf = new Map<string | undefined, number>(
      Array.from({ length: 300 }, (_, i) => [img.decoded.index.ref(i)?.id, i]),
    );
    const furthest = () => Math.max(...background().map((id) => blockOf.get(id) ?? -1));
    const seen: number[] = [];
    for (let i = 3; i < 200; i++) {
      await readBlock(i, stream);
      await new Promise((resolve) => setImmediate(resolve)); // read-ahead loads settle
      seen.push(furthest() - i);
    }
    // The distance ahead grew in doublings (4, 8, 16, …) and then held at the maximum.
    expect(Math.max(...seen)).toBe(max);
    expect(seen.slice(-20).every((d) => d === max)).toBe(true);
    expect(seen[0]).toBeLessThan(2 * READAHEAD_START_BLOCKS + 1);
  });

  it('skips zero blocks and stops at the last block', async () => {
    const { idOf, background, readBlock } = setup(8, { readaheadBlocks: 10, zeros: [4, 5] });
    const stream = newReadStream();
    for (let i = 0; i < 3; i++) await readBlock(i, stream);
    expect(background()).toEqual([3, 6].map(idOf)); // 4 ahead of block 2, the zero blocks skipped
    for (const i of [3, 4]) await readBlock(i, stream); // the stream goes on: 8 ahead, clipped at the end
    expect(background()).toEqual([3, 6, 7].map(idOf));
  });

  it('keeps at most N read-ahead loads in flight', async () => {
    const { rec, r } = setup(30, { readaheadBlocks: 3 });
    const gate = deferred();
    rec.loadGate = gate.promise;
    const stream = newReadStream();
    for (let i = 0; i < 8; i++) await r.read(new Uint8Array(BS), BS, i * BS, stream);
    expect(rec.loads).toHaveLength(3);
    gate.resolve();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await r.read(new Uint8Array(BS), BS, 8 * BS, stream);
    expect(rec.loads.length).toBeGreaterThan(3);
  });

  it('read-ahead reaches the remote at background priority', async () => {
    const img = image(10);
    const remote = new RecordingSource(img.source);
    const { reader: r } = reader(img, { readaheadBlocks: 2 }, blocksOf(img, remote));
    const stream = newReadStream();
    for (let i = 0; i < 3; i++) await r.read(new Uint8Array(BS), BS, i * BS, stream);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(remote.gets.filter((g) => g.priority === 'background').map((g) => g.id)).toEqual(
      [3, 4].map((i) => img.decoded.index.ref(i)?.id),
    );
  });

  it('a failed read-ahead is logged verbosely and fails no read', async () => {
    const { img, idOf, logger, readBlock } = setup(10, { readaheadBlocks: 2 });
    img.source.onGet = (ref) => {
      if (ref.id === idOf(3)) throw new MirrorUnavailableError('fake(image)', 'down');
      return undefined;
    };
    const stream = newReadStream();
    for (let i = 0; i < 3; i++) await readBlock(i, stream);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(logger.lines).toEqual(['FETCH read-ahead of block 3 gave up: fake(image) unavailable: down']);
  });

  describe('reads smaller than a FUSE request (NBD clients)', () => {
    const BIG = 256 * 1024; // the default block size: a FUSE request (128 KiB) is half a block
    const PAGE = 4096;
    function big(n: number) {
      const img = makeImage(
        Array.from({ length: n }, (_, i) => patternBytes(BIG, i + 1)),
        { blockSize: BIG },
      );
      const rec = new RecordingReader(blocksOf(img));
      const { reader: r } = reader(img, {}, rec);
      const read = (pos: number, len: number, stream: ReadStream) => r.read(new Uint8Array(len), len, pos, stream);
      return { r, rec, read };
    }

    it('32 4 KiB reads inside one block ask for no more read-ahead than one 128 KiB read (none)', async () => {
      const fuse = big(8);
      await fuse.read(BIG, STREAM_STEP_BYTES, newReadStream());
      const nbd = big(8);
      const stream = newReadStream();
      for (let k = 0; k < 32; k++) await nbd.read(BIG + k * PAGE, PAGE, stream);
      expect(nbd.r.counters.readaheadIssued).toBe(fuse.r.counters.readaheadIssued);
      expect(nbd.rec.loads).toEqual([]);
    });

    it('re-reads of the same pages are no progress', async () => {
      const { r, rec, read } = big(8);
      const stream = newReadStream();
      for (let k = 0; k < 40; k++) await read(2 * BIG + (k % 4) * PAGE, PAGE, stream);
      expect(rec.loads).toEqual([]);
      expect(r.counters.readaheadIssued).toBe(0);
    });

    it('small reads start read-ahead after the same bytes as 128 KiB requests do', async () => {
      const fuse = big(16);
      const fuseStream = newReadStream();
      let fuseBytes = 0;
      while (fuse.r.counters.readaheadIssued === 0) {
        await fuse.read(fuseBytes, STREAM_STEP_BYTES, fuseStream);
        fuseBytes += STREAM_STEP_BYTES;
      }
      const nbd = big(16);
      const stream = newReadStream();
      let nbdBytes = 0;
      while (nbd.r.counters.readaheadIssued === 0) {
        await nbd.read(nbdBytes, PAGE, stream);
        nbdBytes += PAGE;
      }
      // FUSE: a first request, then two steps; 4 KiB reads: the first page, then the same two steps.
      expect(fuseBytes).toBe(3 * STREAM_STEP_BYTES);
      expect(nbdBytes).toBe(PAGE + 2 * STREAM_STEP_BYTES);
      expect(nbd.r.counters.readaheadIssued).toBe(fuse.r.counters.readaheadIssued);
    });
  });

  it('a stream that starts again behind an earlier one reads ahead again', async () => {
    const { idOf, background, readBlock } = setup(40, { readaheadBlocks: 4 });
    const stream = newReadStream();
    for (const i of [20, 21, 22]) await readBlock(i, stream);
    expect(background()).toEqual([23, 24, 25, 26].map(idOf));
    // Seek back to the start of the image and read it sequentially.
    for (const i of [0, 1, 2]) await readBlock(i, stream);
    expect(background()).toEqual([23, 24, 25, 26, 3, 4, 5, 6].map(idOf));
  });
});
