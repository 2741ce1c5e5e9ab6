import { describeProgress, progressInterval } from '@thfc/cli';
import {
  type BlockRef,
  checkProfile,
  decideTrust,
  requireTrusted,
  trustStoreOfKeys,
  verifyInlineSignatures,
} from '@thfc/format';
import { DEFAULT_ATTEMPT_TIMEOUT_MS, DEFAULT_MAX_WINDOW, type HeldIndex, type Logger, loadProfile } from '@thfc/store';
import type { Dispatcher } from 'undici';
import type { ImageOptions, ImageSet, ImageState } from './build-images.js';
import type { DnsMirrorList } from './mirrors/dns-mirror-list.js';
import { Prefetcher } from './prefetcher.js';
import type { BlockReader } from './sources/block-reader.js';

/**
 * Fill and profile replay queue this many fetches at once. They are
 * background requests: each mirror's request window decides how many go on
 * the wire, serves every demand request first and keeps a slot free for one,
 * so this only has to be enough to fill the widest window (DEFAULT_MAX_WINDOW).
 */
export const DEFAULT_BACKGROUND_PARALLEL = DEFAULT_MAX_WINDOW;

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
  options: ImageOptions,
  signal: AbortSignal,
): Promise<{ prefetcher: Prefetcher; source: string; ids: string[] } | undefined> {
  if (options.noPrefetch || (options.offline && !options.prefetch)) return undefined;
  const name = l.decoded.index.header.name;
  try {
    const profile = await loadProfile(options.prefetch, l.location, name, components, {
      timeoutMs: options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS,
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
  options: ImageOptions,
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
 * Once the images are served, the work beside them until `signal` aborts:
 * the pool's mirrors are followed, and each image's profile replay and fill
 * run (runBackground).
 */
export function startBackground(
  set: ImageSet,
  pool: DnsMirrorList | undefined,
  components: { dispatcher: Dispatcher | undefined; logger: Logger; env: Readonly<Record<string, string | undefined>> },
  options: ImageOptions,
  signal: AbortSignal,
): void {
  pool?.onChange((urls) => set.retarget(urls));
  pool?.follow();
  for (const s of set.images) void runBackground(s, components, options, signal);
}
