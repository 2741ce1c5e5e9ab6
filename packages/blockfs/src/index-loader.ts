import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DecodedIndex,
  decodeIndex,
  IndexFormatError,
  InputError,
  MirrorUnavailableError,
  SignatureError,
  UsageError,
  verifyIndexSignatures,
} from '@thfc/format';
import { readIndexFile, writeFileAtomic } from '@thfc/packer';
import { type Dispatcher, request } from 'undici';
import { type Logger, SILENT_LOGGER } from './logger.js';

/** Where an index lives and where its blocks are, by default, fetched from. */
export interface IndexLocation {
  readonly kind: 'http' | 'file';
  /** As given, normalised: an http(s) URL, or an absolute path. */
  readonly location: string;
  /** The directory holding NAME.idx and blocks/: an http(s) URL ending in `/`, or an absolute path. */
  readonly base: string;
}

/** An index is a few MB even for a 50 GB image; this bound stops a hostile server from streaming forever. */
export const MAX_INDEX_BYTES = 256 * 1024 * 1024;

export function parseIndexLocation(arg: string): IndexLocation {
  const bad = (why: string) =>
    new UsageError(`bad index URL "${arg}": ${why} (expected http(s)://HOST/…/NAME.idx, file:///…/NAME.idx or a path)`);
  if (/^[a-z][a-z0-9+.-]*:/i.test(arg) && !/^[a-z]:[\\/]/i.test(arg)) {
    let url: URL;
    try {
      url = new URL(arg);
    } catch {
      throw bad('not a valid URL');
    }
    if (url.protocol === 'file:') {
      const path = fileURLToPath(url);
      return { kind: 'file', location: path, base: dirname(path) };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`unsupported scheme ${url.protocol}`);
    if (!url.hostname) throw bad('no host');
    if (url.pathname.endsWith('/')) throw bad('it names a directory, not an index file');
    url.hash = '';
    return { kind: 'http', location: url.href, base: new URL('.', url).href };
  }
  if (arg === '') throw bad('empty');
  const path = resolve(arg);
  return { kind: 'file', location: path, base: dirname(path) };
}

export interface LoadIndexOptions {
  readonly offline?: boolean | undefined;
  /** Cache directory: fetched indexes are kept under CACHE/indexes/ so an offline mount can find them. */
  readonly cacheDir?: string | undefined;
  readonly timeoutMs?: number | undefined;
  /** Raw Ed25519 public keys; when given, the index must carry a valid signature by one of them. */
  readonly trust?: readonly Uint8Array[] | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface LoadedIndex {
  readonly decoded: DecodedIndex;
  readonly location: IndexLocation;
  /** `network`, `file`, or `cache` when the network copy could not be had. */
  readonly from: 'network' | 'file' | 'cache';
}

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
  components: { dispatcher?: Dispatcher; logger?: Logger },
  options: LoadIndexOptions = {},
): Promise<LoadedIndex> {
  const logger = components.logger ?? SILENT_LOGGER;
  const location = parseIndexLocation(arg);
  let loaded: LoadedIndex;
  if (location.kind === 'file') {
    loaded = { decoded: await readIndexFile(location.location), location, from: 'file' };
  } else {
    const cachePath = options.cacheDir
      ? join(options.cacheDir, 'indexes', `${sha256(location.location)}.idx`)
      : undefined;
    if (options.offline) {
      if (!cachePath)
        throw new MirrorUnavailableError(location.location, 'offline, and there is no cache to read the index from');
      loaded = { decoded: await readCachedIndex(cachePath, location.location), location, from: 'cache' };
    } else {
      try {
        const bytes = await fetchIndexBytes(location.location, components.dispatcher, options);
        let decoded: DecodedIndex;
        try {
          decoded = decodeIndex(bytes);
        } catch (e) {
          if (e instanceof IndexFormatError) throw new IndexFormatError(e.reason, e.line, e.field, location.location);
          throw e;
        }
        if (cachePath) {
          await mkdir(dirname(cachePath), { recursive: true }).catch(() => {});
          await writeFileAtomic(cachePath, bytes).catch((e) =>
            logger.fault(`cannot cache index: ${(e as Error).message}`),
          );
        }
        loaded = { decoded, location, from: 'network' };
      } catch (e) {
        if (!(e instanceof MirrorUnavailableError) || !cachePath) throw e;
        const decoded = await readCachedIndex(cachePath, location.location).catch(() => {
          throw e;
        });
        logger.fault(`${e.message}; using the cached copy of the index`);
        loaded = { decoded, location, from: 'cache' };
      }
    }
  }
  if (options.trust) checkTrust(loaded.decoded, options.trust, location.location);
  return loaded;
}

async function readCachedIndex(path: string, url: string): Promise<DecodedIndex> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new MirrorUnavailableError(url, 'offline, and the index was never fetched on this machine');
  }
  return decodeIndex(bytes);
}

async function fetchIndexBytes(
  url: string,
  dispatcher: Dispatcher | undefined,
  options: LoadIndexOptions,
): Promise<Uint8Array> {
  const timeout = options.timeoutMs ?? DEFAULT_INDEX_TIMEOUT_MS;
  const signal = options.signal
    ? AbortSignal.any([options.signal, AbortSignal.timeout(timeout)])
    : AbortSignal.timeout(timeout);
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, { method: 'GET', signal, dispatcher, headersTimeout: timeout, bodyTimeout: timeout });
  } catch (e) {
    if (options.signal?.aborted) throw options.signal.reason;
    const why =
      (e as Error).name === 'TimeoutError'
        ? `no answer within ${timeout} ms`
        : ((e as { code?: string }).code ?? (e as Error).message);
    throw new MirrorUnavailableError(url, why, { cause: e });
  }
  if (res.statusCode === 404 || res.statusCode === 410) {
    await res.body.dump();
    throw new InputError(`${url}: HTTP ${res.statusCode} (no such index)`);
  }
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new MirrorUnavailableError(url, `HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res.body) {
      n += c.length;
      if (n > MAX_INDEX_BYTES) {
        res.body.destroy();
        throw new IndexFormatError(`larger than ${MAX_INDEX_BYTES} bytes`, undefined, undefined, url);
      }
      chunks.push(c);
    }
  } catch (e) {
    if (e instanceof IndexFormatError) throw e;
    throw new MirrorUnavailableError(url, `body: ${(e as Error).message}`, { cause: e });
  }
  return Buffer.concat(chunks);
}

/** The mount-time trust decision: a valid signature by one of the trusted keys, or a refusal that says why. */
export function checkTrust(decoded: DecodedIndex, trusted: readonly Uint8Array[], where: string): void {
  const name = decoded.index.header.name;
  const sigs = verifyIndexSignatures(decoded);
  if (sigs.length === 0) throw new SignatureError(`refusing to mount ${name} (${where}): the index is not signed`);
  const keys = new Set(trusted.map((k) => Buffer.from(k).toString('base64')));
  const trustedSigs = sigs.filter((s) => keys.has(Buffer.from(s.publicKey).toString('base64')));
  if (trustedSigs.some((s) => s.valid)) return;
  if (trustedSigs.length) {
    throw new SignatureError(
      `refusing to mount ${name} (${where}): the signature by trusted key ${trustedSigs[0]?.keyId} does not verify (the index was changed)`,
    );
  }
  throw new SignatureError(
    `refusing to mount ${name} (${where}): signed only by untrusted keys ${sigs.map((s) => s.keyId).join(', ')}`,
  );
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
