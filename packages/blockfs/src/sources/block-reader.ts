import type { BlockRef } from '@thfc/format';
import type { FetchOptions } from '@thfc/store';

/**
 * The read path's seam: decoded, verified blocks, read a slice at a time
 * straight into the caller's buffer (a FUSE request's). BlockSource moves
 * whole stored blocks between stores, caches and mirrors; a BlockReader is
 * what the image reader sees: `memory(cached(checked(disk), remote))`.
 * A read that needs no wait is answered before any of this, in one place:
 * the tree's hot index (HotBlocks.readNow).
 */
export interface BlockReader {
  /**
   * Copies bytes [from, from + length) of the decoded block into dst at `at`.
   * Resolves to the whole decoded block when this layer had to hold all of it
   * (it fetched the block, or read it whole to check it), so a cache above may
   * keep it; to undefined when it copied the slice alone.
   *
   * Never copies bytes that were not verified; rejects with the seam errors
   * (BlockNotFoundError, MirrorUnavailableError, BlockCorruptError) or the
   * signal's reason. Every write into dst is over when the promise settles,
   * abort or not: a FUSE buffer is freed as soon as the request is answered.
   */
  read(
    ref: BlockRef,
    dst: Uint8Array,
    at: number,
    from: number,
    length: number,
    options?: FetchOptions,
  ): Promise<Uint8Array | undefined>;
  /**
   * Makes the block local and verified without copying it anywhere (read-ahead,
   * prefetch, fill); resolves to the decoded block when this layer had it in
   * hand (it fetched it), as read() does.
   */
  load(ref: BlockRef, options?: FetchOptions): Promise<Uint8Array | undefined>;
  /** Prints the topology, e.g. `memory(32M, cached(checked-once(behind(disk(/var/tmp/blocks))), failover(…)))`. */
  toString(): string;
}

/** The local side of cached(): the checked disk cache, or nothing (--nocache). */
export interface LocalBlocks extends BlockReader {
  /** Whether read() can answer without the network, judged from memory (no I/O). */
  holds(ref: BlockRef): boolean;
  /**
   * Takes a block that was just fetched and verified, to keep. Returns at
   * once; the promise resolves once the block is stored (true) or will not be
   * (false), never rejects, and need not be waited for.
   */
  keep(ref: BlockRef, data: Uint8Array): Promise<boolean>;
}
