import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsError } from '@thfc/format';

/** Temp files carry this prefix so `gc` can find leftovers of a killed run. */
export const TEMP_PREFIX = '.tmp-';

export function tempPathFor(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}`);
}

/**
 * Writes `bytes` to a temp file beside `path`, then renames it into place, so
 * a reader sees the old file or the new one, never a part. With `durable`,
 * the data and the directory entry are fsynced (use it for indexes, which
 * publish; blocks are cheap to recheck and are not synced one by one).
 */
export async function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  options: { mode?: number; durable?: boolean; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  options.signal?.throwIfAborted();
  const tmp = tempPathFor(path);
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(tmp, 'wx', options.mode ?? 0o644);
    await fh.writeFile(bytes);
    if (options.durable) await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw fsError(e, path);
  }
  if (options.durable) await syncDir(dirname(path));
}

export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
