import type { Codec } from './codecs.js';

/** Everything needed to fetch, bound and verify one stored block. */
export interface BlockRef {
  /** Hex digest of the uncompressed bytes; also the block's file name. */
  readonly id: string;
  readonly codec: Codec;
  /** Bytes as stored (compressed). A source that returns a different length returned a short or wrong body. */
  readonly storedSize: number;
  /** Uncompressed length (the block size, or less for the last block). */
  readonly size: number;
}

export interface SourceOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * `demand`: a reader is waiting (the default). `background`: read-ahead,
   * prefetch or fill. Sources that queue (HTTP mirrors) serve demand first and
   * never let background work take every connection.
   */
  readonly priority?: 'demand' | 'background' | undefined;
}

/**
 * The one seam for blocks. Everything that holds blocks implements it: a store
 * directory, a mirror's store, the disk cache, the memory cache, one HTTP
 * mirror, and the fake in `@thfc/format/testing`. Features (caching,
 * verification, failover) are wrappers that take and return a BlockSource.
 *
 * `get` resolves to the block's *stored* bytes, exactly as they sit in a store
 * file. It rejects with one of three errors, and wrappers decide by type:
 * - BlockNotFoundError: the source answered and does not hold the block;
 * - MirrorUnavailableError: the source could not answer (I/O, timeout, 5xx);
 * - BlockCorruptError: the source holds bytes that are not the block.
 * An aborted signal rejects with the signal's reason.
 */
export interface BlockSource {
  get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array>;
  has(ref: BlockRef, options?: SourceOptions): Promise<boolean>;
  /** Prints the topology, e.g. `cached(disk(/var/tmp/blocks), verified(failover(http(a), http(b))))`. */
  toString(): string;
}

export interface BlockSink {
  /** Stores a block's stored bytes. Idempotent: putting a block already held is a no-op. */
  put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void>;
}
