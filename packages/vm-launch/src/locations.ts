import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { fsError, InputError, MirrorUnavailableError } from '@thfc/format';

/**
 * Catalogs, kernels and initrds live beside the indexes: http(s)://,
 * file:// or a plain path. These are small, one-off reads, so the runtime's
 * fetch() is fine here (block traffic goes through httpstorged's pool).
 */

/** A catalog or kernel from a mirror that has not answered in 30 s will not; the user can retry. */
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/** The local path behind a file:// URL or a path; undefined for http(s). */
export function localPath(location: string): string | undefined {
  if (/^https?:\/\//i.test(location)) return undefined;
  return location.startsWith('file:') ? fileURLToPath(location) : location;
}

async function get(url: string, signal: AbortSignal, timeoutMs: number): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
  } catch (e) {
    signal.throwIfAborted();
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : describe(e);
    throw new MirrorUnavailableError(url, why);
  }
  if (res.status === 404 || res.status === 410) throw new InputError(`${url}: not found (HTTP ${res.status})`);
  if (!res.ok) throw new MirrorUnavailableError(url, `HTTP ${res.status}`);
  return res;
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
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
  return Buffer.from(await res.arrayBuffer());
}

/** Copies an http(s) location to a local file (kernels and initrds for qemu, which reads only local files). */
export async function downloadTo(
  location: string,
  file: string,
  signal: AbortSignal,
  timeoutMs = DEFAULT_FETCH_TIMEOUT_MS,
): Promise<void> {
  const res = await get(location, signal, timeoutMs);
  if (!res.body) throw new MirrorUnavailableError(location, 'empty response');
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(file), {
      signal,
    });
  } catch (e) {
    signal.throwIfAborted();
    throw new MirrorUnavailableError(location, describe(e));
  }
}
