import type { BlockRef, BlockSource, SourceOptions } from '@thfc/format';
import { LRUCache } from 'lru-cache';

export interface MemoryCacheOptions {
  /** Bytes of RAM for recently used blocks, counting both stored and decoded forms. */
  readonly maxBytes?: number | undefined;
}

/**
 * 64 MiB: 256 decoded 256 KiB blocks, several read-ahead windows deep, and
 * small enough that the daemon stays under its 200 MB RSS budget. The kernel
 * page cache holds most hot data anyway (immutable images are auto-cached).
 */
export const DEFAULT_MEMORY_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * Recently used blocks in RAM (lru-cache). It holds the stored bytes; their
 * decoded form stays reachable through @thfc/format's verified-decode memo
 * for as long as the stored bytes are held, so a hit costs no decompression.
 * Passes on every error of the inner source; caches nothing that failed.
 */
export class MemoryCache implements BlockSource {
  private readonly lru: LRUCache<string, Uint8Array>;
  hits = 0;

  constructor(
    private readonly components: { inner: BlockSource },
    options: MemoryCacheOptions = {},
  ) {
    this.lru = new LRUCache<string, Uint8Array>({
      maxSize: Math.max(1, options.maxBytes ?? DEFAULT_MEMORY_CACHE_BYTES),
      // Stored plus (at most) the decoded block: what holding an entry really costs.
      sizeCalculation: (stored) => stored.length + 256 * 1024,
    });
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    const hit = this.lru.get(ref.id);
    if (hit) {
      this.hits++;
      return hit;
    }
    const stored = await this.components.inner.get(ref, options);
    if (stored.length + ref.size <= this.lru.maxSize) this.lru.set(ref.id, stored, { size: stored.length + ref.size });
    return stored;
  }

  /** True when the block is in RAM now (read-ahead uses it to skip work). */
  holds(id: string): boolean {
    return this.lru.has(id);
  }

  has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return this.lru.has(ref.id) ? Promise.resolve(true) : this.components.inner.has(ref, options);
  }

  toString(): string {
    return `memory(${this.components.inner})`;
  }
}
