import { execFileSync } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { mkdir, open, readdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockNotFoundError, blockPath, MirrorUnavailableError } from '@thfc/format';
import { blockSourceContract } from '@thfc/format/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryLogger } from '../src/logger.js';
import { DiskCache } from '../src/sources/disk-cache.js';
import { rawBlock, type TestBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function cacheDir(): Promise<string> {
  const t = await tempDir('thfc-disk-cache-');
  cleanups.push(t.cleanup);
  return t.dir;
}

blockSourceContract(
  'DiskCache',
  async () => {
    const cache = new DiskCache({}, { dir: await cacheDir() });
    await cache.open();
    return cache;
  },
  { describe, it, expect },
);

/** Bytes of every block file under DIR/blocks, as the disk sees them. */
async function bytesOnDisk(dir: string): Promise<number> {
  let total = 0;
  const root = join(dir, 'blocks');
  for (const shard of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, shard))) total += (await stat(join(root, shard, name))).size;
  }
  return total;
}

const fileOf = (dir: string, b: TestBlock) => join(dir, blockPath(b.ref.id));

describe('DiskCache.open', () => {
  it('an absent cache directory is an empty cache', async () => {
    const cache = new DiskCache({}, { dir: join(await cacheDir(), 'not-yet') });
    await cache.open();
    expect(cache.blocks).toBe(0);
    expect(cache.bytes).toBe(0);
  });

  it('learns the blocks already on disk, and ignores temp files, strays and misplaced names', async () => {
    const dir = await cacheDir();
    const writer = new DiskCache({}, { dir });
    const blocks = [rawBlock(1000), rawBlock(1500), rawBlock(2000)];
    for (const b of blocks) await writer.put(b.ref, b.stored);
    const shard = join(dir, 'blocks', blocks[0]?.ref.id.slice(0, 2) as string);
    await writeFile(join(shard, `.tmp-${blocks[0]?.ref.id}.1.abcd`), 'partial');
    await writeFile(join(shard, 'README'), 'not a block');
    await mkdir(join(dir, 'blocks', 'zz'), { recursive: true });
    await writeFile(join(dir, 'blocks', 'zz', 'a'.repeat(40)), 'a block name in the wrong shard');
    await writeFile(join(dir, 'blocks', 'stray'), 'a file where a shard belongs');

    const cache = new DiskCache({}, { dir });
    await cache.open();
    expect(cache.blocks).toBe(3);
    expect(cache.bytes).toBe(4500);
    for (const b of blocks) {
      expect(cache.holds(b.ref.id)).toBe(true);
      expect(await cache.has(b.ref)).toBe(true);
    }
  });

  it('orders what it finds oldest mtime first, so the oldest blocks are evicted first', async () => {
    const dir = await cacheDir();
    const writer = new DiskCache({}, { dir });
    // Written newest-first, so creation order and mtime order disagree.
    const [newest, middle, oldest] = [rawBlock(1000), rawBlock(1000), rawBlock(1000)] as [
      TestBlock,
      TestBlock,
      TestBlock,
    ];
    for (const [b, seconds] of [
      [newest, 3_000_000],
      [middle, 2_000_000],
      [oldest, 1_000_000],
    ] as const) {
      await writer.put(b.ref, b.stored);
      await utimes(fileOf(dir, b), seconds, seconds);
    }

    // 3000 bytes against a 2500 cap: eviction runs down to 0.8 × 2500 = 2000, one block.
    const cache = new DiskCache({}, { dir, maxBytes: 2500 });
    await cache.open();
    expect(cache.holds(oldest.ref.id)).toBe(false);
    expect(existsSync(fileOf(dir, oldest))).toBe(false);
    expect(cache.holds(middle.ref.id)).toBe(true);
    expect(cache.holds(newest.ref.id)).toBe(true);
    expect(cache.bytes).toBe(2000);

    // The next eviction takes the next oldest.
    const extra = rawBlock(1000);
    await cache.put(extra.ref, extra.stored);
    expect(cache.holds(middle.ref.id)).toBe(false);
    expect(cache.holds(newest.ref.id)).toBe(true);
    expect(cache.holds(extra.ref.id)).toBe(true);
  });

  it('stops when its signal is aborted', async () => {
    const dir = await cacheDir();
    const b = rawBlock(100);
    await new DiskCache({}, { dir }).put(b.ref, b.stored);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(new DiskCache({}, { dir }).open(ac.signal)).rejects.toThrow('stop');
  });
});

describe('DiskCache eviction', () => {
  it('evicts least recently used blocks down to the low watermark; a get counts as a use', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir, maxBytes: 4000, lowWatermark: 0.5 });
    const b = Array.from({ length: 5 }, () => rawBlock(1000));
    for (const x of b.slice(0, 4)) await cache.put(x.ref, x.stored);
    expect(cache.bytes).toBe(4000); // at the cap, not over it: nothing evicted yet
    expect(cache.blocks).toBe(4);

    await cache.get((b[0] as TestBlock).ref); // b0 becomes the most recently used
    const last = b[4] as TestBlock;
    await cache.put(last.ref, last.stored); // 5000 > 4000: evict down to 2000

    expect(cache.bytes).toBe(2000);
    expect(b.map((x) => cache.holds(x.ref.id))).toEqual([true, false, false, false, true]);
    expect(b.map((x) => existsSync(fileOf(dir, x)))).toEqual([true, false, false, false, true]);
    expect(await bytesOnDisk(dir)).toBe(2000);
  });

  it('keeps bytes at or under the cap after every put, and the count matches the disk', async () => {
    const dir = await cacheDir();
    const max = 10_000;
    const cache = new DiskCache({}, { dir, maxBytes: max });
    for (let i = 0; i < 30; i++) {
      const x = rawBlock(700 + ((i * 377) % 900));
      await cache.put(x.ref, x.stored);
      expect(cache.bytes).toBeLessThanOrEqual(max);
      expect(cache.holds(x.ref.id)).toBe(true); // the block just put is the newest: never its own victim
    }
    expect(await bytesOnDisk(dir)).toBe(cache.bytes);
    expect(cache.bytes).toBeGreaterThan(max * 0.5);
  });

  it('without maxBytes grows without bound', async () => {
    const cache = new DiskCache({}, { dir: await cacheDir() });
    for (let i = 0; i < 10; i++) {
      const x = rawBlock(1000);
      await cache.put(x.ref, x.stored);
    }
    expect(cache.blocks).toBe(10);
    expect(cache.bytes).toBe(10_000);
  });

  it('never evicts a block while a get of it is in flight', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir, maxBytes: 4000, lowWatermark: 0.5 });
    const pinned = rawBlock(1000);
    await cache.put(pinned.ref, pinned.stored); // the oldest: eviction's first choice
    // Swap its file for a FIFO, so the read stays in flight until the test writes the bytes.
    // The test holds the FIFO open read-write, so the reader's open does not block and,
    // should eviction unlink the path, the test can still finish the read instead of hanging.
    const path = fileOf(dir, pinned);
    await unlink(path);
    execFileSync('mkfifo', [path]);
    const fifo = await open(path, constants.O_RDWR);
    try {
      const reading = cache.get(pinned.ref);
      for (let i = 0; i < 4; i++) {
        const x = rawBlock(1000);
        await cache.put(x.ref, x.stored); // 5000 bytes: evicts down to 2000, but not the pinned block
      }
      expect(cache.holds(pinned.ref.id)).toBe(true);
      expect(existsSync(path)).toBe(true);
      expect(cache.bytes).toBeLessThanOrEqual(2000);
      await fifo.write(pinned.stored);
      await fifo.close();
      expect(Buffer.from(await reading).equals(Buffer.from(pinned.stored))).toBe(true);
    } finally {
      await fifo.close().catch(() => {});
    }
  });
});

describe('DiskCache errors', () => {
  it('a block deleted behind its back is BlockNotFoundError and is forgotten', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await cache.put(b.ref, b.stored);
    await unlink(fileOf(dir, b));
    await expect(cache.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(cache.holds(b.ref.id)).toBe(false);
    expect(cache.bytes).toBe(0);
  });

  it('a block it cannot read is MirrorUnavailableError', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await mkdir(fileOf(dir, b), { recursive: true }); // a directory where the file belongs: EISDIR
    const e = await cache.get(b.ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as MirrorUnavailableError).source).toBe(`disk(${dir})`);
  });

  it('a put it cannot store is logged as one fault and does not throw', async () => {
    const parent = await cacheDir();
    const dir = join(parent, 'file');
    await writeFile(dir, 'a file where the cache directory belongs');
    const logger = new MemoryLogger();
    const cache = new DiskCache({ logger }, { dir });
    const b = rawBlock(1000);
    await expect(cache.put(b.ref, b.stored)).resolves.toBeUndefined();
    expect(cache.holds(b.ref.id)).toBe(false);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatch(new RegExp(`^FAULT cache ${dir}: cannot store block ${b.ref.id}`));
  });

  it.skipIf(process.getuid?.() !== 0)(
    'a full disk: put never throws, logs one fault line, and caches nothing partial',
    async () => {
      const mnt = await cacheDir();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
      try {
        const dir = join(mnt, 'cache');
        const logger = new MemoryLogger();
        const cache = new DiskCache({ logger }, { dir });
        const blocks = Array.from({ length: 8 }, () => rawBlock(16 * 1024)); // 128 KiB into 64 KiB
        for (const b of blocks) await expect(cache.put(b.ref, b.stored)).resolves.toBeUndefined();
        const held = blocks.filter((b) => cache.holds(b.ref.id));
        expect(held.length).toBeGreaterThan(0);
        expect(held.length).toBeLessThan(blocks.length);
        expect(cache.bytes).toBe(held.length * 16 * 1024);
        expect(logger.lines).toEqual([`FAULT cache ${dir} is full: serving blocks without caching them`]);
        for (const b of held) expect(Buffer.from(await cache.get(b.ref)).equals(Buffer.from(b.stored))).toBe(true);
        for (const b of blocks.filter((x) => !cache.holds(x.ref.id))) {
          await expect(cache.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
        }
        // No temp file is left behind by the failed writes.
        expect(await bytesOnDisk(dir)).toBe(cache.bytes);
      } finally {
        execFileSync('umount', [mnt]);
      }
    },
  );
});

describe('DiskCache.delete', () => {
  it('removes the file and forgets the block; deleting an absent block is a no-op', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const [a, b] = [rawBlock(1000), rawBlock(500)] as [TestBlock, TestBlock];
    await cache.put(a.ref, a.stored);
    await cache.put(b.ref, b.stored);
    await cache.delete(a.ref.id);
    expect(existsSync(fileOf(dir, a))).toBe(false);
    expect(cache.holds(a.ref.id)).toBe(false);
    expect(await cache.has(a.ref)).toBe(false);
    expect(cache.bytes).toBe(500);
    expect(cache.blocks).toBe(1);
    await expect(cache.get(a.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    await cache.delete(a.ref.id);
    expect(cache.bytes).toBe(500);
    // A deleted block can be cached again.
    await cache.put(a.ref, a.stored);
    expect(cache.holds(a.ref.id)).toBe(true);
    expect(cache.bytes).toBe(1500);
  });

  it('toString names the directory', () => {
    expect(String(new DiskCache({}, { dir: '/var/tmp/blocks' }))).toBe('disk(/var/tmp/blocks)');
  });
});
