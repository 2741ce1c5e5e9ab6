import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BootProfile, decodeProfile, fsError, MAX_PROFILE_BYTES } from '@thfc/format';
import type { Dispatcher } from 'undici';
import { getBounded } from './http-get.js';
import type { IndexLocation } from './index-loader.js';

/**
 * Finds an image's published boot profile: `--prefetch FILE|URL` when given,
 * else `NAME.profile` beside the index. Resolves undefined when there is none
 * (404 / no file); any other failure rejects with a typed error
 * (MirrorUnavailableError and its kinds, InputError for a missing --prefetch
 * FILE, the profile's format errors), and the caller mounts anyway.
 */
export async function loadProfile(
  explicit: string | undefined,
  location: IndexLocation,
  name: string,
  components: { dispatcher?: Dispatcher | undefined },
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<BootProfile | undefined> {
  const where =
    explicit ??
    (location.kind === 'http'
      ? new URL(`${name}.profile`, location.base).href
      : join(location.base, `${name}.profile`));
  let bytes: Uint8Array;
  if (/^https?:\/\//.test(where)) {
    // Typed failures pass on (HttpStatusError, HttpTimeoutError, ResponseTooLargeError): the caller logs one line.
    const got = await getBounded(where, {
      maxBytes: MAX_PROFILE_BYTES,
      timeoutMs: options.timeoutMs,
      signal: options.signal,
      dispatcher: components.dispatcher,
      // A profile named by --prefetch must be there; NAME.profile beside the index is optional.
      absent: explicit ? [] : [404, 410],
    });
    if (!got) return undefined;
    bytes = got;
  } else {
    try {
      bytes = await readFile(where);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return undefined;
      throw fsError(e, where);
    }
  }
  return decodeProfile(bytes, where);
}
