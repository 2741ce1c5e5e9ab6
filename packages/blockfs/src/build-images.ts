import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MeasurementLog } from '@thfc/attest/measurement-log';
import { type BlockRef, type ImageIndex, UsageError } from '@thfc/format';
import { type HeldIndex, heldIndex, type LoadedIndex, type Logger } from '@thfc/store';
import { type Dispatcher, ProxyAgent } from 'undici';
import { BlockMeasurer } from './block-measurer.js';
import { type ReadPathOptions, SourceBuilder } from './build-source.js';
import { DEFAULT_CACHE_DIR } from './cache-dir.js';
import { ImageReader } from './image-reader.js';
import { BlockWorkers } from './io/block-workers.js';
import { DiskCache } from './io/disk-cache.js';
import { DnsMirrorList } from './mirrors/dns-mirror-list.js';
import { MissingBlocks } from './missing-blocks.js';
import type { ImageStatus, MountOptions, MountStatus } from './mount.js';
import type { Prefetcher } from './prefetcher.js';
import { ProfileRecorder } from './profile-recorder.js';
import type { ImageSource } from './sources/image-source.js';
import type { VersionWatcher } from './version-watch.js';

/** What a mount and an NBD server need to build their images: a mount's options without its FUSE ones. */
export type ImageOptions = Omit<MountOptions, 'mountpoint' | 'allowOther'>;

export interface ImageState {
  loaded: HeldIndex;
  index: ImageIndex;
  reader: ImageReader;
  /** The image's read path (SourceBuilder.build), with its stats. */
  blocks: ImageSource;
  missing: MissingBlocks;
  counts: ReturnType<ImageIndex['counts']>;
  recorder: ProfileRecorder | undefined;
  watcher: VersionWatcher | undefined;
  /** Set once the mount is up: profile replay (with where the profile came from) and --fill. */
  late: { prefetcher?: Prefetcher | undefined; prefetchSource?: string | undefined; filler?: Prefetcher | undefined };
}

/** The images of one mount or NBD server, over one disk cache and one set of mirrors. */
export interface ImageSet {
  readonly images: readonly ImageState[];
  /** What a mount's status and an NBD server's share: the process, the disk cache and each image. */
  status(): Pick<MountStatus, 'pid' | 'started' | 'cache' | 'images'>;
  /** Points every image at these mirrors (a pool's DNS answer changed). */
  retarget(bases: readonly string[]): void;
  /** Closes the sources (the disk cache is sealed); for images never served. */
  abandon(): Promise<void>;
  /** Closes the sources, then saves the boot profile recorded (--record-profile). */
  close(): Promise<void>;
}

/**
 * What loading and building a set of images starts from: the options'
 * mirrors checked (and with --pool, found through DNS, which is then followed
 * by the returned list), the HTTP proxy (--proxy, else $http_proxy) and the
 * disk cache directory (none with --nocache).
 */
export async function openMirrors(
  options: ImageOptions,
  components: { logger: Logger; env: Readonly<Record<string, string | undefined>> },
): Promise<{
  pool: DnsMirrorList | undefined;
  mirrorBases: readonly string[] | undefined;
  dispatcher: Dispatcher | undefined;
  cacheDir: string | undefined;
}> {
  const { logger, env } = components;
  if (options.indexes.length === 0) throw new UsageError('no INDEX-URL given');
  if (options.pool && options.mirrors?.length) throw new UsageError('--pool and --mirror both name mirrors; give one');
  if (options.pool && options.offline) throw new UsageError('--offline never asks DNS: drop --pool');
  const pool = options.pool ? new DnsMirrorList({ logger }, { pool: options.pool, dns: options.dns }) : undefined;
  const mirrorBases = pool ? [...(await pool.start())] : options.mirrors?.map(normaliseBase);
  const proxy = options.proxy ?? env.http_proxy ?? env.HTTP_PROXY;
  const dispatcher = proxy ? new ProxyAgent(proxy) : undefined;
  const cacheDir = options.nocache ? undefined : (options.cacheDir ?? DEFAULT_CACHE_DIR);
  return { pool, mirrorBases, dispatcher, cacheDir };
}

/** Each index measured before any of its blocks can be read: the log opens with what was loaded, on whose key. */
export async function measureIndexes(loaded: readonly LoadedIndex[], measurements: MeasurementLog): Promise<void> {
  for (const l of loaded) await measurements.measureIndex(l.decoded.digest, l.decoded.index.header.name, l.signer);
}

/** What building a set of images is given besides its options. */
export interface BuildComponents {
  logger: Logger;
  dispatcher: Dispatcher | undefined;
  cacheDir: string | undefined;
  mirrorBases: readonly string[] | undefined;
  measurements: MeasurementLog;
  /** The image's version check, if it has one (a mount's --check-interval). */
  watch?: ((l: LoadedIndex) => VersionWatcher | undefined) | undefined;
}

/**
 * Opens the shared disk cache and the helper threads, and composes each
 * loaded image's source tree and reader with its observers (profile
 * recorder, late prefetch and fill, block measurer). Takes the loaded
 * indexes over: `loaded` is emptied, since the images hold their indexes
 * without the files' bytes (most of a big index's memory).
 */
export async function buildImages(
  loaded: LoadedIndex[],
  options: ImageOptions,
  components: BuildComponents,
): Promise<ImageSet> {
  const { builder, disk } = await openSources(options, components);
  const readTimeoutMs = builder.readTimeoutMs(components.mirrorBases?.length ?? 1);
  let images: ImageState[];
  try {
    images = loaded.map((l) => buildImage(l, options, { ...components, builder, disk, readTimeoutMs }));
  } catch (e) {
    // Nothing was served: closed as ImageSet.abandon does (the workers, files and registration let go), and
    // sealed as a clean stop that served nothing is (the cache was opened, so its trust is this daemon's).
    await builder.close();
    throw e;
  }
  loaded.length = 0;
  return imageSet(images, options, { logger: components.logger, builder, disk, cacheDir: components.cacheDir });
}

/** The mount's options as SourceBuilder takes them. */
function readPathOptions(options: ImageOptions): ReadPathOptions {
  return {
    nocache: options.nocache,
    offline: options.offline,
    paranoid: options.paranoid,
    memoryBytes: options.memoryCache,
    connections: options.connections,
    maxConnections: options.maxConnections,
    lowSpeedBps: options.lowSpeedBps,
    lowSpeedTimeMs: options.lowSpeedTimeMs,
    http2: options.http2,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
  };
}

/**
 * The disk cache (none without a directory) and one pool of helper threads
 * that decodes fetched blocks and checks cached ones, for every image of the
 * mount, handed to a SourceBuilder that owns them and opened.
 */
async function openSources(
  options: ImageOptions,
  components: Pick<BuildComponents, 'logger' | 'dispatcher' | 'cacheDir'>,
): Promise<{ builder: SourceBuilder; disk: DiskCache | undefined }> {
  const { logger, dispatcher, cacheDir } = components;
  const disk = cacheDir ? new DiskCache({ logger }, { dir: cacheDir, maxBytes: options.cacheSize }) : undefined;
  const builder = new SourceBuilder(
    { disk, dispatcher, logger, workers: new BlockWorkers() },
    readPathOptions(options),
  );
  await builder.open();
  return { builder, disk };
}

/** One image: its read path, reader and observers; prefetch and fill are bound later (ImageState.late). */
function buildImage(
  l: LoadedIndex,
  options: ImageOptions,
  components: BuildComponents & { builder: SourceBuilder; disk: DiskCache | undefined; readTimeoutMs: number },
): ImageState {
  const { logger, builder, disk, mirrorBases, measurements } = components;
  const index = l.decoded.index;
  // Local: a cache entry of the block's decoded length (an entry of another format is not).
  const missing = new MissingBlocks(index, disk?.blocks ? (r) => disk.holds(r.id, r.size) : undefined);
  const blocks = builder.build(mirrorBases?.length ? mirrorBases : [l.location.base], {
    onStored: (id) => missing.delete(id),
  });
  const recorder = options.recordProfile ? new ProfileRecorder(index, l.decoded.digest) : undefined;
  const measurer = options.measureBlocks ? new BlockMeasurer({ log: measurements }, l.decoded.digest) : undefined;
  // Prefetch and fill start after the mount (the profile is fetched beside the first reads, not before them):
  // their observers are bound late.
  const late: ImageState['late'] = {};
  const observeLate = (i: number, ref: BlockRef) => {
    late.prefetcher?.observe(i, ref);
    late.filler?.observe(i, ref);
  };
  const observers = [recorder?.observe, observeLate, measurer?.observe].filter((o) => o !== undefined);
  const reader = new ImageReader(
    { index, blocks, logger, observers },
    { readaheadBlocks: options.readahead, readTimeoutMs: components.readTimeoutMs },
  );
  logger.info(`image ${index.header.name}: ${blocks}`);
  const loaded = heldIndex(l);
  return {
    recorder,
    watcher: components.watch?.(l),
    late,
    loaded,
    index,
    reader,
    blocks,
    missing,
    counts: index.counts(),
  };
}

/** The built images as one set: status over the builder's disk cache, retarget, and closing it all. */
function imageSet(
  images: readonly ImageState[],
  options: ImageOptions,
  components: { logger: Logger; builder: SourceBuilder; disk: DiskCache | undefined; cacheDir: string | undefined },
): ImageSet {
  const { logger, builder, disk, cacheDir } = components;
  const started = new Date();
  return {
    images,
    status: () => ({
      pid: process.pid,
      started: started.toISOString(),
      cache: {
        dir: cacheDir ?? null,
        bytes: disk?.bytes ?? 0,
        blocks: disk?.blocks ?? 0,
        maxBytes: options.cacheSize ?? null,
        sealed: builder.checks?.sealed ?? 0,
        checked: builder.checks?.checked ?? 0,
        changed: builder.checks?.changed ?? 0,
      },
      images: images.map((s) => imageStatus(s)),
    }),
    retarget(bases) {
      for (const s of images) s.blocks.retarget(bases);
    },
    abandon: () => builder.close(),
    async close() {
      await builder.close();
      for (const s of images) {
        if (s.recorder && options.recordProfile) {
          await s.recorder.save(options.recordProfile);
          logger.info(`recorded a boot profile of ${s.recorder.blocks} blocks to ${options.recordProfile}`);
        }
      }
    },
  };
}

export function imageStatus(s: ImageState): ImageStatus {
  const c = s.counts;
  const local = c.unique - s.missing.size;
  const source = s.blocks.stats();
  return {
    name: s.index.header.name,
    index: s.loaded.location.location,
    indexFrom: s.loaded.from,
    digest: s.loaded.decoded.digest,
    pinned: s.loaded.pinned ?? null,
    versionCheck: s.watcher?.status() ?? null,
    authenticated: s.loaded.authenticated,
    signer: s.loaded.signer ?? null,
    size: s.index.header.size,
    blocks: c.blocks,
    zeroBlocks: c.zero,
    uniqueBlocks: c.unique,
    localBlocks: local,
    localFraction: c.unique ? local / c.unique : 1,
    blocksFetched: source.blocksFetched,
    bytesDownloaded: source.bytesDownloaded,
    cacheHits: source.cacheHits,
    memoryHits: source.memoryHits,
    reads: s.reader.counters.reads,
    bytesRead: s.reader.counters.bytesRead,
    readErrors: s.reader.counters.readErrors,
    readaheadErrors: s.reader.counters.readaheadErrors,
    readaheadIssued: s.reader.counters.readaheadIssued,
    sources: source.sources,
    mirrors: source.mirrors,
    hedges: source.hedges,
    hedgesWon: source.hedgesWon,
    prefetch: s.late.prefetcher ? { source: s.late.prefetchSource ?? '', ...s.late.prefetcher.status() } : null,
    fill: s.late.filler?.status() ?? null,
  };
}

/** A mirror base is the directory holding blocks/: make sure URLs end in `/` so relative paths resolve under it. */
export function normaliseBase(base: string): string {
  if (/^https?:\/\//i.test(base)) return base.endsWith('/') ? base : `${base}/`;
  if (/^file:\/\//i.test(base)) return fileURLToPath(base);
  if (/^[a-z][a-z0-9+.-]*:/i.test(base)) {
    throw new UsageError(`bad mirror URL "${base}": expected http(s)://HOST/DIR/, file:///DIR or a directory`);
  }
  return resolve(base);
}
