import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockNotFoundError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import { type BlockDecoder, type Decoded, DirStore, InlineDecoder, MemoryLogger } from '@thfc/store';
import { afterEach, describe, expect, it } from 'vitest';
import { type BlockCheckers, type ReadPathOptions, SourceBuilder } from '../src/build-source.js';
import { DAEMONS_DIR, SEAL_FILE, SEAL_LOCK } from '../src/cache/cache-sealer.js';
import { formatProcess, thisProcess } from '../src/cache/process-identity.js';
import { BlockWorkers } from '../src/io/block-workers.js';
import { DiskCache } from '../src/io/disk-cache.js';
import { InlineVerifier } from '../src/io/file-verifier.js';
import { rawRef } from '../src/sources/checked-reader.js';
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

async function builder(options: ReadPathOptions, withDisk = true) {
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
    expect(String(b.build([A]))).toBe(
      `memory(32M, cached(checked-once(behind(disk(${cacheDir}))), failover(${HTTP_A})))`,
    );
  });

  it('several mirrors, in the order given', async () => {
    const { b, cacheDir } = await builder({});
    expect(String(b.build([B, A]))).toBe(
      `memory(32M, cached(checked-once(behind(disk(${cacheDir}))), failover(${HTTP_B}, ${HTTP_A})))`,
    );
  });

  it('--nocache: no disk in the tree, even when one is passed', async () => {
    for (const withDisk of [true, false]) {
      const { b } = await builder({ nocache: true }, withDisk);
      expect(String(b.build([A]))).toBe(`memory(32M, cached(none, failover(${HTTP_A})))`);
    }
  });

  it('--offline: the remote is offline, no mirror is created', async () => {
    const { b, cacheDir } = await builder({ offline: true });
    const built = b.build([A, B]);
    expect(String(built)).toBe(`memory(32M, cached(checked-once(behind(disk(${cacheDir}))), offline))`);
    expect(built.stats().mirrors).toEqual([]);
  });

  it('--paranoid: the disk cache is checked on every use', async () => {
    const { b, cacheDir } = await builder({ paranoid: true, memoryBytes: 8 * 1024 * 1024 });
    expect(String(b.build([A]))).toBe(
      `memory(8M, cached(checked-always(behind(disk(${cacheDir}))), failover(${HTTP_A})))`,
    );
  });

  it('a local directory mirror is a verified dir store', async () => {
    const store = await dir();
    const { b, cacheDir } = await builder({});
    expect(String(b.build([store, A]))).toBe(
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
      const built = b.build([store]);
      for (const blk of blks) expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
      for (const blk of blks) await readWhole(built, blk.ref);
      await b.close();
      expect({ nocache, decodes: workers.decodes, closes: workers.closes }).toEqual({ nocache, decodes: 3, closes: 1 });
    }
  });

  it('a block is fetched once, lands decoded in the disk cache, and is served meanwhile from its write’s buffer', async () => {
    const blk = makeBlock(1);
    const store = await mirrorWith([blk]);
    const { b, disk } = await builder({ retries: 1 });
    const stored: string[] = [];
    const built = b.build([store], { onStored: (id) => stored.push(id) });
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(built.stats().memoryHits).toBe(0); // one copy in RAM: the write-behind's, until it is on disk
    await b.close(); // lets the write behind land
    expect(disk?.holds(blk.ref.id, blk.ref.size)).toBe(true);
    expect(same(await (disk as DiskCache).get(rawRef(blk.ref)), blk.data)).toBe(true);
    expect(stored).toEqual([blk.ref.id]);
    expect(built.stats()).toMatchObject({ blocksFetched: 1, cacheHits: 1, bytesDownloaded: blk.stored.length });
    expect(built.stats().mirrors).toMatchObject([{ url: store, requests: 1, errors: 0 }]);
  });

  it('a second image on the same mount reuses the disk cache and the mirror’s record', async () => {
    const blk = makeBlock(2);
    const store = await mirrorWith([blk]);
    const { b } = await builder({ retries: 1 });
    const first = b.build([store]);
    await readWhole(first, blk.ref);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the write behind lands
    const second = b.build([store]);
    await readWhole(second, blk.ref);
    expect(second.stats()).toMatchObject({ cacheHits: 1, blocksFetched: 0 });
    expect(second.stats().mirrors).toMatchObject([{ url: store, requests: 1 }]);
  });

  it('--nocache writes nothing to the disk and serves from RAM', async () => {
    const blk = makeBlock(3);
    const store = await mirrorWith([blk]);
    const { b, disk } = await builder({ nocache: true, retries: 1 });
    const built = b.build([store]);
    await readWhole(built, blk.ref);
    await readWhole(built, blk.ref);
    await b.close();
    expect(disk?.blocks).toBe(0);
    expect(built.stats().memoryHits).toBe(1);
  });

  it('--offline serves what the disk holds and gives EIO for the rest', async () => {
    const [held, missing] = [makeBlock(4), makeBlock(5)];
    const { b, disk } = await builder({ offline: true });
    await disk?.put(rawRef(held.ref), held.data);
    const built = b.build(['/nonexistent']);
    expect(same(await readWhole(built, held.ref), held.data)).toBe(true);
    await expect(readWhole(built, missing.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
  });

  it('a mirror serving bad bytes fails the read and poisons neither cache', async () => {
    const blk = makeBlock(6);
    const store = await mirrorWith([{ ref: blk.ref, stored: corrupted(blk.stored) }]);
    const { b, disk } = await builder({ retries: 1 });
    const built = b.build([store]);
    await expect(readWhole(built, blk.ref)).rejects.toBeInstanceOf(MirrorUnavailableError);
    await b.close();
    expect(disk?.holds(blk.ref.id)).toBe(false);
    expect(built.readNow(blk.ref, new Uint8Array(blk.ref.size), 0, 0, blk.ref.size)).toBe(false);
    expect(built.stats().mirrors).toMatchObject([{ url: store, errors: 1 }]);
  });

  it('a corrupt disk cache entry is dropped and fetched again from the mirror', async () => {
    const blk = makeBlock(7);
    const store = await mirrorWith([blk]);
    const { b, disk, logger } = await builder({ retries: 1 });
    await disk?.put(rawRef(blk.ref), corrupted(blk.data));
    const built = b.build([store]);
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(built.stats()).toMatchObject({ blocksFetched: 1, cacheHits: 0 });
    expect(logger.lines.filter((l) => l.startsWith('FAULT'))).toHaveLength(1);
    await b.close();
    expect(same(await (disk as DiskCache).get(rawRef(blk.ref)), blk.data)).toBe(true);
  });

  it('an entry an older version cached compressed is replaced by the decoded block', async () => {
    const blk = makeBlock(8);
    const store = await mirrorWith([blk]);
    const { b, disk, logger } = await builder({ retries: 1 });
    await disk?.put(blk.ref, blk.stored); // the compressed form, as the old cache held it
    const built = b.build([store]);
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(built.stats()).toMatchObject({ blocksFetched: 1, cacheHits: 0 });
    expect(logger.lines.filter((l) => l.startsWith('FAULT'))).toEqual([]);
    await b.close();
    expect(disk?.holds(blk.ref.id, blk.ref.size)).toBe(true);
  });

  it('retarget points the image at new mirrors, reusing each known mirror and its record', async () => {
    const [blk, other] = [makeBlock(9), makeBlock(10)];
    const [a, b2] = [await mirrorWith([other]), await mirrorWith([blk, other])];
    const { b } = await builder({ retries: 1 });
    const built = b.build([a]);
    await readWhole(built, other.ref);
    await expect(readWhole(built, blk.ref)).rejects.toBeInstanceOf(BlockNotFoundError);
    built.retarget([b2, a]);
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(built.stats().mirrors).toMatchObject([
      { url: b2, requests: 1 },
      { url: a, requests: 2 }, // a's record from before the retarget: a block, then a not-found
    ]);
    expect(String(built)).toContain(`failover(verified(dir(${b2})), verified(dir(${a})))`);
  });

  it('open() opens the disk cache it was given: blocks already there are hits', async () => {
    const blk = makeBlock(14);
    const store = await mirrorWith([blk]);
    const { b, disk, cacheDir } = await builder({ retries: 1 });
    await disk?.put(rawRef(blk.ref), blk.data);
    disk?.close();
    const again = new SourceBuilder({ disk: new DiskCache({}, { dir: cacheDir }), logger: new MemoryLogger() }, {});
    cleanups.push(() => again.close());
    await again.open();
    const built = again.build([store]);
    expect(same(await readWhole(built, blk.ref), blk.data)).toBe(true);
    expect(built.stats()).toMatchObject({ cacheHits: 1, blocksFetched: 0 });
    await b.close();
  });

  it('readTimeoutMs: every attempt of every round timing out, one more, and 5 s of slack', async () => {
    expect((await builder({ timeoutMs: 1_000, retries: 2 })).b.readTimeoutMs(3)).toBe(1_000 * (2 * 3 + 1) + 5_000);
    // Defaults: 10 s attempts; one mirror gets three rounds (MIN_ATTEMPTS), two get two.
    const { b } = await builder({});
    expect(b.readTimeoutMs(1)).toBe(10_000 * (3 + 1) + 5_000);
    expect(b.readTimeoutMs(2)).toBe(10_000 * (2 * 2 + 1) + 5_000);
    expect(b.readTimeoutMs(0)).toBe(b.readTimeoutMs(1));
  });

  it('close() is safe with no HTTP mirror, and after building HTTP ones', async () => {
    const { b } = await builder({});
    b.build([join(await dir(), 'store'), A, B]);
    await expect(b.close()).resolves.toBeUndefined();
  });

  it('a failed open() releases what the builder owns and leaves the cache as the live daemon left it', async () => {
    const blk = makeBlock(15);
    const { b: first, disk, cacheDir } = await builder({});
    await disk?.put(rawRef(blk.ref), blk.data);
    await first.close(); // a seal to keep
    const live = new SourceBuilder({ disk: new DiskCache({}, { dir: cacheDir }), logger: new MemoryLogger() }, {});
    await live.open();
    const lock = join(cacheDir, SEAL_LOCK);
    await writeFile(lock, `${formatProcess(thisProcess())}\n`); // the live daemon is sealing: a live holder
    const before = {
      seal: await readFile(join(cacheDir, SEAL_FILE)),
      lock: await readFile(lock),
      daemons: await readdir(join(cacheDir, DAEMONS_DIR)),
    };
    expect(before.daemons).toHaveLength(1);
    // The second daemon's workers already run a thread (a job before open: what the builder owns is closed all the same).
    const workers = new BlockWorkers();
    const file = join(await dir(), 'f');
    await writeFile(file, blk.data);
    const fh = await open(file);
    await workers.verify(fh.fd, blk.data.length, blk.ref.id);
    await fh.close();
    expect(workers.running).toBe(1);
    const second = new SourceBuilder(
      { disk: new DiskCache({}, { dir: cacheDir }), workers, logger: new MemoryLogger() },
      {},
    );
    await expect(second.open(AbortSignal.timeout(100))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(workers.running).toBe(0);
    await expect(workers.verify(0, 1, blk.ref.id)).rejects.toThrow(/closed/);
    expect(await readFile(join(cacheDir, SEAL_FILE))).toEqual(before.seal);
    expect(await readFile(lock)).toEqual(before.lock);
    expect(await readdir(join(cacheDir, DAEMONS_DIR))).toEqual(before.daemons);
    await writeFile(lock, ''); // a lock naming no one is broken: the live daemon seals as usual
    await live.close();
    expect(await readdir(join(cacheDir, DAEMONS_DIR))).toEqual([]);
  });
});
