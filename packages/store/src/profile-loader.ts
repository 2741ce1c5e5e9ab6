import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BootProfile, decodeProfile, MAX_PROFILE_BYTES } from '@thfc/format';
import { type Dispatcher, request } from 'undici';
import type { IndexLocation } from './index-loader.js';

/**
 * Finds an image's published boot profile: `--prefetch FILE|URL` when given,
 * else `NAME.profile` beside the index. Resolves undefined when there is none
 * (404 / no file); any other failure rejects, and the caller mounts anyway.
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
    const signal = options.signal
      ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)])
      : AbortSignal.timeout(options.timeoutMs);
    const res = await request(where, { signal, dispatcher: components.dispatcher });
    if (res.statusCode === 404 || res.statusCode === 410) {
      await res.body.dump();
      if (explicit) throw new Error(`${where}: HTTP ${res.statusCode}`);
      return undefined;
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`${where}: HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += c.length;
      if (n > MAX_PROFILE_BYTES) {
        res.body.destroy();
        throw new Error(`${where}: larger than ${MAX_PROFILE_BYTES} bytes`);
      }
      chunks.push(c);
    }
    bytes = Buffer.concat(chunks);
  } else {
    try {
      bytes = await readFile(where);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return undefined;
      throw e;
    }
  }
  return decodeProfile(bytes, where);
}
