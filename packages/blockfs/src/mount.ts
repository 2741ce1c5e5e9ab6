import { resolve } from 'node:path';
import { MeasurementLog } from '@thfc/attest/measurement-log';
import { InputError, MirrorUnavailableError, type TrustStore, UsageError } from '@thfc/format';
import type { MirrorSnapshot } from '@thfc/store';
import {
  type LoadedIndex,
  type Logger,
  lazyUnmount,
  loadIndex,
  mountDevice,
  prepareMountpoint,
  unmountIfIdle,
} from '@thfc/store';
import type { Dispatcher } from 'undici';
import { buildImages, type ImageOptions, type ImageSet, measureIndexes, openMirrors } from './build-images.js';
import { DEFAULT_CACHE_DIR } from './cache-dir.js';
import { FuseMount } from './fuse-adapter.js';
import { startBackground } from './image-background.js';
import type { DnsMirrorList } from './mirrors/dns-mirror-list.js';
import { mountFiles } from './mount-files.js';
import type { PrefetchStatus } from './prefetcher.js';
import { collectGarbage } from './release-memory.js';
import type { SwitchStatus } from './version-switch.js';
import { DEFAULT_CHECK_INTERVAL_MS, type VersionCheckStatus, VersionWatcher } from './version-watch.js';

export { DEFAULT_CACHE_DIR };

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

/** What mountImages is given besides its options. */
export interface MountComponents {
  logger: Logger;
  env: Readonly<Record<string, string | undefined>>;
  /** Where indexes (and with measureBlocks, blocks) are measured; a software-only log if not given. */
  measurements?: MeasurementLog | undefined;
  /** The daemon's version switch (version-switch.ts), shown in stats. */
  switchStatus?: (() => SwitchStatus) | undefined;
  /** Called when a version check finds a newer version of an image (--auto-switch). */
  onVersionUpdate?: ((name: string) => void) | undefined;
}

/**
 * Loads every index (all or nothing), checks trust, opens the shared disk
 * cache, composes each image's source tree and mounts them as one FUSE
 * directory. Resolves once the mount is ready.
 */
export async function mountImages(options: MountOptions, components: MountComponents): Promise<Mounted> {
  const { logger } = components;
  const images = await loadImages(options, components);
  const { pool, mirrorBases, dispatcher, cacheDir, measurements, mountpoint } = images;
  const watch = (l: LoadedIndex) =>
    versionWatcher(l, options, { dispatcher, logger, onVersionUpdate: components.onVersionUpdate });
  const set = await buildImages(images.loaded, options, {
    logger,
    dispatcher,
    cacheDir,
    mirrorBases,
    measurements,
    watch,
  });
  const status = (): MountStatus => {
    const { pid, started, cache, images } = set.status();
    return { mountpoint, pid, started, cache, images, switch: components.switchStatus?.() ?? null };
  };
  const { fuse, device } = await mountFuse(set, { measurements, status, logger }, options, mountpoint);
  // Once this function has returned: its suspended frame may still point at what it loaded.
  setImmediate(collectGarbage);
  const background = new AbortController();
  startBackground(set, pool, { dispatcher, logger, env: components.env }, options, background.signal);
  for (const s of set.images) s.watcher?.start(background.signal);
  return mountSession({ ...images, set, fuse, device, background, status, logger });
}

/** What a mount or an NBD server starts from: its mirrors, and every index loaded and measured. */
export interface LoadedIndexSet {
  readonly pool: DnsMirrorList | undefined;
  readonly mirrorBases: readonly string[] | undefined;
  readonly dispatcher: Dispatcher | undefined;
  readonly cacheDir: string | undefined;
  /** In the order given; buildImages takes them over. */
  readonly loaded: LoadedIndex[];
  readonly measurements: MeasurementLog;
  /** Every index loaded again without log lines: what each location holds now (a version check). */
  reload(): Promise<LoadedIndex[]>;
}

/** What a mount starts from: a loaded index set, and its mount point made ready. */
export interface LoadedImages extends LoadedIndexSet {
  readonly mountpoint: string;
  /** A stale mount (of a daemon that died) was cleared from the mount point. */
  readonly clearedStale: boolean;
}

/**
 * The first step of a mount and of an NBD server: checks the options and
 * opens the mirrors (openMirrors; with --pool, DNS is asked), then loads every
 * index (all or nothing) and measures each before any of its blocks can be read.
 * `beforeLoad` runs once the options are checked (a mount readies its mount
 * point there).
 */
export async function loadIndexSet(
  options: ImageOptions,
  components: Pick<MountComponents, 'logger' | 'env' | 'measurements'>,
  beforeLoad?: () => Promise<void>,
): Promise<LoadedIndexSet> {
  const { logger } = components;
  if (options.recordProfile && options.indexes.length !== 1) {
    throw new UsageError('--record-profile records one image: give exactly one INDEX-URL');
  }
  const { pool, mirrorBases, dispatcher, cacheDir } = await openMirrors(options, components);
  await beforeLoad?.();
  const load = (quiet: boolean) =>
    loadIndexes(options, { dispatcher, logger, cacheDir, mirrorBases: () => mirrorBases }, quiet);
  const loaded = await load(false);
  const measurements = components.measurements ?? new MeasurementLog();
  await measureIndexes(loaded, measurements);
  return { pool, mirrorBases, dispatcher, cacheDir, loaded, measurements, reload: () => load(true) };
}

/** A mount's loadIndexSet: a stale mount left at the mount point by a daemon that died is cleared first. */
export async function loadImages(
  options: MountOptions,
  components: Pick<MountComponents, 'logger' | 'env' | 'measurements'>,
): Promise<LoadedImages> {
  const mountpoint = resolve(options.mountpoint);
  let clearedStale = false;
  const set = await loadIndexSet(options, components, async () => {
    clearedStale = await prepareMountpoint(mountpoint);
    if (clearedStale) components.logger.info(`cleared a stale mount at ${mountpoint} left by a daemon that died`);
  });
  return { ...set, mountpoint, clearedStale };
}

/**
 * Mounts the images as one FUSE directory; if that fails, the images are
 * abandoned (the disk cache sealed) and the error is a UsageError. Returns the
 * mount and the device that is ours at the mount point.
 */
async function mountFuse(
  set: ImageSet,
  components: { measurements: MeasurementLog; status: () => MountStatus; logger: Logger },
  options: Pick<MountOptions, 'allowOther'>,
  mountpoint: string,
): Promise<{ fuse: FuseMount; device: Awaited<ReturnType<typeof mountDevice>> }> {
  const { measurements, status, logger } = components;
  const fuse = new FuseMount(
    { ...mountFiles(set.images, measurements, status), logger },
    { mountpoint, allowOther: options.allowOther },
  );
  try {
    await fuse.mount();
  } catch (e) {
    await set.abandon();
    throw new UsageError(`cannot mount ${mountpoint}: ${(e as Error).message}`);
  }
  // Which mount is ours: after a lazy detach another may be mounted at the same path, and must be left alone.
  const device = await mountDevice(mountpoint);
  logger.info(`mounted ${set.images.map((s) => s.index.header.name).join(', ')} at ${mountpoint}`);
  return { fuse, device };
}

/** The running mount: its status, its versions, and the ways it ends (each closes the images once). */
function mountSession(parts: {
  mountpoint: string;
  clearedStale: boolean;
  set: ImageSet;
  fuse: FuseMount;
  device: Awaited<ReturnType<typeof mountDevice>>;
  pool: DnsMirrorList | undefined;
  background: AbortController;
  status: () => MountStatus;
  reload: () => Promise<LoadedIndex[]>;
  logger: Logger;
}): Mounted {
  const { mountpoint, set, fuse, device, logger } = parts;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      parts.background.abort();
      parts.pool?.close();
      await set.close();
      logger.info(`unmounted ${mountpoint}`);
    })();
    return closed;
  };
  return {
    mountpoint,
    clearedStale: parts.clearedStale,
    status: parts.status,
    digests: () => new Map(set.images.map((s) => [s.index.header.name, s.loaded.decoded.digest])),
    async latestVersions() {
      return new Map((await parts.reload()).map((l) => [l.decoded.index.header.name, l.decoded.digest]));
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

/** The version check of an http(s) index (--check-interval), unless it is off or the mount is offline. */
function versionWatcher(
  l: LoadedIndex,
  options: Pick<MountOptions, 'checkIntervalMs' | 'offline' | 'timeoutMs'>,
  components: {
    dispatcher: Dispatcher | undefined;
    logger: Logger;
    onVersionUpdate?: ((name: string) => void) | undefined;
  },
): VersionWatcher | undefined {
  const checkEvery = options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS;
  if (l.location.kind !== 'http' || options.offline || !(checkEvery > 0)) return undefined;
  const name = l.decoded.index.header.name;
  return new VersionWatcher(
    { dispatcher: components.dispatcher, logger: components.logger },
    {
      url: l.location.location,
      name,
      mounted: l.decoded.digest,
      etag: l.etag,
      intervalMs: checkEvery,
      timeoutMs: options.timeoutMs,
      onUpdate: () => components.onVersionUpdate?.(name),
    },
  );
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
