import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DecodedIndex,
  decideTrust,
  decodeIndex,
  decodeIndexBody,
  INDEX_ACCEPT_ENCODING,
  IndexFormatError,
  InputError,
  MirrorUnavailableError,
  requireTrusted,
  SignatureError,
  type TrustStore,
  trustStoreOfKeys,
  UsageError,
  verifyIndexSignatures,
} from '@thfc/format';
import type { Dispatcher } from 'undici';
import { consumeBody, discardBody, type HttpGetOptions, HttpStatusError, httpGet } from './http-get.js';
import { IndexCache } from './index-cache.js';
import { readIndexFile } from './index-file.js';
import { type Logger, SILENT_LOGGER } from './logger.js';
import { choosePin, resolvePinned } from './pinned-index.js';

/** Where an index lives and where its blocks are, by default, fetched from. */
export interface IndexLocation {
  readonly kind: 'http' | 'file';
  /** As given, normalised: an http(s) URL, or an absolute path. */
  readonly location: string;
  /** The directory holding NAME.idx and blocks/: an http(s) URL ending in `/`, or an absolute path. */
  readonly base: string;
  /** `sha256:<hex>` from a `#sha256:<hex>` suffix: mount exactly that version (docs/FORMAT.md §5.9). */
  readonly pin?: string | undefined;
}

/** An index is a few MB even for a 50 GB image; this bound stops a hostile server from streaming forever. */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

export function parseIndexLocation(arg: string): IndexLocation {
  const bad = (why: string) =>
    new UsageError(`bad index URL "${arg}": ${why} (expected http(s)://HOST/…/NAME.idx, file:///…/NAME.idx or a path)`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(arg) && !/^[a-z]:[\\/]/i.test(arg)) {
    // The URL parser reads `http:///x.idx` as host `x.idx`: catch the missing host before it does.
    if (/^https?:\/\/(\/|$)/i.test(arg)) throw bad('no host');
    let url: URL;
    try {
      url = new URL(arg);
    } catch {
      throw bad('not a valid URL');
    }
    if (url.protocol === 'file:') {
      let path: string;
      try {
        path = fileURLToPath(url);
      } catch (e) {
        throw bad((e as Error).message); // e.g. a host in a file URL: file://server/x.idx
      }
      return { kind: 'file', location: path, base: dirname(path), pin: pinOfFragment(url.hash) };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`unsupported scheme ${url.protocol}`);
    if (!url.hostname) throw bad('no host');
    if (url.pathname.endsWith('/')) throw bad('it names a directory, not an index file');
    const pin = pinOfFragment(url.hash);
    url.hash = '';
    return { kind: 'http', location: url.href, base: new URL('.', url).href, pin };
  }
  if (arg === '') throw bad('empty');
  const m = /^(.*)#(sha256:.*)$/.exec(arg);
  const path = resolve(m ? (m[1] as string) : arg);
  return { kind: 'file', location: path, base: dirname(path), pin: m?.[2] };
}

/** `#sha256:<hex>` → `sha256:<hex>` (checked later by choosePin); other fragments mean nothing here. */
function pinOfFragment(hash: string): string | undefined {
  return hash.startsWith('#sha256:') ? hash.slice(1) : undefined;
}

export interface LoadIndexOptions {
  readonly offline?: boolean | undefined;
  /**
   * Cache directory: fetched indexes are kept under CACHE/indexes/ (index-cache.ts) so an offline mount
   * can find them, and a mount of an unchanged index is a revalidation (304), not a download.
   */
  readonly cacheDir?: string | undefined;
  readonly timeoutMs?: number | undefined;
  /** Raw Ed25519 public keys; when given, the index must carry a valid signature by one of them. */
  readonly trust?: readonly Uint8Array[] | undefined;
  /** A trust store (keys with expiry, scope and revocations); used instead of `trust` when given. */
  readonly trustStore?: TrustStore | undefined;
  /**
   * An index carrying a signature that does not verify: `refuse` it
   * (SignatureError), or `allow` it with a log line. Not checked when not
   * given (a mirror relays indexes; their users check them).
   */
  readonly invalidSignature?: 'refuse' | 'allow' | undefined;
  readonly signal?: AbortSignal | undefined;
  /** `sha256:<hex>`: mount exactly this version (`--pin`); the URL's `#sha256:` suffix does the same. */
  readonly pin?: string | undefined;
  /**
   * Follow redirects (default true, MAX_INDEX_REDIRECTS). A program that
   * fetches blocks from the URL it was given rather than from the index's
   * base (thfc-mirror's upstreams) passes false: a redirect is then an
   * unavailable mirror, as for a block.
   */
  readonly followRedirects?: boolean | undefined;
}

export interface LoadedIndex {
  readonly decoded: DecodedIndex;
  readonly location: IndexLocation;
  /** `network`, `file`, or `cache` when the network copy could not be had. */
  readonly from: 'network' | 'file' | 'cache';
  /** From the network, as a 304 for the cached copy: no index bytes crossed it. */
  readonly revalidated?: boolean | undefined;
  /** The key id whose signature the trust policy accepted; undefined when no policy was asked for. */
  readonly signer?: string | undefined;
  /** The pinned digest, when the mount is pinned. */
  readonly pinned?: string | undefined;
  /** Whether a trust policy authenticated it (false: no --trust or --trust-store, nothing was checked). */
  readonly authenticated: boolean;
  /** The URL's validator for these bytes (ETag), when it gave one: a later check revalidates with it. */
  readonly etag?: string | undefined;
}

/**
 * A loaded index as a mount holds it: without the file's bytes, which only
 * loading needs (216 MB for a 4,194,304-block index, doubling the daemon).
 */
export type HeldIndex = Omit<LoadedIndex, 'decoded'> & { readonly decoded: Omit<DecodedIndex, 'bytes'> };

export function heldIndex(l: LoadedIndex): HeldIndex {
  const { bytes: _bytes, ...decoded } = l.decoded;
  return { ...l, decoded };
}

/**
 * Redirects followed for an index: a site moved to https, or to a mirror
 * director, answers with one or two; five is what browsers and curl's
 * defaults comfortably exceed, and a loop is cut off after it.
 */
export const MAX_INDEX_REDIRECTS = 5;

/** 10 s: an index is one small request; past that the mirror is not answering. */
export const DEFAULT_INDEX_TIMEOUT_MS = 10_000;

/**
 * Fetches and strictly decodes an index, then applies the trust policy. A
 * fetched index is kept in the cache; when the network copy cannot be had
 * (offline, or every attempt failed) the cached copy is used, with a warning,
 * so a warm machine boots with no network at all.
 */
export async function loadIndex(
  arg: string,
  components: { dispatcher?: Dispatcher; logger?: Logger; now?: () => Date },
  options: LoadIndexOptions = {},
): Promise<LoadedIndex> {
  const logger = components.logger ?? SILENT_LOGGER;
  let location = parseIndexLocation(arg);
  const pin = choosePin(location.pin, options.pin);
  let loaded: LoadedIndex;
  if (pin) {
    loaded = await loadPinned(location, pin, components, options, logger);
    location = loaded.location;
  } else if (location.kind === 'file') {
    loaded = { decoded: await readIndexFile(location.location), location, from: 'file', authenticated: false };
  } else {
    loaded = await loadFromUrl(location, components, options, logger);
    location = loaded.location;
  }
  if (options.invalidSignature)
    checkSignaturesVerify(loaded.decoded, location.location, logger, options.invalidSignature === 'allow');
  const store = options.trustStore ?? (options.trust ? trustStoreOfKeys(options.trust) : undefined);
  if (!store) return loaded;
  return {
    ...loaded,
    signer: checkTrust(loaded.decoded, store, location.location, components.now?.()),
    authenticated: true,
  };
}

/**
 * An unpinned index at a URL: fetched (revalidated against the cached copy), or the cached copy when offline or
 * when the network fails. The location returned carries the base a redirect moved the blocks to.
 */
async function loadFromUrl(
  given: IndexLocation,
  components: { dispatcher?: Dispatcher },
  options: LoadIndexOptions,
  logger: Logger,
): Promise<LoadedIndex> {
  const cache = options.cacheDir ? new IndexCache(join(options.cacheDir, 'indexes')) : undefined;
  const cached = await cache?.lookup(given.location);
  const cachePath = cached?.path ?? cache?.legacyPath(given.location);
  if (options.offline) {
    if (!cachePath)
      throw new MirrorUnavailableError(given.location, 'offline, and there is no cache to read the index from');
    const decoded = await readCachedIndex(cachePath, given.location);
    return { decoded, location: given, from: 'cache', authenticated: false };
  }
  try {
    return await fetchRevalidated(given, { ...components, cache, logger }, options, { etag: cached?.etag, cachePath });
  } catch (e) {
    if (!(e instanceof MirrorUnavailableError) || !cachePath) throw e;
    const decoded = await readCachedIndex(cachePath, given.location).catch((damaged) => {
      if (damaged instanceof IndexFormatError) logger.fault(damaged.message);
      throw e;
    });
    logger.fault(`${e.message}; using the cached copy of the index`);
    return { decoded, location: given, from: 'cache', authenticated: false };
  }
}

/**
 * The index from the network, asked for with the cached copy's ETag: a 304 keeps that copy (a damaged one is
 * fetched again, unconditionally), a new one is decoded and cached. Follows where a redirect put the blocks.
 */
async function fetchRevalidated(
  given: IndexLocation,
  parts: { dispatcher?: Dispatcher; cache: IndexCache | undefined; logger: Logger },
  options: LoadIndexOptions,
  cached: { etag: string | undefined; cachePath: string | undefined },
): Promise<LoadedIndex> {
  const { dispatcher, cache, logger } = parts;
  let location = given;
  let fetched = await fetchIndexWithRetries(location.location, dispatcher, options, logger, cached.etag);
  let unchanged: DecodedIndex | undefined;
  if (fetched.bytes === undefined) {
    unchanged = await readCachedIndex(cached.cachePath as string, location.location).catch(() => undefined);
    if (!unchanged) fetched = await fetchIndexWithRetries(location.location, dispatcher, options, logger);
  }
  const { url, etag } = fetched;
  if (url !== location.location) {
    // Blocks (and NAME.profile) sit beside the index where it really is; the cache keeps the URL as given.
    location = { ...location, base: new URL('.', url).href };
    logger.info(`${location.location} redirected to ${url}: blocks are fetched from ${location.base}`);
  }
  if (unchanged)
    return { decoded: unchanged, location, from: 'network', revalidated: true, authenticated: false, etag };
  const bytes = fetched.bytes as Uint8Array;
  const decoded = decodeAt(bytes, location.location);
  await cache
    ?.store(location.location, bytes, decoded.digest, etag)
    .catch((e) => logger.fault(`cannot cache index: ${(e as Error).message}`));
  return { decoded, location, from: 'network', authenticated: false, etag };
}

/**
 * A pinned mount. The cached copy of the pinned version is used without a
 * request (its digest is its identity, so it cannot be stale); otherwise the
 * location is read and, when it holds another version, the pinned one is
 * taken from the store's retained versions.
 */
async function loadPinned(
  location: IndexLocation,
  pin: string,
  components: { dispatcher?: Dispatcher },
  options: LoadIndexOptions,
  logger: Logger,
): Promise<LoadedIndex> {
  // The cache keeps indexes by digest: the pinned version's copy is the pinned version, or it does not decode.
  const cache = options.cacheDir ? new IndexCache(join(options.cacheDir, 'indexes')) : undefined;
  if (cache) {
    const cached = await readFile(cache.pathOf(pin)).then(
      (b) => decodeIndex(b),
      () => undefined,
    );
    if (cached?.digest === pin) return { decoded: cached, location, from: 'cache', pinned: pin, authenticated: false };
  }
  if (options.offline)
    throw new MirrorUnavailableError(location.location, `offline, and pinned version ${pin} was never fetched here`);
  let current: DecodedIndex;
  let fetch: (relative: string) => Promise<Uint8Array>;
  let where = location;
  if (location.kind === 'file') {
    current = await readIndexFile(location.location);
    fetch = (relative) => readFile(join(location.base, relative));
  } else {
    const { bytes, url } = await fetchIndexWithRetries(location.location, components.dispatcher, options, logger);
    if (url !== location.location) where = { ...location, base: new URL('.', url).href };
    current = decodeAt(bytes as Uint8Array, location.location);
    fetch = async (relative) =>
      (await fetchIndexWithRetries(new URL(relative, where.base).href, components.dispatcher, options, logger))
        .bytes as Uint8Array;
  }
  const { decoded, latest } = await resolvePinned(current, pin, fetch, location.location);
  if (latest !== pin)
    logger.info(`index ${decoded.index.header.name} pinned to ${pin}; the store's latest is ${latest}`);
  if (cache && location.kind === 'http')
    await cache.keep(decoded.bytes, pin).catch((e) => logger.fault(`cannot cache index: ${(e as Error).message}`));
  return {
    decoded,
    location: where,
    from: location.kind === 'file' ? 'file' : 'network',
    pinned: pin,
    authenticated: false,
  };
}

function decodeAt(bytes: Uint8Array, where: string): DecodedIndex {
  try {
    return decodeIndex(bytes);
  } catch (e) {
    if (e instanceof IndexFormatError) throw new IndexFormatError(e.reason, e.line, e.field, where);
    throw e;
  }
}

/**
 * A signature that does not verify is evidence that the index changed after
 * it was signed: the mount is refused (SignatureError, exit 4) whatever the
 * trust policy, even with none, unless `allow` says to go on (logged).
 */
function checkSignaturesVerify(decoded: DecodedIndex, where: string, logger: Logger, allow = false): void {
  const bad = verifyIndexSignatures(decoded).filter((s) => !s.valid);
  if (bad.length === 0) return;
  const what = `index ${decoded.index.header.name} (${where}): the signature by key ${bad.map((s) => s.keyId).join(', ')} does not verify: the index changed after it was signed`;
  if (!allow) throw new SignatureError(`${what}; refusing to mount it (--allow-invalid-signature mounts it anyway)`);
  logger.fault(`${what}; mounting it anyway (--allow-invalid-signature)`);
}

/** The index kept under CACHE/indexes/; a corrupt copy is named, with how to clear it. */
async function readCachedIndex(path: string, url: string): Promise<DecodedIndex> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new MirrorUnavailableError(url, 'offline, and the index was never fetched on this machine');
  }
  try {
    return decodeIndex(bytes);
  } catch (e) {
    if (!(e instanceof IndexFormatError)) throw e;
    throw new IndexFormatError(
      `${e.reason}; this is the copy cached on this machine, not the published index: remove it (rm ${path}) and mount online to fetch it again`,
      e.line,
      e.field,
      `the cached copy of ${url} (${path})`,
    );
  }
}

/**
 * Attempts at the index before falling back to a cached copy: a single 503 or
 * reset must not fail a cold mount (on a 1 %-fault link it did, once in ~50
 * mounts). Three attempts with 200 ms and 400 ms pauses add at most ~0.6 s
 * plus the timeouts; a 404 or a malformed index is final at once.
 */
export const INDEX_ATTEMPTS = 3;
const INDEX_RETRY_PAUSE_MS = 200;

async function fetchIndexWithRetries(
  url: string,
  dispatcher: Dispatcher | undefined,
  options: LoadIndexOptions,
  logger: Logger,
  etag?: string,
): Promise<FetchedIndex> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetchIndexBytes(url, dispatcher, options, etag);
    } catch (e) {
      if (!(e instanceof MirrorUnavailableError) || attempt >= INDEX_ATTEMPTS) throw e;
      logger.fault(`${e.message}; retrying (attempt ${attempt + 1} of ${INDEX_ATTEMPTS})`);
      await new Promise((r) => setTimeout(r, INDEX_RETRY_PAUSE_MS * 2 ** (attempt - 1)));
      options.signal?.throwIfAborted();
    }
  }
}

/**
 * Asks whether the index at `url` changed since the response whose ETag was
 * `etag` (undefined: fetch it). `unchanged` on a 304; otherwise its bytes,
 * decoded, and the new ETag. For a running daemon's version check: one
 * attempt, bounded like every index fetch.
 */
export async function revalidateIndex(
  url: string,
  etag: string | undefined,
  dispatcher: Dispatcher | undefined,
  options: Pick<LoadIndexOptions, 'timeoutMs' | 'signal'>,
): Promise<{ unchanged: true } | { unchanged: false; decoded: DecodedIndex; etag: string | undefined }> {
  const got = await fetchIndexBytes(url, dispatcher, options, etag);
  if (got.bytes === undefined) return { unchanged: true };
  return { unchanged: false, decoded: decodeAt(got.bytes, url), etag: got.etag };
}

interface FetchedIndex {
  /** The decoded body; undefined for a 304 to `etag`. */
  readonly bytes: Uint8Array | undefined;
  /** Where they came from, after redirects. */
  readonly url: string;
  /** The server's validator, to send back next time. */
  readonly etag: string | undefined;
}

/**
 * The index's bytes and the URL they came from, after at most
 * MAX_INDEX_REDIRECTS redirects. It asks for the index zstd- or
 * gzip-encoded (FORMAT.md §9) and decodes it, bounded by MAX_INDEX_BYTES;
 * with `etag`, it asks only for a changed index (If-None-Match).
 */
async function fetchIndexBytes(
  given: string,
  dispatcher: Dispatcher | undefined,
  options: LoadIndexOptions,
  etag?: string,
): Promise<FetchedIndex> {
  const get: HttpGetOptions = {
    timeoutMs: options.timeoutMs ?? DEFAULT_INDEX_TIMEOUT_MS,
    signal: options.signal,
    dispatcher,
    headers: { 'accept-encoding': INDEX_ACCEPT_ENCODING },
    etag,
    maxRedirects: options.followRedirects === false ? 0 : MAX_INDEX_REDIRECTS,
  };
  const res = await httpGet(given, get);
  const { url } = res;
  if (res.statusCode === 404 || res.statusCode === 410) {
    await discardBody(res);
    throw new InputError(`${url}: HTTP ${res.statusCode} (no such index)`);
  }
  const validator = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
  if (res.statusCode === 304 && etag !== undefined) {
    await discardBody(res);
    return { bytes: undefined, url, etag: validator ?? etag };
  }
  if (res.statusCode !== 200) {
    await discardBody(res);
    throw new HttpStatusError(url, res.statusCode);
  }
  const encoding = res.headers['content-encoding'];
  const bytes = await consumeBody(res, (body) =>
    decodeIndexBody(body, typeof encoding === 'string' ? encoding : undefined, MAX_INDEX_BYTES, url),
  );
  return { bytes, url, etag: validator };
}

/**
 * The mount-time trust decision (trust-policy.ts in @thfc/format): returns the
 * id of the key whose signature was accepted, or throws a TrustRefusedError
 * saying which rule refused it. Bare keys (`--trust`) are a store without
 * expiry, scope or revocations.
 */
export function checkTrust(
  decoded: DecodedIndex,
  trusted: readonly Uint8Array[] | TrustStore,
  where: string,
  now: Date = new Date(),
): string {
  const store = 'grants' in trusted ? trusted : trustStoreOfKeys(trusted);
  const name = decoded.index.header.name;
  return requireTrusted(decideTrust(verifyIndexSignatures(decoded), name, store, now), `${name} (${where})`);
}
