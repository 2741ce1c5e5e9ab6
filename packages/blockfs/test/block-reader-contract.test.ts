import { DirStore, Failover, InlineDecoder, MemoryLogger, MirrorStats, VerifiedSource } from '@thfc/store';
import { afterEach } from 'vitest';
import { SourceBuilder } from '../src/build-source.js';
import { BlockWorkers } from '../src/io/block-workers.js';
import { DiskCache } from '../src/io/disk-cache.js';
import { InlineVerifier } from '../src/io/file-verifier.js';
import { WriteBehind } from '../src/io/write-behind.js';
import type { BlockReader } from '../src/sources/block-reader.js';
import { CachedReader } from '../src/sources/cached-reader.js';
import { CheckedReader, rawRef } from '../src/sources/checked-reader.js';
import { HotBlocks, type HotParts } from '../src/sources/hot-blocks.js';
import { MemoryReader } from '../src/sources/memory-reader.js';
import { NoCacheReader } from '../src/sources/no-cache-reader.js';
import { blockReaderContract, type ContractReader } from './block-reader-contract.js';
import { type TestBlock, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-reader-contract-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/**
 * The pieces SourceBuilder joins (build-source.ts), built by hand so each
 * layer can be tested on its own: a checked disk cache written behind, and a
 * failover over a verified local directory mirror holding `blocks`. With
 * `disk`, the disk starts with them instead (decoded, under raw refs); with
 * `nocache`, cached() keeps nothing locally (--nocache), so the memory cache
 * above keeps what is fetched.
 */
async function pieces(blocks: readonly TestBlock[], where: 'mirror' | 'disk', nocache = false) {
  const logger = new MemoryLogger();
  const decoder = new InlineDecoder();
  const disk = new DiskCache({}, { dir: await dir() });
  await disk.open();
  cleanups.push(() => disk.close());
  const mirror = new DirStore(await dir());
  for (const b of blocks) {
    if (where === 'disk') await disk.put(rawRef(b.ref), b.data);
    else await mirror.put(b.ref, b.stored);
  }
  const writer = new WriteBehind({ sink: disk, logger });
  const checked = new CheckedReader({ disk, writer, verifier: new InlineVerifier(), logger });
  const remote = new Failover(
    {
      mirrors: [{ source: new VerifiedSource({ source: mirror, decoder }), stats: new MirrorStats(mirror.root) }],
      logger,
    },
    { retries: 1 },
  );
  const counters = { hits: 0, fetched: 0, bytesFetched: 0 };
  const cached = new CachedReader({ local: nocache ? new NoCacheReader() : checked, remote, counters });
  const settle = () => writer.idle();
  return { checked, cached, settle };
}

/** The reader, with the hot index over the parts of its tree given. */
const served = (reader: BlockReader, settle?: () => Promise<void>, hot?: HotParts): ContractReader => ({
  reader,
  settle,
  hot: hot && new HotBlocks(hot),
});

blockReaderContract('MemoryReader (the mount tree)', async (blocks) => {
  const { checked, cached, settle } = await pieces(blocks, 'mirror');
  const memory = new MemoryReader({ inner: cached });
  return served(memory, settle, { memory, cached, checked });
});

blockReaderContract('MemoryReader (the --nocache tree)', async (blocks) => {
  const { cached, settle } = await pieces(blocks, 'mirror', true);
  const memory = new MemoryReader({ inner: cached });
  return served(memory, settle, { memory, cached });
});

blockReaderContract('CachedReader (--nocache)', async (blocks) => {
  const { cached, settle } = await pieces(blocks, 'mirror', true);
  return served(cached, settle, { cached });
});

blockReaderContract('CachedReader', async (blocks) => {
  const { checked, cached, settle } = await pieces(blocks, 'mirror');
  return served(cached, settle, { cached, checked });
});

blockReaderContract('CachedReader with the blocks on disk', async (blocks) => {
  const { checked, cached, settle } = await pieces(blocks, 'disk');
  return served(cached, settle, { cached, checked });
});

blockReaderContract('CheckedReader', async (blocks) => {
  const { checked, settle } = await pieces(blocks, 'disk');
  return served(checked, settle, { checked });
});

/** The tree exactly as a mount builds it: SourceBuilder over one helper thread that decodes and checks (pooled buffers). */
async function mountTree(blocks: readonly TestBlock[], nocache: boolean): Promise<ContractReader> {
  const mirror = new DirStore(await dir());
  for (const b of blocks) await mirror.put(b.ref, b.stored);
  const disk = new DiskCache({}, { dir: await dir() });
  await disk.open();
  const workers = new BlockWorkers({ threads: 1 });
  const builder = new SourceBuilder({ disk, logger: new MemoryLogger(), workers }, { nocache, retries: 1 });
  cleanups.push(() => builder.close());
  const built = builder.build([mirror.root]);
  return { reader: built, hot: built };
}

blockReaderContract('SourceBuilder tree with block workers', (blocks) => mountTree(blocks, false));

blockReaderContract('SourceBuilder tree with block workers, --nocache', (blocks) => mountTree(blocks, true));

blockReaderContract('NoCacheReader', async () => served(new NoCacheReader()), { holdsNothing: true });
