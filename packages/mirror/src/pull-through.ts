import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlockCorruptError,
  BlockNotFoundError,
  type DecodedIndex,
  decodeIndex,
  decodeVersionList,
  fsError,
  MAX_VERSION_LIST_BYTES,
  MirrorUnavailableError,
  VERSIONS_DIR,
  versionListPath,
} from '@thfc/format';
import {
  type Logger,
  MAX_INDEX_BYTES,
  readIndexFile,
  SILENT_LOGGER,
  VersionStore,
  writeFileAtomic,
  writeIndexFiles,
} from '@thfc/store';
import type { Metrics } from './metrics.js';
import type { RefBook } from './ref-book.js';
import { checkReplicaProfile, dropStaleProfile, publishProfile } from './replica-profile.js';
import type { StoreReader } from './store-reader.js';
import type { ProfileFetch, Upstream } from './upstream.js';

/**
 * An id no known index names triggers at most one look at the upstream's
 * listing per 5 s. A client that got its index elsewhere (DNS sent it to
 * another mirror) is served after one small request; a stream of made-up ids
 * costs the upstream one listing request per 5 s, never a block request.
 */
export const DEFAULT_REF_REFRESH_MS = 5_000;

/**
 * A pulled index is checked against the upstream again, in the background,
 * once it is a minute old: the same minute clients may cache it for
 * (routes/file-route.ts), so a republished image reaches a pull-through
 * mirror's clients within about two minutes.
 */
export const DEFAULT_INDEX_REVALIDATE_MS = 60_000;

export interface PullThroughComponents {
  readonly upstream: Upstream;
  readonly store: StoreReader;
  readonly refs: RefBook;
  readonly metrics: Metrics;
  readonly logger?: Logger;
  readonly now?: () => number;
}

export interface PullThroughOptions {
  readonly refRefreshMs?: number | undefined;
  readonly indexRevalidateMs?: number | undefined;
}

/**
 * Fills the store from upstream on demand. A missing block is fetched once
 * however many requests wait for it, verified against its ref (ref-book.ts)
 * by the upstream tree, written with DirStore.put (temp + rename), and
 * returned for serving. A missing index is fetched, strictly decoded and
 * written durably before it is served. A missing boot profile is fetched
 * only for an index the store holds (pulled first if need be), checked
 * against that index (replica-profile.ts) and written durably before it is
 * served; one that fails the check is never stored or served. Writing an
 * index drops a stored profile bound to another index.
 *
 * Results: a block resolves to its stored bytes, or undefined when no known
 * index names it or every upstream answered 404; an index or profile to
 * true once stored, false when no upstream publishes it. Every other failure
 * (all upstreams down, or sending bytes that fail verification) rejects with
 * MirrorUnavailableError: nothing unverified is ever stored or served. A
 * block that verified but could not be stored (disk full) is still served.
 *
 * `signal` is the server's lifetime: a fetch outlives the request that
 * started it (others may be waiting, and the block is worth keeping).
 */
export class PullThrough {
  private readonly blocks = new Map<string, Promise<Uint8Array | undefined>>();
  private readonly indexes = new Map<string, Promise<boolean>>();
  private readonly profiles = new Map<string, Promise<boolean>>();
  /** When each index (`NAME.idx`) or profile (`NAME.profile`) was last fetched or checked upstream. */
  private readonly checkedAt = new Map<string, number>();
  private refreshing: Promise<void> | undefined;
  private lastRefresh = Number.NEGATIVE_INFINITY;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly refRefreshMs: number;
  private readonly indexRevalidateMs: number;
  /** Images whose profile the upstreams did not deliver (none, refused, failed), by index digest, until when. */
  private readonly noProfile = new Map<string, { digest: string; until: number; error?: Error | undefined }>();

  constructor(
    private readonly components: PullThroughComponents,
    options: PullThroughOptions,
    private readonly signal: AbortSignal,
  ) {
    this.logger = components.logger ?? SILENT_LOGGER;
    this.now = components.now ?? Date.now;
    this.refRefreshMs = options.refRefreshMs ?? DEFAULT_REF_REFRESH_MS;
    this.indexRevalidateMs = options.indexRevalidateMs ?? DEFAULT_INDEX_REVALIDATE_MS;
  }

  block(id: string): Promise<Uint8Array | undefined> {
    return joinOrStart(this.blocks, id, () => this.fetchBlock(id));
  }

  /** Fetches NAME.idx into the store; false when no upstream publishes it. */
  index(name: string): Promise<boolean> {
    return joinOrStart(this.indexes, name, () => this.fetchIndex(name));
  }

  /**
   * Fetches NAME.profile into the store, beside the NAME.idx it must be bound
   * to; false when there is nothing to serve (no such index, or no upstream
   * publishes a profile).
   */
  profile(name: string): Promise<boolean> {
    return joinOrStart(this.profiles, name, () => this.fetchProfile(name));
  }

  /**
   * Fetches `versions/NAME/versions.json` (retained versions, FORMAT.md §5.9)
   * into the store as the upstream publishes it; false when it publishes none.
   */
  versionList(name: string): Promise<boolean> {
    return joinOrStart(this.indexes, versionListPath(name), () => this.fetchVersionList(name));
  }

  /**
   * Fetches the retained version `versions/NAME/FILE`, checked against the
   * upstream's list (its digest) before it is stored; false when the list
   * names no such file. Its blocks are then pulled on demand like any index's.
   */
  version(name: string, file: string): Promise<boolean> {
    return joinOrStart(this.indexes, `${VERSIONS_DIR}/${name}/${file}`, () => this.fetchVersion(name, file));
  }

  /** Called when a local version list is served: refreshed in the background once it is old, as an index is. */
  revalidateVersionList(name: string): void {
    if (!this.due(versionListPath(name))) return;
    this.versionList(name).catch((e) =>
      this.logger.fault(`revalidating ${versionListPath(name)}: ${(e as Error).message}`),
    );
  }

  /** Called when a local copy of NAME.idx is served: refreshes it in the background once it is old. */
  revalidateIndex(name: string): void {
    if (!this.due(`${name}.idx`)) return;
    this.index(name).catch((e) => this.logger.fault(`revalidating ${name}.idx: ${(e as Error).message}`));
  }

  /**
   * Called when a local copy of NAME.profile is served: as for an index, once
   * it is old, the upstream's copy is fetched in the background and replaces
   * it if it passes the check; a refused copy or "none" leaves it as it is.
   */
  revalidateProfile(name: string): void {
    if (!this.due(`${name}.profile`)) return;
    this.profile(name).catch((e) => this.logger.fault(`revalidating ${name}.profile: ${(e as Error).message}`));
  }

  /** True, and the clock restarted, when `file` was last checked upstream at least indexRevalidateMs ago. */
  private due(file: string): boolean {
    const at = this.checkedAt.get(file);
    if (at !== undefined && this.now() - at < this.indexRevalidateMs) return false;
    this.checkedAt.set(file, this.now());
    return true;
  }

  private async fetchBlock(id: string): Promise<Uint8Array | undefined> {
    const { upstream, store, refs, metrics } = this.components;
    if (!refs.has(id)) await this.refreshRefs();
    const ref = refs.get(id);
    if (!ref) {
      metrics.pull('not_found');
      return undefined;
    }
    let stored: Uint8Array;
    try {
      stored = await upstream.blocks.get(ref, { signal: this.signal });
    } catch (e) {
      this.signal.throwIfAborted();
      if (e instanceof BlockNotFoundError) {
        metrics.pull('not_found');
        return undefined;
      }
      metrics.pull('failed');
      metrics.error(hadCorruption(e) ? 'corrupt' : 'upstream');
      if (e instanceof MirrorUnavailableError) throw e;
      throw new MirrorUnavailableError(upstream.toString(), (e as Error).message, { cause: e });
    }
    try {
      await store.dirStore.put(ref, stored, { signal: this.signal });
    } catch (e) {
      metrics.error('store_write');
      this.logger.fault(`pulled block ${id} could not be stored: ${(e as Error).message}; serving it anyway`);
    }
    metrics.pull('fetched', stored.length);
    return stored;
  }

  private async fetchIndex(name: string): Promise<boolean> {
    const { upstream, store, refs, metrics } = this.components;
    let decoded: DecodedIndex | undefined;
    try {
      decoded = await upstream.fetchIndex(name, this.signal);
    } catch (e) {
      this.signal.throwIfAborted();
      metrics.pull('failed');
      metrics.error('upstream');
      throw e;
    }
    this.checkedAt.set(`${name}.idx`, this.now());
    if (!decoded) {
      metrics.pull('not_found');
      return false;
    }
    refs.addIndex(decoded.index, decoded.digest);
    try {
      await writeIndexFiles(join(store.root, `${name}.idx`), decoded.bytes, { signal: this.signal });
    } catch (e) {
      metrics.error('store_write');
      throw e;
    }
    metrics.pull('fetched', decoded.bytes.length);
    try {
      await dropStaleProfile(store.root, name, decoded.digest);
    } catch (e) {
      this.logger.fault(`dropping the stale ${name}.profile: ${(e as Error).message}`);
    }
    return true;
  }

  private async fetchVersionList(name: string): Promise<boolean> {
    const { upstream, store, metrics } = this.components;
    const relative = versionListPath(name);
    const bytes = await this.fromUpstream(() => upstream.fetchStoreFile(relative, MAX_VERSION_LIST_BYTES, this.signal));
    this.checkedAt.set(relative, this.now());
    if (!bytes) {
      metrics.pull('not_found');
      return false;
    }
    // Strictly decoded before it is stored: its file names become paths in this store.
    decodeVersionList(bytes.toString('utf8'), `upstream ${relative}`);
    await mkdir(join(store.root, VERSIONS_DIR, name), { recursive: true });
    await writeFileAtomic(join(store.root, relative), bytes, { durable: true, signal: this.signal });
    metrics.pull('fetched', bytes.length);
    return true;
  }

  private async fetchVersion(name: string, file: string): Promise<boolean> {
    const { upstream, store, refs, metrics } = this.components;
    if (!(await this.versionList(name))) return false;
    const listed = (await new VersionStore(store.root).list(name)).versions.find((v) => v.file === file);
    if (!listed) return false;
    const relative = `${VERSIONS_DIR}/${name}/${file}`;
    const bytes = await this.fromUpstream(() => upstream.fetchStoreFile(relative, MAX_INDEX_BYTES, this.signal));
    if (!bytes) {
      metrics.pull('not_found');
      return false;
    }
    let decoded: DecodedIndex;
    try {
      decoded = decodeIndex(bytes);
    } catch (e) {
      metrics.error('corrupt');
      throw new MirrorUnavailableError(upstream.toString(), `${relative}: ${(e as Error).message}`);
    }
    if (decoded.digest !== listed.digest || decoded.index.header.name !== name) {
      metrics.error('corrupt');
      throw new MirrorUnavailableError(
        upstream.toString(),
        `${relative} holds ${decoded.digest}, not ${listed.digest}`,
      );
    }
    refs.addIndex(decoded.index, decoded.digest);
    await writeFileAtomic(join(store.root, relative), decoded.bytes, { durable: true, signal: this.signal });
    metrics.pull('fetched', bytes.length);
    return true;
  }

  /** An upstream fetch, counted as a failed pull when no upstream could answer. */
  private async fromUpstream<T>(fetch: () => Promise<T>): Promise<T> {
    try {
      return await fetch();
    } catch (e) {
      this.signal.throwIfAborted();
      this.components.metrics.pull('failed');
      this.components.metrics.error('upstream');
      throw e;
    }
  }

  private async fetchProfile(name: string): Promise<boolean> {
    const { upstream, store, metrics } = this.components;
    const indexPath = join(store.root, `${name}.idx`);
    // The index first: a profile is checked against, and published beside, the index this store serves.
    let indexBytes = await readIfPresent(indexPath);
    if (!indexBytes) {
      if (!(await this.index(name))) return false;
      indexBytes = await readFile(indexPath);
    }
    const index = decodeIndex(indexBytes);
    // Every mount asks for NAME.profile: an image without one, or whose upstream copy is refused or cannot be
    // had, must not cost each of them a trip upstream (or its timeout). The answer is kept for
    // indexRevalidateMs, for this index.
    const known = this.noProfile.get(name);
    if (known && known.digest === index.digest && this.now() < known.until) {
      if (known.error) throw known.error;
      return false;
    }
    const remember = (error?: Error) =>
      this.noProfile.set(name, { digest: index.digest, until: this.now() + this.indexRevalidateMs, error });
    this.checkedAt.set(`${name}.profile`, this.now());
    let got: ProfileFetch;
    try {
      got = await upstream.fetchProfile(name, (bytes, url) => checkReplicaProfile(bytes, index, url), this.signal);
    } catch (e) {
      this.signal.throwIfAborted();
      metrics.pull('failed');
      metrics.error('upstream');
      remember(e as Error);
      throw e;
    }
    if (got.kind === 'none') {
      metrics.pull('not_found');
      remember();
      return false;
    }
    if (got.kind === 'refused') {
      metrics.pull('failed');
      metrics.error('corrupt');
      const refused = new MirrorUnavailableError(`upstream for ${name}.profile`, `refused: ${got.why}`);
      remember(refused);
      throw refused;
    }
    this.noProfile.delete(name);
    try {
      if (!(await publishProfile(store.root, name, got.bytes, this.signal))) return true; // revalidated: unchanged
    } catch (e) {
      metrics.error('store_write');
      throw e;
    }
    metrics.pull('fetched', got.bytes.length);
    return true;
  }

  /**
   * Learns the refs of indexes not seen yet: the store's own first, then the
   * upstream listing's. Rate-limited and shared by every waiting request.
   */
  private refreshRefs(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (this.now() - this.lastRefresh < this.refRefreshMs) return Promise.resolve();
    this.lastRefresh = this.now();
    this.refreshing = this.learnRefs().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async learnRefs(): Promise<void> {
    const { upstream, store, refs } = this.components;
    try {
      for (const entry of await store.listIndexes()) {
        if (refs.knows(entry.digest)) continue;
        const d = await readIndexFile(join(store.root, entry.file));
        refs.addIndex(d.index, d.digest);
      }
      // Retained versions pulled earlier: a client pinned to one still gets its blocks after a restart.
      const versions = new VersionStore(store.root);
      for (const name of await versions.names()) {
        for (const v of (await versions.list(name)).versions) {
          if (refs.knows(v.digest)) continue;
          const d = await readIndexFile(join(versions.dir(name), v.file)).catch(() => undefined);
          if (d?.digest === v.digest) refs.addIndex(d.index, d.digest);
        }
      }
    } catch (e) {
      this.logger.fault(`reading the store's indexes: ${(e as Error).message}`);
    }
    try {
      const listing = await upstream.fetchListing(this.signal);
      for (const entry of listing.indexes) {
        if (refs.knows(entry.digest)) continue;
        const d = await upstream.fetchIndex(entry.name, this.signal);
        if (d) refs.addIndex(d.index, d.digest);
      }
    } catch (e) {
      this.signal.throwIfAborted();
      this.logger.fault(`learning block refs from upstream: ${(e as Error).message}`);
    }
  }
}

async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError(e, path);
  }
}

/** True when the failure, or any failure it aggregates, is bad bytes from an upstream. */
function hadCorruption(e: unknown): boolean {
  if (e instanceof BlockCorruptError) return true;
  const cause = (e as { cause?: unknown })?.cause;
  if (cause instanceof AggregateError) return cause.errors.some(hadCorruption);
  return cause !== undefined && cause !== e && hadCorruption(cause);
}

/** The one run for `key` while it lasts: later callers join it; a new one starts once it has settled. */
function joinOrStart<T>(running: Map<string, Promise<T>>, key: string, start: () => Promise<T>): Promise<T> {
  let p = running.get(key);
  if (!p) {
    p = start().finally(() => running.delete(key));
    running.set(key, p);
  }
  return p;
}
