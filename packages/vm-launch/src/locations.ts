import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { fsError, InputError, MirrorUnavailableError } from '@thfc/format';
import {
  consumeBody,
  discardBody,
  type HttpResponse,
  HttpStatusError,
  HttpTimeoutError,
  httpGet,
  readBody,
  tempPathFor,
} from '@thfc/store';

/**
 * Catalogs, kernels and initrds live beside the indexes: http(s)://,
 * file:// or a plain path. These are small, one-off reads through store's
 * bounded GET on undici's global dispatcher (block traffic goes through
 * httpstorged's pool).
 */

/** A catalog or kernel from a mirror that has not answered in 30 s will not; the user can retry. */
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/**
 * Redirects followed, as fetch() did for these reads: a site moved to https or
 * behind a mirror director answers with one or two.
 */
export const MAX_LOCATION_REDIRECTS = 5;

/**
 * 16 MiB for a location read whole (a catalog: a few KB of JSON per image),
 * so a server sending something else cannot fill the launcher's memory.
 * Kernels and initrds are streamed to a file (downloadTo), bounded by
 * DEFAULT_MAX_BOOT_FILE_BYTES.
 */
export const MAX_LOCATION_BYTES = 16 * 1024 * 1024;

/**
 * 1 GiB for a kernel or initrd written to the run directory: a distribution's
 * kernel is 10-15 MB and its largest initrds (every module and firmware) a few
 * hundred MB, while a broken or hostile server streaming without end would
 * otherwise fill the disk that holds the run directory (and the overlay) within
 * the time limit: on a LAN, 30 s is several GB.
 */
export const DEFAULT_MAX_BOOT_FILE_BYTES = 1024 ** 3;

/** The local path behind a file:// URL or a path; undefined for http(s). */
export function localPath(location: string): string | undefined {
  if (/^https?:\/\//i.test(location)) return undefined;
  return location.startsWith('file:') ? fileURLToPath(location) : location;
}

/** A 2xx for `url`; InputError for 404/410, MirrorUnavailableError for no answer or another status. */
async function get(url: string, signal: AbortSignal, timeoutMs: number): Promise<HttpResponse> {
  let res: HttpResponse;
  try {
    res = await httpGet(url, { timeoutMs, signal, maxRedirects: MAX_LOCATION_REDIRECTS });
  } catch (e) {
    throw inSeconds(e);
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res;
  await discardBody(res);
  if (res.statusCode === 404 || res.statusCode === 410)
    throw new InputError(`${url}: not found (HTTP ${res.statusCode})`);
  throw new HttpStatusError(url, res.statusCode);
}

/** thfc-vm counts its timeouts in seconds (--timeout). */
function inSeconds(e: unknown): unknown {
  if (!(e instanceof HttpTimeoutError)) return e;
  return new MirrorUnavailableError(e.url, `no answer within ${e.timeoutMs / 1000} s`, { cause: e });
}

export async function readLocation(
  location: string,
  signal: AbortSignal,
  timeoutMs = DEFAULT_FETCH_TIMEOUT_MS,
): Promise<Buffer> {
  const path = localPath(location);
  if (path !== undefined) {
    try {
      return await readFile(path, { signal });
    } catch (e) {
      signal.throwIfAborted();
      throw fsError(e, path);
    }
  }
  const res = await get(location, signal, timeoutMs);
  return readBody(res, MAX_LOCATION_BYTES).catch((e: unknown) => {
    throw inSeconds(e);
  });
}

export interface DownloadOptions {
  /** The whole download, headers and body (DEFAULT_FETCH_TIMEOUT_MS). */
  readonly timeoutMs?: number | undefined;
  /** The largest file taken (DEFAULT_MAX_BOOT_FILE_BYTES); beyond, ResponseTooLargeError. */
  readonly maxBytes?: number | undefined;
}

/**
 * Copies an http(s) location to a local file (kernels and initrds for qemu,
 * which reads only local files). ResponseTooLargeError (exit 4) as soon as
 * the server declares or sends more than `maxBytes`; nothing is left behind
 * when it fails.
 */
export async function downloadTo(
  location: string,
  file: string,
  signal: AbortSignal,
  options: DownloadOptions = {},
): Promise<void> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BOOT_FILE_BYTES;
  const res = await get(location, signal, options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS);
  // Into a temp file renamed once whole: an interrupted download never leaves a truncated kernel for qemu.
  const tmp = tempPathFor(file);
  const out = createWriteStream(tmp, { flags: 'wx' });
  // A local write that fails is this machine's fault (fsError: no such directory, disk full), not the mirror's.
  // pipeline() also destroys `out` with the body's own error (cut short, too large, timed out), so an error
  // of `out` counts as the disk's only when the body did not fail with it first.
  let diskError: unknown;
  let bodyError: unknown;
  out.once('error', (e) => {
    diskError = e;
  });
  const watched = async function* (body: AsyncIterable<Buffer>) {
    try {
      yield* body;
    } catch (e) {
      bodyError = e;
      throw e;
    }
  };
  try {
    await consumeBody(res, (body) => pipeline(watched(body), out), { maxBytes }).catch((e: unknown) => {
      throw diskError !== undefined && diskError !== bodyError ? fsError(diskError, file) : inSeconds(e);
    });
    await rename(tmp, file).catch((e: unknown) => {
      throw fsError(e, file);
    });
  } catch (e) {
    // Closed first: a stream stopped before its file was open still creates the file once the open completes.
    if (!out.closed) await new Promise<void>((r) => out.destroy().once('close', () => r()));
    await rm(tmp, { force: true });
    throw e;
  }
}
