import { type BufferPool, DEFAULT_CHUNK_BYTES } from './buffer-pool.js';

/**
 * 256 MiB: 1024 default-size blocks, as many as the descriptor cache holds
 * open. That is the boot path of a few popular images (a boot reads 100–200
 * MB of a 512 MiB image), so many clients booting the same images are served
 * without touching the store. Node has no sendfile: a block served from the
 * page cache costs a second copy (page cache → buffer → socket) that measured
 * at about a quarter of the server's CPU per 256 KiB request; from here it
 * costs only the copy into the socket, as nginx's sendfile does.
 */
export const DEFAULT_MEMORY_CACHE_BYTES = 256 * 1024 * 1024;

/** Only blocks that fit one read chunk are kept: caching never makes a request read more than it would. */
export const MAX_CACHED_BLOCK_BYTES = DEFAULT_CHUNK_BYTES;

/** A cached block held by a response; give it back with `release` when the response has closed. */
export interface CachedBlock {
  readonly bytes: Buffer;
}

interface Entry extends CachedBlock {
  readonly id: string;
  /** Responses writing these bytes now. */
  users: number;
  /** Out of the cache; its buffer is recycled when the last user releases it. */
  evicted: boolean;
}

/**
 * Recently served blocks' stored bytes, by id: an LRU bounded in bytes.
 * Blocks are immutable, so an entry never goes stale; a block deleted from
 * the store (gc) may be served from here until it is evicted, which is
 * harmless (its content is still its name's).
 *
 * Buffers are recycled through the server's BufferPool: a miss reads into a
 * pooled chunk, and an evicted entry's chunk goes back to the pool once no
 * response is still writing it. So a working set larger than the cache
 * costs evictions, not a 256 KiB allocation per request (which would keep
 * V8 busy with full collections under external-memory pressure).
 */
export class BlockMemoryCache {
  private readonly entries = new Map<string, Entry>();
  private held = 0;
  hits = 0;

  constructor(
    private readonly components: { readonly pool: BufferPool },
    readonly maxBytes = DEFAULT_MEMORY_CACHE_BYTES,
  ) {}

  get bytes(): number {
    return this.held;
  }

  /** The block, held for one response (release it), or undefined. */
  get(id: string): CachedBlock | undefined {
    const hit = this.entries.get(id);
    if (hit === undefined) return undefined;
    this.hits++;
    hit.users++;
    // Map order is the LRU order: move to the most recent end.
    this.entries.delete(id);
    this.entries.set(id, hit);
    return hit;
  }

  /** Whether a block of this size would be kept at all. */
  accepts(size: number): boolean {
    return size <= MAX_CACHED_BLOCK_BYTES && size <= this.maxBytes;
  }

  /** A buffer to read a block of `size` bytes into (a pooled chunk when it is a full one). */
  buffer(size: number): Buffer {
    return size === this.components.pool.chunkBytes ? this.components.pool.take() : Buffer.allocUnsafeSlow(size);
  }

  /** Keeps `bytes` as block `id` and returns it held for the caller's response (release it). */
  add(id: string, bytes: Buffer): CachedBlock {
    const old = this.entries.get(id);
    if (old) this.evict(old);
    const entry: Entry = { id, bytes, users: 1, evicted: false };
    if (!this.accepts(bytes.length)) {
      entry.evicted = true;
      return entry;
    }
    for (const oldest of this.entries.values()) {
      if (this.held + bytes.length <= this.maxBytes) break;
      this.evict(oldest);
    }
    this.entries.set(id, entry);
    this.held += bytes.length;
    return entry;
  }

  release(block: CachedBlock): void {
    const entry = block as Entry;
    if (--entry.users === 0 && entry.evicted) this.components.pool.give(entry.bytes);
  }

  private evict(entry: Entry): void {
    if (this.entries.get(entry.id) === entry) {
      this.entries.delete(entry.id);
      this.held -= entry.bytes.length;
    }
    entry.evicted = true;
    if (entry.users === 0) this.components.pool.give(entry.bytes);
  }
}
