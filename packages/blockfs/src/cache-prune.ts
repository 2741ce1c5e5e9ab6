import { stat, unlink } from 'node:fs/promises';
import { formatBytes } from '@thfc/cli';
import { fsError, UsageError } from '@thfc/format';
import { CacheSealer, identityAt } from './cache/cache-sealer.js';
import { type CacheBlock, cacheBlocks } from './cache-usage.js';

export interface PruneOptions {
  readonly cache: string;
  /** Keep at most this many bytes of blocks. */
  readonly toBytes: number;
}

export interface PruneReport {
  readonly cache: string;
  readonly before: { blocks: number; bytes: number };
  readonly removed: { blocks: number; bytes: number };
  readonly after: { blocks: number; bytes: number };
  /** Blocks that could not be removed (permissions), left in place. */
  readonly failed: number;
  /** Entries of the seal rewritten without the removed blocks; null when the seal could not be written. */
  readonly sealed: number | null;
}

/**
 * The blocks to remove to bring a cache down to `toBytes`: least recently
 * used first (the later of access and modification time; DiskCache orders
 * by modification time and touches on use). Pure.
 */
export function pruneVictims(blocks: readonly CacheBlock[], toBytes: number): CacheBlock[] {
  let total = blocks.reduce((n, b) => n + b.size, 0);
  const victims: CacheBlock[] = [];
  for (const b of [...blocks].sort((x, y) => x.lastUseMs - y.lastUseMs || (x.id < y.id ? -1 : 1))) {
    if (total <= toBytes) break;
    victims.push(b);
    total -= b.size;
  }
  return victims;
}

/**
 * `httpstorged cache prune CACHE --to SIZE`: removes least recently used
 * blocks until the cache holds at most SIZE bytes of them. Indexes are kept
 * (they are small, and an offline mount needs them).
 *
 * Refuses (UsageError) while a daemon is registered as using the cache: a
 * running daemon keeps its own list of what the cache holds and reads blocks
 * it believes are there. A daemon that starts during a prune finds a
 * removed block missing and fetches it again (or, offline, fails that read).
 *
 * The seal stays consistent on its own (an entry is trusted only while its
 * file has the recorded identity, and a removed file has none), but it is
 * rewritten without the removed entries, as a daemon's clean stop does.
 */
export async function runPrune(options: PruneOptions, signal?: AbortSignal): Promise<PruneReport> {
  const { cache, toBytes } = options;
  const sealer = new CacheSealer({}, { dir: cache });
  let users: Awaited<ReturnType<CacheSealer['users']>>;
  try {
    // Checked first: asking for the cache's users creates its daemons/ directory, and a mistyped CACHE must
    // not become an empty cache ('no such file or directory', as `cache` and `fsck` say).
    if (!(await stat(cache)).isDirectory()) throw new UsageError(`${cache}: not a directory`);
    users = await sealer.users(signal);
  } catch (e) {
    signal?.throwIfAborted();
    throw fsError(e, cache);
  }
  if (users.live.length)
    throw new UsageError(
      `${cache} is in use by httpstorged (pid ${users.live.map((p) => p.pid).join(', ')}): unmount first (httpstorged umount MOUNTPOINT)`,
    );
  const blocks = cacheBlocks(cache);
  const bytes = blocks.reduce((n, b) => n + b.size, 0);
  let removedBlocks = 0;
  let removedBytes = 0;
  let failed = 0;
  for (const v of pruneVictims(blocks, toBytes)) {
    signal?.throwIfAborted();
    try {
      await unlink(v.path);
      removedBlocks++;
      removedBytes += v.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && identityAt(v.path) === undefined) continue;
      failed++;
    }
  }
  let sealed: number | null = null;
  if (removedBlocks) sealed = await sealer.seal([], signal).catch(() => null);
  return {
    cache,
    before: { blocks: blocks.length, bytes },
    removed: { blocks: removedBlocks, bytes: removedBytes },
    after: { blocks: blocks.length - removedBlocks, bytes: bytes - removedBytes },
    failed,
    sealed,
  };
}

export function formatPruneReport(r: PruneReport): string {
  const failed = r.failed ? `; ${r.failed} could not be removed` : '';
  const seal = r.sealed === null ? '' : `; seal rewritten with ${r.sealed} entries`;
  return `${r.cache}: removed ${r.removed.blocks} blocks (${formatBytes(r.removed.bytes)}), least recently used first; ${r.after.blocks} blocks, ${formatBytes(r.after.bytes)} left${failed}${seal}\n`;
}
