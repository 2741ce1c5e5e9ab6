import type { BlockRef } from '@thfc/format';
import type { FetchOptions } from '@thfc/store';
import { LRUCache } from 'lru-cache';
import type { BlockReader } from './block-reader.js';

export interface MemoryReaderOptions {
  /** Bytes of RAM for recently used decoded blocks. */
  readonly maxBytes?: number | undefined;
}

/**
 * 32 MiB: 128 decoded 256 KiB blocks, sixteen read-ahead windows. With the disk
 * cache a hit is a pread of page-cached data, nearly as cheap as a copy from
 * RAM, so this mostly holds blocks between their fetch and the reader's next
 * request (and is the only cache with --nocache). The daemon starts at ~85 MB
 * RSS; 32 MiB plus the write-behind and fetches in flight keeps it under its
 * 200 MB budget, and the kernel page cache holds the hot data anyway (images
 * are mounted auto_cache).
 */
export const DEFAULT_MEMORY_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Recently used decoded blocks in RAM (lru-cache). It keeps what the layer
 * below hands up whole (a block it fetched, or read whole to check), and
 * serves later reads of it by copying. Passes on every error of the inner
 * reader; keeps nothing that failed.
 */
export class MemoryReader implements BlockReader {
  /** @internal The blocks in RAM, which HotBlocks reads too. */
  readonly lru: LRUCache<string, Uint8Array>;
  /** Block reads answered from RAM (by read(), or by HotBlocks.readNow). */
  hits = 0;

  constructor(
    private readonly components: { inner: BlockReader },
    private readonly options: MemoryReaderOptions = {},
  ) {
    this.lru = new LRUCache<string, Uint8Array>({
      maxSize: Math.max(1, options.maxBytes ?? DEFAULT_MEMORY_CACHE_BYTES),
      sizeCalculation: (data) => Math.max(1, data.length),
    });
  }

  read(
    ref: BlockRef,
    dst: Uint8Array,
    at: number,
    from: number,
    length: number,
    options?: FetchOptions,
  ): Promise<Uint8Array | undefined> {
    const hit = this.lru.get(ref.id);
    // A block shorter than asked for is never served (a buffer given up for reuse would read as empty).
    if (hit && hit.length >= from + length) {
      this.hits++;
      dst.set(hit.subarray(from, from + length), at);
      return Promise.resolve(undefined);
    }
    return this.components.inner.read(ref, dst, at, from, length, options).then((whole) => this.keep(ref, whole));
  }

  load(ref: BlockRef, options?: FetchOptions): Promise<Uint8Array | undefined> {
    if (this.lru.has(ref.id)) return Promise.resolve(undefined);
    return this.components.inner.load(ref, options).then((whole) => this.keep(ref, whole));
  }

  /** True when the block is in RAM now. */
  holds(id: string): boolean {
    return this.lru.has(id);
  }

  private keep(ref: BlockRef, whole: Uint8Array | undefined): Uint8Array | undefined {
    if (whole && whole.length <= this.lru.maxSize) this.lru.set(ref.id, whole);
    return whole;
  }

  toString(): string {
    return `memory(${formatBytes(this.options.maxBytes ?? DEFAULT_MEMORY_CACHE_BYTES)}, ${this.components.inner})`;
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)}M`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024}K`;
  return String(n);
}
