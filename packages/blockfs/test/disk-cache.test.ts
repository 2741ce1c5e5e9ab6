import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockNotFoundError, blockPath, MirrorUnavailableError, StoreFullError } from '@thfc/format';
import { blockSourceContract } from '@thfc/format/testing';
import { storeFiles } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskCache } from '../src/io/disk-cache.js';
import { identityOf, sameVersion } from '../src/io/file-identity.js';
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
  { files: (cache) => storeFiles(cache.dir) },
);

/** Every file under DIR/blocks (blocks and temp files), with sizes. */
async function filesOnDisk(dir: string): Promise<{ name: string; size: number }[]> {
  const out: { name: string; size: number }[] = [];
  const root = join(dir, 'blocks');
  for (const shard of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, shard))) {
      out.push({ name, size: (await stat(join(root, shard, name))).size });
    }
  }
  return out;
}

async function bytesOnDisk(dir: string): Promise<number> {
  return (await filesOnDisk(dir)).reduce((n, f) => n + f.size, 0);
}

const fileOf = (dir: string, b: TestBlock) => join(dir, blockPath(b.ref.id));
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

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
    await writeFile(join(shard, `.tmp-${blocks[0]?.ref.id}.1.2`), 'partial');
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
      expect(cache.holds(b.ref.id, b.ref.storedSize)).toBe(true);
      expect(cache.holds(b.ref.id, b.ref.storedSize + 1)).toBe(false); // an entry of another length does not count
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

describe('DiskCache positional reads', () => {
  it('an entry reads any slice of the file into the caller’s buffer at the caller’s offset', async () => {
    const cache = new DiskCache({}, { dir: await cacheDir() });
    const b = rawBlock(8192);
    await cache.put(b.ref, b.stored);
    const entry = await cache.entry(b.ref);
    try {
      const dst = new Uint8Array(5000).fill(0xaa);
      await entry.read(dst, 100, 3000, 4000);
      expect(same(dst.subarray(100, 4100), b.stored.subarray(3000, 7000))).toBe(true);
      expect(dst.subarray(0, 100).every((x) => x === 0xaa)).toBe(true);
      expect(dst.subarray(4100).every((x) => x === 0xaa)).toBe(true);
      expect(entry.file.size).toBe(8192);
      await expect(entry.read(dst, 0, 8000, 1000)).rejects.toBeInstanceOf(MirrorUnavailableError); // past the end: short
    } finally {
      entry.release();
    }
  });

  it('openEntry answers without waiting: the open file, or the file opened now in place', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await cache.put(b.ref, b.stored);
    const opened = cache.openEntry(b.ref); // not open yet: opened in place
    expect(opened?.file.size).toBe(1000);
    expect(opened?.file.identity).toBe(identityOf(statSync(fileOf(dir, b), { bigint: true })));
    opened?.release();
    const again = cache.openEntry(b.ref);
    expect(again?.file.fd).toBe(opened?.file.fd); // the same descriptor, kept open
    again?.release();
    await unlink(fileOf(dir, b));
    cache.reopen(b.ref.id);
    expect(cache.openEntry(b.ref)).toBeUndefined(); // gone: entry() says so
    await expect(cache.entry(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
  });

  it('an entry’s readNow copies a slice at the caller’s offset now; a short read is false', async () => {
    const cache = new DiskCache({}, { dir: await cacheDir() });
    const b = rawBlock(8192);
    await cache.put(b.ref, b.stored);
    const entry = await cache.entry(b.ref);
    try {
      const dst = new Uint8Array(5000).fill(0xaa);
      expect(entry.readNow(dst, 100, 3000, 4000)).toBe(true);
      expect(same(dst.subarray(100, 4100), b.stored.subarray(3000, 7000))).toBe(true);
      expect(dst.subarray(0, 100).every((x) => x === 0xaa)).toBe(true);
      expect(dst.subarray(4100).every((x) => x === 0xaa)).toBe(true);
      expect(entry.readNow(dst, 0, 8000, 1000)).toBe(false); // past the end: short, so read() decides
    } finally {
      entry.release();
    }
  });

  it('a file of the wrong length (an entry of another format) is a miss and is deleted', async () => {
    const dir = await cacheDir();
    const b = rawBlock(4096);
    const writer = new DiskCache({}, { dir });
    await writer.put({ ...b.ref, storedSize: 1000 }, b.stored.subarray(0, 1000)); // e.g. the compressed form
    const cache = new DiskCache({}, { dir });
    await cache.open();
    expect(cache.holds(b.ref.id)).toBe(true);
    expect(cache.holds(b.ref.id, 4096)).toBe(false);
    await expect(cache.entry(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(dir, b))).toBe(false);
    expect(cache.holds(b.ref.id)).toBe(false);
    expect(cache.bytes).toBe(0);
    // Now it can be cached in the right form.
    await cache.put(b.ref, b.stored);
    expect(same(await cache.get(b.ref), b.stored)).toBe(true);
  });

  it('a file swapped for one of the wrong length behind an idle descriptor is caught when reopened', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir, openFiles: 0 }); // nothing stays open
    const b = rawBlock(4096);
    await cache.put(b.ref, b.stored);
    (await cache.entry(b.ref)).release();
    await writeFile(fileOf(dir, b), b.stored.subarray(0, 100));
    await expect(cache.entry(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    expect(existsSync(fileOf(dir, b))).toBe(false);
  });

  it('delete() retires the open descriptor: a block written again is read from its new file', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    const other = rawBlock(1000); // same length, other bytes: only what is read tells the files apart
    await cache.put(b.ref, other.stored);
    (await cache.entry(b.ref)).release(); // its descriptor stays open, idle
    await cache.delete(b.ref.id);
    await cache.put(b.ref, b.stored);
    expect(same(await cache.get(b.ref), b.stored)).toBe(true);
  });
});

describe('DiskCache identities', () => {
  it('keeps the identity of each file it wrote until it is taken; a held block is not written, and has none', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await cache.put(b.ref, b.stored);
    const st = statSync(fileOf(dir, b), { bigint: true });
    const identity = identityOf(st);
    expect(cache.writtenIdentity(b.ref.id)).toBe(identity);
    expect(cache.takeWritten(b.ref.id)).toBe(identity);
    expect(cache.writtenIdentity(b.ref.id)).toBeUndefined();
    await cache.put(b.ref, b.stored); // held: not written again
    expect(cache.takeWritten(b.ref.id)).toBeUndefined();
    const c = rawBlock(1000);
    await cache.put(c.ref, c.stored);
    await cache.delete(c.ref.id);
    expect(cache.writtenIdentity(c.ref.id)).toBeUndefined(); // the file it named is gone
  });

  it('an entry’s stat shows the open file now; reopen() makes the next entry open the name afresh', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await cache.put(b.ref, b.stored);
    const first = await cache.entry(b.ref);
    expect(sameVersion(await first.stat(), first.file.stats)).toBe(true);
    expect(first.statNow()?.ino).toBe(first.file.stats.ino);
    const swap = join(dir, 'swap');
    await writeFile(swap, b.stored);
    await rename(swap, fileOf(dir, b)); // another inode under the name; the old one loses its link
    expect(sameVersion(await first.stat(), first.file.stats)).toBe(false);
    first.release();
    const again = cache.openEntry(b.ref);
    expect(again?.file.identity).toBe(first.file.identity); // still the old descriptor
    again?.release();
    cache.reopen(b.ref.id);
    const second = cache.openEntry(b.ref); // the name opened afresh, in place
    expect(second?.file.identity).toBe(identityOf(statSync(fileOf(dir, b), { bigint: true })));
    expect(second?.file.identity).not.toBe(first.file.identity);
    second?.release();
  });
});

describe('DiskCache writes', () => {
  it('writes through a temp file named by pid and counter, and leaves only the block', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const blocks = Array.from({ length: 5 }, () => rawBlock(1000));
    await Promise.all(blocks.map((b) => cache.put(b.ref, b.stored)));
    const files = await filesOnDisk(dir);
    expect(files.map((f) => f.name).sort()).toEqual(blocks.map((b) => b.ref.id).sort());
    for (const b of blocks) expect(same(await cache.get(b.ref), b.stored)).toBe(true);
  });

  it('put is a no-op for a block it holds; a block deleted behind its back is written again', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await cache.put(b.ref, b.stored);
    const { ino } = await stat(fileOf(dir, b));
    await cache.put(b.ref, b.stored);
    expect((await stat(fileOf(dir, b))).ino).toBe(ino);
    await unlink(fileOf(dir, b));
    await expect(cache.get(b.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    await cache.put(b.ref, b.stored);
    expect(same(await cache.get(b.ref), b.stored)).toBe(true);
  });

  it('a put it cannot store rejects with the reason, leaving no temp file', async () => {
    const parent = await cacheDir();
    const dir = join(parent, 'file');
    await writeFile(dir, 'a file where the cache directory belongs');
    const cache = new DiskCache({}, { dir });
    const b = rawBlock(1000);
    await expect(cache.put(b.ref, b.stored)).rejects.toThrow(/not a directory|ENOTDIR|EEXIST/);
    expect(cache.holds(b.ref.id)).toBe(false);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'a full disk rejects with StoreFullError and leaves nothing partial',
    async () => {
      const mnt = await cacheDir();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
      try {
        const dir = join(mnt, 'cache');
        const cache = new DiskCache({}, { dir });
        const blocks = Array.from({ length: 8 }, () => rawBlock(16 * 1024)); // 128 KiB into 64 KiB
        const results = [];
        for (const b of blocks)
          results.push(
            await cache.put(b.ref, b.stored).then(
              () => 'ok',
              (e: unknown) => e,
            ),
          );
        expect(results.filter((r) => r === 'ok').length).toBeGreaterThan(0);
        const failures = results.filter((r) => r !== 'ok');
        expect(failures.length).toBeGreaterThan(0);
        for (const f of failures) expect(f).toBeInstanceOf(StoreFullError);
        const held = blocks.filter((b) => cache.holds(b.ref.id));
        expect(cache.bytes).toBe(held.length * 16 * 1024);
        expect(await bytesOnDisk(dir)).toBe(cache.bytes); // no temp file left behind
      } finally {
        execFileSync('umount', [mnt]);
      }
    },
  );
});

describe('DiskCache eviction', () => {
  it('evicts least recently used blocks down to the low watermark; a read counts as a use', async () => {
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

  it('never evicts a block while an entry of it is held, and its reads keep working', async () => {
    const dir = await cacheDir();
    const cache = new DiskCache({}, { dir, maxBytes: 4000, lowWatermark: 0.5 });
    const pinned = rawBlock(1000);
    await cache.put(pinned.ref, pinned.stored); // the oldest: eviction's first choice
    const entry = await cache.entry(pinned.ref);
    try {
      for (let i = 0; i < 4; i++) {
        const x = rawBlock(1000);
        await cache.put(x.ref, x.stored); // 5000 bytes: evicts down to 2000, but not the pinned block
      }
      expect(cache.holds(pinned.ref.id)).toBe(true);
      expect(existsSync(fileOf(dir, pinned))).toBe(true);
      expect(cache.bytes).toBeLessThanOrEqual(2000);
      const dst = new Uint8Array(1000);
      await entry.read(dst, 0, 0, 1000);
      expect(same(dst, pinned.stored)).toBe(true);
    } finally {
      entry.release();
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
    await mkdir(fileOf(dir, b), { recursive: true }); // a directory where the file belongs
    const e = await cache.get(b.ref).catch((e: unknown) => e);
    expect(e).toBeInstanceOf(MirrorUnavailableError);
    expect((e as MirrorUnavailableError).source).toBe(`disk(${dir})`);
  });
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
