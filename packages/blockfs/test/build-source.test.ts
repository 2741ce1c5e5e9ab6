import { join } from 'node:path';
import { type BlockRef, MirrorUnavailableError } from '@thfc/format';
import { type BlockDecoder, type Decoded, DirStore, InlineDecoder, MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { type BlockCheckers, SourceBuilder, type SourceOptions } from '../src/build-source.js';
import type { CacheCounters } from '../src/sources/cached.js';
import { rawRef } from '../src/sources/checked.js';
import { DiskCache } from '../src/sources/disk-cache.js';
import { InlineVerifier } from '../src/sources/file-verifier.js';
import { corrupted, makeBlock, readWhole, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-build-source-');
  cleanups.push(t.cleanup);
  return t.dir;
}

const counters = (): CacheCounters => ({ hits: 0, fetched: 0, bytesFetched: 0 });

async function builder(options: SourceOptions, withDisk = true) {
  const cacheDir = await dir();
  const disk = withDisk ? new DiskCache({}, { dir: cacheDir }) : undefined;
  const logger = new MemoryLogger();
  const b = new SourceBuilder({ disk, logger }, options);
  cleanups.push(() => b.close());
  return { b, disk, cacheDir, logger };
}

const A = 'http://a.example/imgs/';
const B = 'https://b.example:8443/imgs/';
const HTTP_A = 'verified(http(http://a.example/imgs))';
const HTTP_B = 'verified(http(https://b.example:8443/imgs))';

describe('SourceBuilder topology (toString)', () => {
  it('default: memory over a read-through, checked disk cache written behind, over failover of verified mirrors', async () => {
    const { b, cacheDir } = await builder({});
    expect(String(b.build([A], counters()).blocks)).toBe(
      `memory(32M, cached(checked-once(behind(disk(${cacheDir}))), failover(${HTTP_A})))`,
    );
  });

  it('several mirrors, in the order given', async () => {
    const { b, cacheDir } = await builder({});
    expect(String(b.build([B, A], counters()).blocks)).toBe(
      `memory(32M, cached(checked-once(behind(disk(${cacheDir}))), failover(${HTTP_B}, ${HTTP_A})))`,
    );
  });

  it('--nocache: no disk in the tree, even when one is passed', async () => {
    for (const withDisk of [true, false]) {
      const { b } = await builder({ nocache: true }, withDisk);
      expect(String(b.build([A], counters()).blocks)).toBe(`memory(32M, cached(none, failover(${HTTP_A})))`);
    }
  });

  it('--offline: the remote is offline, no mirror is created', async () => {
    const { b, cacheDir } = await builder({ offline: true });
    const built = b.build([A, B], counters());
    expect(String(built.blocks)).toBe(`memory(32M, cached(checked-once(behind(disk(${cacheDir}))), offline))`);
    expect(built.failover).toBeUndefined();
  });

  it('--paranoid: the disk cache is checked on every use', async () => {
    const { b, cacheDir } = await builder({ paranoid: true, memoryBytes: 8 * 1024 * 1024 });
    expect(String(b.build([A], counters()).blocks)).toBe(
      `memory(8M, cached(checked-always(behind(disk(${cacheDir}))), failover(${HTTP_A})))`,
    );
  });

  it('a local directory mirror is a verified dir store', async () => {
    const store = await dir();
    const { b, cacheDir } = await builder({});
    expect(String(b.build([store, A], counters()).blocks)).toBe(
      `memory(32M, cached(checked-once(behind(disk(${cacheDir}))), failover(verified(dir(${store})), ${HTTP_A})))`,
    );
  });
});

describe('SourceBuilder trees at work (local directory mirror)', () => {
  async function mirrorWith(blocks: { ref: BlockRef; stored: Uint8Array }[]) {
    const root = await dir();
    const store = new DirStore(root);
    for (const b of blocks) await store.put(b.ref, b.stored);
    return root;
  }

  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

  /** Inline decoding and file checks, counting each decode and each close. */
  class CountingCheckers extends InlineVerifier implements BlockCheckers {
    private readonly inline: BlockDecoder = new InlineDecoder();
    decodes = 0;
    closes = 0;
    decode(ref: BlockRef, stored: Uint8Array, source: string): Promise<Decoded> {
      this.decodes++;
      return this.inline.decode(ref, stored, source);
    }
    override async close(): Promise<void> {
      this.closes++;
    }
  }

  it('each fetched block is decoded once, and the one object that decodes and checks is closed once', async () => {
    const blks = [makeBlock(11), makeBlock(12), makeBlock(13)];
    const store = await mirrorWith(blks);
    for (const nocache of [false, true]) {
      const workers = new CountingCheckers();
      const b = new SourceBuilder(
        { disk: new DiskCache({}, { dir: await dir() }), logger: new MemoryLogger(), workers },
        { nocache, retries: 1 },
      );
      const built = b.build([store], counters());
      for (const blk of blks) expect(same(await readWhole(built.blocks, blk.ref), blk.data)).toBe(true);
      for (const blk of blks) await readWhole(built.blocks, blk.ref);
      await b.close();
      expect({ nocache, decodes: workers.decodes, closes: workers.closes }).toEqual({ nocache, decodes: 3, closes: 1 });
    }
  });

  it('a block is fetched once, lands decoded in the disk cache, and is served meanwhile from its write’s buffer', async () => {
    const blk = makeBlock(1);
    const store = await mirrorWith([blk]);
    const { b, disk } = await builder({ retries: 1 });
    const c = counters();
    const stored: string[] = [];
    c.onStored = (id) => stored.push(id);
    const built = b.build([store], c);
    expect(same(await readWhole(built.blocks, blk.ref), blk.data)).toBe(true);
    expect(same(await readWhole(built.blocks, blk.ref), blk.data)).toBe(true);
    expect(built.memory.hits).toBe(0); // one copy in RAM: the write-behind's, until it is on disk
    await b.close(); // lets the write behind land
    expect(disk?.holds(blk.ref.id, blk.ref.size)).toBe(true);
    expect(same(await (disk as DiskCache).get(rawRef(blk.ref)), blk.data)).toBe(true);
    expect(stored).toEqual([blk.ref.id]);
    expect(c).toMatchObject({ fetched: 1, hits: 1, bytesFetched: blk.stored.length });
    expect(built.failover?.mirrorSnapshots()).toMatchObject([{ url: store, requests: 1, errors: 0 }]);
  });

  it('a second image on the same mount reuses the disk cache and the mirror’s record', async () => {
    const blk = makeBlock(2);
    const store = await mirrorWith([blk]);
    const { b } = await builder({ retries: 1 });
    const first = b.build([store], counters());
    await readWhole(first.blocks, blk.ref);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the write behind lands
    const c2 = counters();
    const second = b.build([store], c2);
    await readWhole(second.blocks, blk.ref);
    expect(c2).toMatchObject({ hits: 1, fetched: 0 });
    expect(second.failover?.mirrorSnapshots()).toMatchObject([{ url: store, requests: 1 }]);
  });

  it('--nocache writes nothing to the disk and serves from RAM', async () => {
    const blk = makeBlock(3);
    const store = await mirrorWith([blk]);
    const { b, disk } = await builder({ nocache: true, retries: 1 });
    const built = b.build([store], counters());
    await readWhole(built.blocks, blk.ref);
    await readWhole(built.blocks, blk.ref);
    await b.close();
    expect(disk?.blocks).toBe(0);
    expect(built.memory.hits).toBe(1);
  });

  it('--offline serves what the disk holds and gives EIO for the rest', async () => {
    const [held, missing] = [makeBlock(4), makeBlock(5)];
    const { b, disk } = await builder({ offline: true });
    await disk?.put(rawRef(held.ref), held.data);
    const built = b.build(['/nonexistent'], counters());
    expect(same(await readWhole(built.blocks, held.ref), held.data)).toBe(true);
    await expect(readWhole(built.blocks, missing.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });

  it('a mirror serving bad bytes fails the read and poisons neither cache', async () => {
    const blk = makeBlock(6);
    const store = await mirrorWith([{ ref: blk.ref, stored: corrupted(blk.stored) }]);
    const { b, disk } = await builder({ retries: 1 });
    const built = b.build([store], counters());
    await expect(readWhole(built.blocks, blk.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
    await b.close();
    expect(disk?.holds(blk.ref.id)).toBe(false);
    expect(built.memory.holds(blk.ref.id)).toBe(false);
    expect(built.failover?.mirrorSnapshots()).toMatchObject([{ url: store, errors: 1 }]);
  });

  it('a corrupt disk cache entry is dropped and fetched again from the mirror', async () => {
    const blk = makeBlock(7);
    const store = await mirrorWith([blk]);
    const { b, disk, logger } = await builder({ retries: 1 });
    await disk?.put(rawRef(blk.ref), corrupted(blk.data));
    const c = counters();
    const built = b.build([store], c);
    expect(same(await readWhole(built.blocks, blk.ref), blk.data)).toBe(true);
    expect(c).toMatchObject({ fetched: 1, hits: 0 });
    expect(logger.lines.filter((l) => l.startsWith('FAULT'))).toHaveLength(1);
    await b.close();
    expect(same(await (disk as DiskCache).get(rawRef(blk.ref)), blk.data)).toBe(true);
  });

  it('an entry an older version cached compressed is replaced by the decoded block', async () => {
    const blk = makeBlock(8);
    const store = await mirrorWith([blk]);
    const { b, disk, logger } = await builder({ retries: 1 });
    await disk?.put(blk.ref, blk.stored); // the compressed form, as the old cache held it
    const c = counters();
    const built = b.build([store], c);
    expect(same(await readWhole(built.blocks, blk.ref), blk.data)).toBe(true);
    expect(c).toMatchObject({ fetched: 1, hits: 0 });
    expect(logger.lines.filter((l) => l.startsWith('FAULT'))).toEqual([]);
    await b.close();
    expect(disk?.holds(blk.ref.id, blk.ref.size)).toBe(true);
  });

  it('close() is safe with no HTTP mirror, and after building HTTP ones', async () => {
    const { b } = await builder({});
    b.build([join(await dir(), 'store'), A, B], counters());
    await expect(b.close()).resolves.toBeUndefined();
  });
});
