import { readdirSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { isBlockId } from '@thfc/format';

/**
 * What a walk of CACHE/blocks/ finds: a block file in its shard
 * (blocks/ab/<id>, as DiskCache keeps them), or any other name, in a shard
 * (temp files, foreign names, non-files) or beside the shards (`shard`
 * undefined).
 */
export type CacheFile =
  | {
      readonly kind: 'block';
      readonly id: string;
      readonly shard: string;
      readonly path: string;
      readonly stats: Stats;
    }
  | { readonly kind: 'other'; readonly dir: string; readonly name: string; readonly shard: string | undefined };

/**
 * Every name under CACHE/blocks/, shard by shard. Synchronous, a stat per
 * block file: the cache is scanned once, and in place a stat costs a fifth
 * of one through libuv's pool (DiskCache.open). A directory or file that is
 * gone counts as empty or absent; any other error reading one is passed to
 * `onError` (with its path), which throws it or returns to skip it.
 */
export function* walkBlockFiles(
  cache: string,
  onError: (e: unknown, path: string) => void,
): Generator<CacheFile, void, undefined> {
  const root = join(cache, 'blocks');
  for (const shard of listNames(root, onError)) {
    const dir = join(root, shard);
    if (!/^[0-9a-f]{2}$/.test(shard)) {
      yield { kind: 'other', dir: root, name: shard, shard: undefined };
      continue;
    }
    for (const name of listNames(dir, onError)) {
      const path = join(dir, name);
      const stats = isBlockId(name) && name.startsWith(shard) ? stat(path, onError) : undefined;
      if (stats?.isFile()) yield { kind: 'block', id: name, shard, path, stats };
      else yield { kind: 'other', dir, name, shard };
    }
  }
}

/** The names in `dir`; none if it is gone or not a directory, and `onError`'s choice on another error. */
export function listNames(dir: string, onError: (e: unknown, path: string) => void): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') onError(e, dir);
    return [];
  }
}

function stat(path: string, onError: (e: unknown, path: string) => void): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    onError(e, path);
    return undefined;
  }
}
