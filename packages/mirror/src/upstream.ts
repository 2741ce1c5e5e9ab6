import {
  type BlockSource,
  type DecodedIndex,
  IndexFormatError,
  InputError,
  InvalidArgumentError,
  MAX_PROFILE_BYTES,
  MirrorUnavailableError,
  ThfcError,
} from '@thfc/format';
import {
  Failover,
  type GetBoundedOptions,
  getBounded as getBoundedFromStore,
  HttpSource,
  type Logger,
  loadIndex,
  MirrorStats,
  ResponseTooLargeError,
  SILENT_LOGGER,
  VerifiedSource,
} from '@thfc/store';
import { decodeListing, type ListingEntry, MAX_LISTING_BYTES } from './store-listing.js';

/**
 * Connections per upstream for pull-through: a mirror pulls only what its
 * own clients miss, one block per miss, so a few connections suffice; the
 * upstream is another mirror and should not see one peer open dozens.
 */
export const DEFAULT_UPSTREAM_CONNECTIONS = 4;

/** An index or listing is one small request: 10 s without an answer means the upstream is not answering. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000;

/** What Upstream.fetchProfile found. */
export type ProfileFetch =
  | { readonly kind: 'found'; readonly url: string; readonly bytes: Uint8Array }
  | { readonly kind: 'none' }
  | { readonly kind: 'refused'; readonly why: string };

export interface UpstreamOptions {
  /** Base URLs (the directory holding NAME.idx and blocks/), in preference order. */
  readonly urls: readonly string[];
  readonly connections?: number | undefined;
  readonly timeoutMs?: number | undefined;
}

/**
 * The mirrors this one copies from. Blocks come through httpstorged's own
 * sources, `failover(verified(http(a)), verified(http(b)), …)`, so a bad
 * upstream is verified against, demoted and
 * failed over exactly as a client would; indexes through blockfs' loadIndex
 * (bounded, strictly decoded); the store listing and boot profiles here.
 *
 * Errors: fetchIndex resolves to undefined when every upstream answered
 * "no such index", and throws MirrorUnavailableError (naming each failure)
 * when none had it and one could not answer or sent a malformed index.
 */
export class Upstream {
  readonly urls: readonly string[];
  /** Requests in flight per upstream. */
  readonly connections: number;
  /** Blocks: failover over the upstreams, each verified. Needs a full BlockRef. */
  readonly blocks: BlockSource;
  private readonly http: HttpSource[] = [];
  private readonly logger: Logger;
  private readonly timeoutMs: number;

  constructor(components: { readonly logger?: Logger }, options: UpstreamOptions) {
    if (options.urls.length === 0) throw new InvalidArgumentError('an upstream needs at least one URL');
    this.urls = options.urls.map(normaliseBase);
    this.logger = components.logger ?? SILENT_LOGGER;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.connections = options.connections ?? DEFAULT_UPSTREAM_CONNECTIONS;
    const mirrors = this.urls.map((baseUrl) => {
      const http = new HttpSource({}, { baseUrl, connections: this.connections, timeoutMs: this.timeoutMs });
      this.http.push(http);
      return { source: new VerifiedSource({ source: http }), stats: new MirrorStats(baseUrl) };
    });
    this.blocks = new Failover({ mirrors, logger: this.logger }, { timeoutMs: this.timeoutMs });
  }

  /** `NAME.idx` from the first upstream that has it, strictly decoded. */
  async fetchIndex(name: string, signal: AbortSignal): Promise<DecodedIndex | undefined> {
    const failures: string[] = [];
    for (const base of this.urls) {
      const url = `${base}${name}.idx`;
      try {
        // Blocks and profiles are fetched from this base, so a redirected index is not followed (it would pair
        // an index from one place with blocks from another).
        const loaded = await loadIndex(
          url,
          { logger: this.logger },
          { timeoutMs: this.timeoutMs, signal, followRedirects: false },
        );
        return loaded.decoded;
      } catch (e) {
        signal.throwIfAborted();
        if (e instanceof InputError) continue; // 404: this upstream does not publish it
        if (!(e instanceof MirrorUnavailableError || e instanceof IndexFormatError)) throw e;
        failures.push(e.message);
        this.logger.fault(`upstream index ${url}: ${e.message}`);
      }
    }
    if (failures.length === 0) return undefined;
    throw new MirrorUnavailableError(`upstream for ${name}.idx`, failures.join('; '));
  }

  /**
   * `NAME.profile` from the first upstream whose copy passes `check` (which
   * throws a ThfcError to refuse one: replica-profile.ts). Failover as for
   * indexes: an upstream that answers 404 or 410 (as a client reads it: no
   * profile) or whose copy is refused passes to the next. `none` when every
   * upstream answered "no profile", `refused` when at least one sent a copy
   * and every copy was refused; MirrorUnavailableError (naming each failure)
   * when none was taken and one could not answer.
   */
  async fetchProfile(
    name: string,
    check: (bytes: Uint8Array, url: string) => unknown,
    signal: AbortSignal,
  ): Promise<ProfileFetch> {
    const failures: string[] = [];
    const refusals: string[] = [];
    for (const base of this.urls) {
      const url = `${base}${name}.profile`;
      let bytes: Buffer | undefined;
      try {
        bytes = await getBounded(url, {
          maxBytes: MAX_PROFILE_BYTES, // httpstorged's bound too: a larger profile would be refused by every client
          timeoutMs: this.timeoutMs,
          signal,
          absent: [404, 410],
        });
      } catch (e) {
        signal.throwIfAborted();
        if (e instanceof IndexFormatError) refusals.push(e.message);
        else if (e instanceof MirrorUnavailableError) failures.push(e.message);
        else throw e;
        continue;
      }
      if (!bytes) continue;
      try {
        check(bytes, url);
        return { kind: 'found', url, bytes };
      } catch (e) {
        if (!(e instanceof ThfcError)) throw e;
        refusals.push(`${url}: ${e.message}`);
      }
    }
    if (failures.length > 0) {
      throw new MirrorUnavailableError(`upstream for ${name}.profile`, [...failures, ...refusals].join('; '));
    }
    return refusals.length > 0 ? { kind: 'refused', why: refusals.join('; ') } : { kind: 'none' };
  }

  /**
   * A store file by relative path (a retained version or its list) from the
   * first upstream that has it; undefined when every upstream answered 404.
   * MirrorUnavailableError when none had it and one could not answer.
   */
  async fetchStoreFile(relative: string, maxBytes: number, signal: AbortSignal): Promise<Buffer | undefined> {
    const failures: string[] = [];
    for (const base of this.urls) {
      try {
        const bytes = await getBounded(`${base}${relative}`, {
          maxBytes,
          timeoutMs: this.timeoutMs,
          signal,
          absent: [404, 410],
        });
        if (bytes) return bytes;
      } catch (e) {
        signal.throwIfAborted();
        if (!(e instanceof MirrorUnavailableError || e instanceof IndexFormatError)) throw e;
        failures.push(e.message);
      }
    }
    if (failures.length > 0) throw new MirrorUnavailableError(`upstream for ${relative}`, failures.join('; '));
    return undefined;
  }

  /** The store listing of the first upstream that answers with one. */
  async fetchListing(signal: AbortSignal): Promise<{ base: string; indexes: ListingEntry[] }> {
    const failures: Error[] = [];
    for (const base of this.urls) {
      try {
        return { base, indexes: await fetchListing(base, this.timeoutMs, signal) };
      } catch (e) {
        signal.throwIfAborted();
        failures.push(e as Error);
      }
    }
    if (failures.length === 1) throw failures[0];
    throw new MirrorUnavailableError(
      `upstreams ${this.urls.join(', ')}`,
      `no store listing: ${failures.map((e) => e.message).join('; ')}`,
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.http.map((h) => h.close()));
  }

  toString(): string {
    return this.blocks.toString();
  }
}

/** `GET BASE/index.json`, bounded and strictly decoded. */
export async function fetchListing(base: string, timeoutMs: number, signal: AbortSignal): Promise<ListingEntry[]> {
  const url = `${base}index.json`;
  const body = await getBounded(url, { maxBytes: MAX_LISTING_BYTES, timeoutMs, signal, absent: [404] });
  if (!body) {
    throw new MirrorUnavailableError(url, 'HTTP 404: the upstream publishes no store listing (is it a thfc-mirror?)');
  }
  return decodeListing(body.toString('utf8'), url);
}

/**
 * One bounded GET from an upstream (store's getBounded): a body over
 * `maxBytes` is refused as a malformed file (IndexFormatError), as a client
 * would refuse it.
 */
async function getBounded(url: string, options: GetBoundedOptions): Promise<Buffer | undefined> {
  try {
    return await getBoundedFromStore(url, options);
  } catch (e) {
    if (e instanceof ResponseTooLargeError)
      throw new IndexFormatError(`larger than ${e.maxBytes} bytes`, undefined, undefined, url);
    throw e;
  }
}

/** An http(s) URL naming a directory, with exactly one trailing slash; UsageError-class otherwise. */
export function normaliseBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidArgumentError(`bad upstream URL "${url}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidArgumentError(`bad upstream URL "${url}": expected http:// or https://`);
  }
  if (u.search || u.hash || u.username || u.password) {
    throw new InvalidArgumentError(`bad upstream URL "${url}": a mirror URL names a directory (no ?, # or user:pass@)`);
  }
  if (u.pathname.endsWith('.idx')) {
    throw new InvalidArgumentError(`bad upstream URL "${url}": name the mirror's directory, not an index file`);
  }
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}
