import { statSync } from 'node:fs';
import { fsError, UsageError } from '@thfc/format';

/**
 * The original's cache directory; shared by every image and daemon on the
 * machine. In a module of its own so that the command line can show it as a
 * default without loading the mount (and fuse-native, undici…).
 */
export const DEFAULT_CACHE_DIR = '/var/tmp/blocks';

/**
 * Checks that `cache`, given on the command line (`httpstorged cache`,
 * `httpstorged fsck`), is a directory: the fs error of a missing or unreadable
 * one, UsageError for anything else.
 */
export function requireCacheDir(cache: string): void {
  let isDir = false;
  try {
    isDir = statSync(cache).isDirectory();
  } catch (e) {
    throw fsError(e, cache);
  }
  if (!isDir) throw new UsageError(`${cache} is not a directory`);
}
