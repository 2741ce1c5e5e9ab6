import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeasurementLog } from '@thfc/attest/measurement-log';
import {
  type BlockRef,
  checkProfile,
  decideTrust,
  type ImageIndex,
  InputError,
  MirrorUnavailableError,
  requireTrusted,
  type TrustStore,
  trustStoreOfKeys,
  UsageError,
  verifyInlineSignatures,
} from '@thfc/format';
import { describeProgress, progressInterval } from '@thfc/packer';
import { type Dispatcher, ProxyAgent } from 'undici';
import { BlockMeasurer } from './block-measurer.js';
import { SourceBuilder } from './build-source.js';
import { DEFAULT_CACHE_DIR } from './cache-dir.js';
import { FuseMount, type ImageFile, type VirtualFile } from './fuse-adapter.js';
import { ImageReader, newReadStream } from './image-reader.js';
import { type HeldIndex, heldIndex, type LoadedIndex, loadIndex } from './index-loader.js';
import type { Logger } from './logger.js';
import { DnsMirrorList } from './mirrors/dns-mirror-list.js';
import type { MirrorSnapshot } from './mirrors/mirror-stats.js';
import { MissingBlocks } from './missing-blocks.js';
import { lazyUnmount, mountDevice, prepareMountpoint, unmountIfIdle } from './mount-point.js';
import { Prefetcher, type PrefetchStatus } from './prefetcher.js';
import { loadProfile } from './profile-loader.js';
import { ProfileRecorder } from './profile-recorder.js';
import { collectGarbage } from './release-memory.js';
import type { BlockReader } from './sources/block-reader.js';
import { BlockWorkers } from './sources/block-workers.js';
import type { CacheCounters } from './sources/cached.js';
import { DiskCache } from './sources/disk-cache.js';
import { defaultRounds, type Failover } from './sources/failover.js';
import type { MemoryCache } from './sources/memory-cache.js';
import { DEFAULT_MAX_WINDOW } from './sources/request-window.js';
import type { SwitchStatus } from './version-switch.js';
import { DEFAULT_CHECK_INTERVAL_MS, updateFileText, type VersionCheckStatus, VersionWatcher } from './version-watch.js';

export { DEFAULT_CACHE_DIR };
/** Per-attempt HTTP timeout: a 256 KiB block over a slow link still fits; a dead mirror is left quickly. */
export const DEFAULT_TIMEOUT_MS = 10_000;

export interface MountOptions {
  readonly mountpoint: string;
  /** INDEX-URLs: http(s)://…/NAME.idx, file://…, or paths. */
  readonly indexes: readonly string[];
  /** Block store base URLs (or directories) to use instead of each index's own directory. */
  readonly mirrors?: readonly string[] | undefined;
  /** A DNS-Balance pool name: mirrors are found (and re-resolved) through DNS instead of `mirrors`. */
  readonly pool?: string | undefined;
  /** The DNS server for `pool` as HOST:PORT; default: the system's resolvers. */
  readonly dns?: string | undefined;
  readonly cacheDir?: string | undefined;
  readonly cacheSize?: number | undefined;
  readonly memoryCache?: number | undefined;
  readonly nocache?: boolean | undefined;
  readonly offline?: boolean | undefined;
  readonly paranoid?: boolean | undefined;
  readonly trust?: readonly Uint8Array[] | undefined;
  /** Keys with expiry, scope and revocations (docs/TRUST.md); used instead of `trust` when given. */
  readonly trustStore?: TrustStore | undefined;
  /** `sha256:<hex>`: mount exactly this version of the (one) image (docs/FORMAT.md §5.9). */
  readonly pin?: string | undefined;
  /** Revalidate each http(s) index this often and report a newer version (0: never). */
  readonly checkIntervalMs?: number | undefined;
  /** Mount an index whose signature does not verify (logged) instead of refusing it. */
  readonly allowInvalidSignature?: boolean | undefined;
  /** Log each block the first time a reader uses it, besides each index mounted. */
  readonly measureBlocks?: boolean | undefined;
  /** Pins every mirror's request window at this many requests; adaptive when not given. */
  readonly connections?: number | undefined;
  /** The most requests in flight per mirror when adaptive. */
  readonly maxConnections?: number | undefined;
  /** The most blocks read ahead of a sequential reader. */
  readonly readahead?: number | undefined;
  /** The low-speed limit: bytes per second, and for how long, before a transfer is abandoned. */
  readonly lowSpeedBps?: number | undefined;
  readonly lowSpeedTimeMs?: number | undefined;
  /** Offer HTTP/2 to https mirrors. */
  readonly http2?: boolean | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
  readonly proxy?: string | undefined;
  readonly allowOther?: boolean | undefined;
  /** Record the blocks readers touch into this boot profile file at unmount (one image only). */
  readonly recordProfile?: string | undefined;
  /** Replay this profile (file or URL) instead of looking for NAME.profile beside the index. */
  readonly prefetch?: string | undefined;
  /** Do not look for a published profile. */
  readonly noPrefetch?: boolean | undefined;
  readonly prefetchParallel?: number | undefined;
  /** Bytes per second for prefetch and fill together. */
  readonly prefetchRate?: number | undefined;
  /** After the profile, fetch the rest of the image in the background until it is all cached. */
  readonly fill?: boolean | undefined;
}

/**
 * Fill and profile replay queue this many fetches at once. They are
 * background requests: each mirror's request window decides how many go on
 * the wire, serves every demand request first and keeps a slot free for one,
 * so this only has to be enough to fill the widest window (DEFAULT_MAX_WINDOW).
 */
export const DEFAULT_BACKGROUND_PARALLEL = DEFAULT_MAX_WINDOW;

export interface ImageStatus {
  readonly name: string;
  readonly index: string;
  readonly indexFrom: LoadedIndex['from'];
  readonly digest: string;
  /** The digest the mount is pinned to (URL#sha256:… or --pin), or null. */
  readonly pinned: string | null;
  /** The index location's version check (--check-interval); null when it is off or the index is a file. */
  readonly versionCheck: VersionCheckStatus | null;
  /** Whether a trust policy authenticated the index, and the key it accepted (null when none was asked for). */
  readonly authenticated: boolean;
  readonly signer: string | null;
  readonly size: number;
  readonly blocks: number;
  readonly zeroBlocks: number;
  readonly uniqueBlocks: number;
  /** Distinct non-zero blocks held locally (disk cache), and that as a fraction of all of them. */
  readonly localBlocks: number;
  readonly localFraction: number;
  readonly blocksFetched: number;
  readonly bytesDownloaded: number;
  readonly cacheHits: number;
  readonly memoryHits: number;
  readonly reads: number;
  readonly bytesRead: number;
  readonly readErrors: number;
  /** EIOs only the kernel's read-ahead hit and no reader saw (readahead-errors.ts). */
  readonly readaheadErrors: number;
  readonly readaheadIssued: number;
  readonly sources: string;
  readonly mirrors: readonly MirrorSnapshot[];
  /** Hedged requests sent (failover.ts), and how many of them answered first; 0 without mirrors. */
  readonly hedges: number;
  readonly hedgesWon: number;
  /** Boot-profile replay: where the profile came from, and hit / wasted / pending counts. */
  readonly prefetch: (PrefetchStatus & { source: string }) | null;
  /** --fill progress over the blocks that were not local at mount time. */
  readonly fill: PrefetchStatus | null;
}

export interface MountStatus {
  readonly mountpoint: string;
  readonly pid: number;
  readonly started: string;
  readonly cache: {
    dir: string | null;
    bytes: number;
    blocks: number;
    maxBytes: number | null;
    /** Entries trusted at start by the seal, hashed since start, and found changed since they were checked. */
    sealed: number;
    checked: number;
    changed: number;
  };
  readonly images: readonly ImageStatus[];
  /** The last version switch (`httpstorged switch`, --auto-switch); null when the daemon has none. */
  readonly switch: SwitchStatus | null;
}

export interface Mounted {
  readonly mountpoint: string;
  readonly clearedStale: boolean;
  status(): MountStatus;
  /**
   * Unmounts only if nothing uses the images. `busy`: in use, nothing
   * changed. `detached`: someone detached the mount lazily and it still serves
   * its last users. `done`: the mount and its last user are gone, and the
   * mount is closed (cache sealed, profile saved); the process should exit.
   */
  unmountIfIdle(): Promise<'busy' | 'detached' | 'done'>;
  /** Detaches the mount even if it is in use (lazily: its users get errors), then closes it. */
  unmount(): Promise<void>;
  /** name → digest of each image mounted. */
  digests(): Map<string, string>;
  /** name → digest each index location holds now, fetched without log lines (and cached, for a remount). */
  latestVersions(): Promise<Map<string, string>>;
}

/** How long libfuse may take to close its session once the kernel unmounted: it takes milliseconds. */
const SESSION_END_MS = 5_000;
/** The same, for a mount found already unmounted (by `httpstorged umount`, just before its signal). */
const SESSION_GONE_MS = 500;

export interface ImageState {
  loaded: HeldIndex;
  index: ImageIndex;
  reader: ImageReader;
  counters: CacheCounters;
  blocks: BlockReader;
  failover: Failover | undefined;
  memory: MemoryCache;
  missing: MissingBlocks;
  unique: number;
  counts: ReturnType<ImageIndex['counts']>;
  recorder: ProfileRecorder | undefined;
  watcher: VersionWatcher | undefined;
  /** Set once the mount is up: profile replay (with where the profile came from) and --fill. */
  late: { prefetcher?: Prefetcher | undefined; prefetchSource?: string | undefined; filler?: Prefetcher | undefined };
}

/**
 * Loads every index (all or nothing), checks trust, opens the shared disk
 * cache, composes each image's source tree and mounts them as one FUSE
 * directory. Resolves once the mount is ready.
 */
export async function mountImages(
  options: MountOptions,
  components: {
    logger: Logger;
    env: Readonly<Record<string, string | undefined>>;
    /** Where indexes (and with measureBlocks, blocks) are measured; a software-only log if not given. */
    measurements?: MeasurementLog | undefined;
    /** The daemon's version switch (version-switch.ts), shown in stats. */
    switchStatus?: (() => SwitchStatus) | undefined;
    /** Called when a version check finds a newer version of an image (--auto-switch). */
    onVersionUpdate?: ((name: string) => void) | undefined;
  },
): Promise<Mounted> {
  const { logger } = components;
  if (options.indexes.length === 0) throw new UsageError('no INDEX-URL given');
  if (options.pool && options.mirrors?.length) throw new UsageError('--pool and --mirror both name mirrors; give one');
  if (options.pool && options.offline) throw new UsageError('--offline never asks DNS: drop --pool');
  const pool = options.pool ? new DnsMirrorList({ logger }, { pool: options.pool, dns: options.dns }) : undefined;
  const mirrorBases = pool ? [...(await pool.start())] : options.mirrors?.map(normaliseBase);
  const mountpoint = resolve(options.mountpoint);
  const clearedStale = await prepareMountpoint(mountpoint);
  if (clearedStale) logger.info(`cleared a stale mount at ${mountpoint} left by a daemon that died`);

  const proxy = options.proxy ?? components.env.http_proxy ?? components.env.HTTP_PROXY;
  const dispatcher: Dispatcher | undefined = proxy ? new ProxyAgent(proxy) : undefined;
  const cacheDir = options.nocache ? undefined : (options.cacheDir ?? DEFAULT_CACHE_DIR);

  const loadAll = (quiet: boolean) =>
    loadIndexes(options, { dispatcher, logger, cacheDir, mirrorBases: () => mirrorBases }, quiet);
  const loaded = await loadAll(false);

  // Measured before any of their blocks can be read: the log opens with what was mounted, on whose key.
  const measurements = components.measurements ?? new MeasurementLog();
  for (const l of loaded) await measurements.measureIndex(l.decoded.digest, l.decoded.index.header.name, l.signer);

  if (options.recordProfile && loaded.length !== 1) {
    throw new UsageError('--record-profile records one image: give exactly one INDEX-URL');
  }
  const disk = cacheDir ? new DiskCache({ logger }, { dir: cacheDir, maxBytes: options.cacheSize }) : undefined;
  await disk?.open();
  // One pool of helper threads decodes fetched blocks and checks cached ones, for every image of the mount.
  const workers = new BlockWorkers();
  const builder = new SourceBuilder(
    { disk, dispatcher, logger, decoder: workers, verifier: workers },
    {
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
    },
  );
  await builder.openCache();
  const mirrorCount = Math.max(1, mirrorBases?.length ?? 1);
  const readTimeoutMs =
    (options.timeoutMs ?? DEFAULT_TIMEOUT_MS) * ((options.retries ?? defaultRounds(mirrorCount)) * mirrorCount + 1) +
    5_000;

  const images: ImageState[] = [];
  for (const l of loaded) {
    const index = l.decoded.index;
    // Local: a cache entry of the block's decoded length (an entry of another format is not).
    const missing = new MissingBlocks(index, disk?.blocks ? (r) => disk.holds(r.id, r.size) : undefined);
    const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0, onStored: (id) => missing.delete(id) };
    const bases = mirrorBases?.length ? mirrorBases : [l.location.base];
    const built = builder.build(bases, counters);
    const recorder = options.recordProfile ? new ProfileRecorder(index, l.decoded.digest) : undefined;
    const measurer = options.measureBlocks ? new BlockMeasurer({ log: measurements }, l.decoded.digest) : undefined;
    // Prefetch and fill start after the mount (the profile is fetched beside the first reads, not before them):
    // their observers are bound late.
    const late: { prefetcher?: Prefetcher | undefined; filler?: Prefetcher | undefined } = {};
    const observeLate = (i: number, ref: BlockRef) => {
      late.prefetcher?.observe(i, ref);
      late.filler?.observe(i, ref);
    };
    const observers = [recorder?.observe, observeLate, measurer?.observe].filter((o) => o !== undefined);
    const reader = new ImageReader(
      { index, blocks: built.blocks, logger, observers },
      { readaheadBlocks: options.readahead, readTimeoutMs },
    );
    logger.info(`image ${index.header.name}: ${built.blocks}`);
    const checkEvery = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
    const watcher =
      l.location.kind === 'http' && !options.offline && checkEvery > 0
        ? new VersionWatcher(
            { dispatcher, logger },
            {
              url: l.location.location,
              name: index.header.name,
              mounted: l.decoded.digest,
              intervalMs: checkEvery,
              timeoutMs: options.timeoutMs,
              onUpdate: () => components.onVersionUpdate?.(index.header.name),
            },
          )
        : undefined;
    images.push({
      recorder,
      watcher,
      late,
      loaded: heldIndex(l),
      index,
      reader,
      counters,
      blocks: built.blocks,
      failover: built.failover,
      memory: built.memory,
      missing,
      unique: index.uniqueCount(),
      counts: index.counts(),
    });
  }
  // The images hold their indexes without the files' bytes: let those go (they are most of a big index's memory).
  loaded.length = 0;

  const started = new Date();
  const status = (): MountStatus => ({
    mountpoint,
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
    switch: components.switchStatus?.() ?? null,
  });
  const files: ImageFile[] = images.map((s) => ({
    name: s.index.header.name,
    size: s.index.header.size,
    open: (how) => {
      const stream = newReadStream(how);
      // Answered only once every measurement so far is in the log (and the TPM): measure before use.
      const read = async (buf: Buffer, len: number, pos: number) => {
        const n = await s.reader.read(buf, len, pos, stream);
        await measurements.settled();
        return n;
      };
      // With a TPM a reader must wait for its blocks' extends, so every read takes the path that waits.
      const readNow = measurements.immediate
        ? (buf: Buffer, len: number, pos: number) => s.reader.readNow(buf, len, pos, stream)
        : undefined;
      return { read, readNow };
    },
  }));
  const statusFiles: VirtualFile[] = [
    { name: 'stats.json', content: () => Buffer.from(`${JSON.stringify(status(), null, 2)}\n`) },
    { name: 'measurements', content: () => Buffer.from(measurements.text()) },
    ...images.map((s) => ({
      name: `${s.index.header.name}.update`,
      content: () => Buffer.from(s.watcher ? updateFileText(s.watcher.status()) : ''),
    })),
  ];
  const fuse = new FuseMount(
    { images: files, status: statusFiles, logger },
    { mountpoint, allowOther: options.allowOther },
  );
  try {
    await fuse.mount();
  } catch (e) {
    await builder.close();
    throw new UsageError(`cannot mount ${mountpoint}: ${(e as Error).message}`);
  }
  // Which mount is ours: after a lazy detach another may be mounted at the same path, and must be left alone.
  const device = await mountDevice(mountpoint);
  logger.info(`mounted ${images.map((s) => s.index.header.name).join(', ')} at ${mountpoint}`);
  // Once this function has returned: its suspended frame may still point at what it loaded.
  setImmediate(collectGarbage);
  pool?.onChange((urls) => {
    for (const s of images) if (s.failover) builder.retarget(s.failover, urls);
  });
  pool?.follow();
  const background = new AbortController();
  for (const s of images)
    void runBackground(s, { dispatcher, logger, env: components.env }, options, background.signal);
  for (const s of images) s.watcher?.start(background.signal);

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      background.abort();
      pool?.close();
      await builder.close();
      for (const s of images) {
        if (s.recorder && options.recordProfile) {
          await s.recorder.save(options.recordProfile);
          logger.info(`recorded a boot profile of ${s.recorder.blocks} blocks to ${options.recordProfile}`);
        }
      }
      logger.info(`unmounted ${mountpoint}`);
    })();
    return closed;
  };
  return {
    mountpoint,
    clearedStale,
    status,
    digests: () => new Map(images.map((s) => [s.index.header.name, s.loaded.decoded.digest])),
    async latestVersions() {
      return new Map((await loadAll(true)).map((l) => [l.decoded.index.header.name, l.decoded.digest]));
    },
    async unmountIfIdle() {
      const outcome = await unmountIfIdle(mountpoint, device);
      if (outcome === 'busy') return 'busy';
      // Unmounted here (no user can be left), or earlier from outside: then done once the kernel ended the
      // session, which after a lazy detach is when its last user is gone.
      const end = Date.now() + (outcome === 'unmounted' ? SESSION_END_MS : SESSION_GONE_MS);
      while (fuse.sessionOpen() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      if (outcome === 'not-mounted' && fuse.sessionOpen()) return 'detached';
      await close();
      return 'done';
    },
    async unmount() {
      // Detached already (a lazy umount): what is mounted at the path now, if anything, is another's.
      if (device !== undefined && (await mountDevice(mountpoint)) !== device) return close();
      const clean = await fuse.unmount();
      if (!clean) {
        logger.fault(`libfuse did not confirm the unmount of ${mountpoint}; detaching it lazily`);
        await lazyUnmount(mountpoint).catch(() => {});
      }
      await close();
    },
  };
}

/**
 * Loads every index of the mount, in order (all or nothing); with --pool a
 * bare NAME or NAME.idx is fetched from the pool's mirrors, in DNS order.
 * `quiet`: no log lines (a version check, not a mount).
 */
export async function loadIndexes(
  options: Omit<MountOptions, 'mountpoint'>,
  io: {
    dispatcher: Dispatcher | undefined;
    logger: Logger;
    cacheDir: string | undefined;
    mirrorBases: () => readonly string[] | undefined;
  },
  quiet: boolean,
): Promise<LoadedIndex[]> {
  const { dispatcher, logger } = io;
  const loaded: LoadedIndex[] = [];
  for (const arg of options.indexes) {
    const poolIndex =
      options.pool && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(arg) ? arg.replace(/(\.idx)?$/, '.idx') : undefined;
    const load = (where: string) =>
      loadIndex(
        where,
        { dispatcher, logger },
        {
          offline: options.offline,
          cacheDir: io.cacheDir,
          timeoutMs: options.timeoutMs,
          trust: options.trust,
          trustStore: options.trustStore,
          pin: options.pin,
          invalidSignature: options.allowInvalidSignature ? 'allow' : 'refuse',
        },
      );
    const l = poolIndex ? await loadFromPool(poolIndex, io.mirrorBases() ?? [], load, logger) : await load(arg);
    if (loaded.some((x) => x.decoded.index.header.name === l.decoded.index.header.name)) {
      throw new UsageError(`two indexes are both named ${l.decoded.index.header.name}; each image needs its own name`);
    }
    if (!quiet) {
      logger.info(
        `index ${l.location.location}: ${l.decoded.index.header.name}, ${l.decoded.index.header.size} bytes, ${l.decoded.digest}${l.pinned ? ' (pinned)' : ''} (from ${l.from})`,
      );
      if (!l.authenticated)
        logger.info(`index ${l.decoded.index.header.name} is not authenticated (no --trust or --trust-store)`);
    }
    loaded.push(l);
  }
  return loaded;
}

export function imageStatus(s: ImageState): ImageStatus {
  const c = s.counts;
  const local = s.unique - s.missing.size;
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
    uniqueBlocks: s.unique,
    localBlocks: local,
    localFraction: s.unique ? local / s.unique : 1,
    blocksFetched: s.counters.fetched,
    bytesDownloaded: s.counters.bytesFetched,
    cacheHits: s.counters.hits,
    memoryHits: s.memory.hits,
    reads: s.reader.counters.reads,
    bytesRead: s.reader.counters.bytesRead,
    readErrors: s.reader.counters.readErrors,
    readaheadErrors: s.reader.counters.readaheadErrors,
    readaheadIssued: s.reader.counters.readaheadIssued,
    sources: String(s.blocks),
    mirrors: s.failover?.mirrorSnapshots() ?? [],
    hedges: s.failover?.hedges ?? 0,
    hedgesWon: s.failover?.hedgesWon ?? 0,
    prefetch: s.late.prefetcher ? { source: s.late.prefetchSource ?? '', ...s.late.prefetcher.status() } : null,
    fill: s.late.filler?.status() ?? null,
  };
}

/**
 * The image's boot profile, checked: it must be bound to this index and list
 * only its blocks (checkProfile), and with a trust policy it must be signed by
 * a trusted key. A profile that fails any check is ignored with a log line;
 * the mount goes on without prefetch.
 */
async function openPrefetch(
  l: HeldIndex,
  blocks: BlockReader,
  components: { dispatcher: Dispatcher | undefined; logger: Logger },
  options: Omit<MountOptions, 'mountpoint'>,
  signal: AbortSignal,
): Promise<{ prefetcher: Prefetcher; source: string; ids: string[] } | undefined> {
  if (options.noPrefetch || (options.offline && !options.prefetch)) return undefined;
  const name = l.decoded.index.header.name;
  try {
    const profile = await loadProfile(options.prefetch, l.location, name, components, {
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal,
    });
    if (!profile) return undefined;
    checkProfile(profile, l.decoded.index, l.decoded.digest);
    const store = options.trustStore ?? (options.trust ? trustStoreOfKeys(options.trust) : undefined);
    if (store) {
      const checked = verifyInlineSignatures(profile.bytes, profile.signatures);
      requireTrusted(decideTrust(checked, name, store, new Date(), 'profile'), `the profile of ${name}`, 'use');
    }
    const index = l.decoded.index;
    // checkProfile let only the index's ids through.
    const refs = profile.blocks.map((id) => index.ref(index.findBlock(id)) as BlockRef);
    components.logger.info(`image ${name}: replaying a boot profile of ${refs.length} blocks`);
    return {
      prefetcher: new Prefetcher({ blocks, logger: components.logger }, refs, {
        parallel: options.prefetchParallel ?? DEFAULT_BACKGROUND_PARALLEL,
        bytesPerSecond: options.prefetchRate,
      }),
      source: options.prefetch ?? `${name}.profile`,
      ids: profile.blocks as string[],
    };
  } catch (e) {
    if (signal.aborted) return undefined;
    components.logger.fault(`image ${name}: boot profile ignored: ${(e as Error).message}`);
    return undefined;
  }
}

/** Fill progress counts blocks: `40% 120/300 blocks, 12.5 blocks/s ETA 14s`. */
const FILL_UNIT = {
  amount: (n: number) => `${n}`,
  rate: (n: number, secs: number) => (secs > 0 ? `blocks, ${(n / secs).toFixed(1)} blocks/s` : 'blocks'),
};

/**
 * An image's background work once it is mounted: its boot profile is fetched
 * and replayed, then (--fill) the rest of the image is fetched; both stop at
 * unmount. The profile's fetch is off the mount's critical path: a guest's
 * first reads go out beside it.
 */
export async function runBackground(
  s: ImageState,
  components: {
    dispatcher: Dispatcher | undefined;
    logger: Logger;
    /** THFC_PROGRESS_SECONDS: how often --fill logs its progress. */
    env?: Readonly<Record<string, string | undefined>> | undefined;
  },
  options: Omit<MountOptions, 'mountpoint'>,
  signal: AbortSignal,
): Promise<void> {
  const { logger } = components;
  const name = s.index.header.name;
  const opened = await openPrefetch(s.loaded, s.blocks, components, options, signal);
  if (opened) {
    s.late.prefetcher = opened.prefetcher;
    s.late.prefetchSource = opened.source;
    await opened.prefetcher.run(signal);
    if (!signal.aborted) logger.info(`prefetch of ${name} done: ${JSON.stringify(opened.prefetcher.status())}`);
  }
  if (!options.fill || signal.aborted) return;
  const profileIds = new Set(opened?.ids ?? []);
  s.late.filler = new Prefetcher(
    { blocks: s.blocks, logger },
    [...s.missing.refs()].filter((r) => !profileIds.has(r.id)),
    { parallel: DEFAULT_BACKGROUND_PARALLEL, bytesPerSecond: options.prefetchRate },
  );
  const filler = s.late.filler;
  const started = performance.now();
  // A log is not a TTY: one line every few seconds while the fill runs, with an ETA.
  const ticker = setInterval(
    () => {
      const f = filler.status();
      const secs = (performance.now() - started) / 1000;
      logger.info(`fill of ${name}: ${describeProgress(f.fetched, f.blocks, secs, FILL_UNIT)}`);
    },
    progressInterval(components.env ?? {}),
  );
  ticker.unref();
  try {
    await filler.run(signal);
  } finally {
    clearInterval(ticker);
  }
  if (!signal.aborted) logger.info(`fill of ${name} done: the image is cached`);
}

/**
 * An index named by a pool: asked of the pool's mirrors in DNS order. A
 * mirror that is down or does not hold it (still syncing) passes to the
 * next; anything else (a bad or untrusted index) is final.
 */
export async function loadFromPool(
  file: string,
  bases: readonly string[],
  load: (url: string) => Promise<LoadedIndex>,
  logger: Logger,
): Promise<LoadedIndex> {
  let last: unknown = new UsageError(`no mirror to fetch ${file} from`);
  for (const base of bases) {
    try {
      return await load(new URL(file, base).href);
    } catch (e) {
      if (!(e instanceof MirrorUnavailableError || e instanceof InputError)) throw e;
      logger.fault(`${e.message}; asking the next mirror of the pool`);
      last = e;
    }
  }
  throw last;
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
