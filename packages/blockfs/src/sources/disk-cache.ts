import { readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlockNotFoundError,
  type BlockRef,
  type BlockSink,
  type BlockSource,
  isBlockId,
  MirrorUnavailableError,
  type SourceOptions,
  StoreFullError,
} from '@thfc/format';
import { DirStore } from '@thfc/packer';
import { type Logger, SILENT_LOGGER } from '../logger.js';

export interface DiskCacheOptions {
  /** Cache root; blocks live at `DIR/blocks/ab/<id>`, the store layout, so a cache can be served as a store. */
  readonly dir: string;
  /** High watermark in bytes; undefined = grow without bound, as the original's /var/tmp/blocks did. */
  readonly maxBytes?: number | undefined;
  /** Eviction stops at this fraction of maxBytes: evicting in batches, not one block per put. */
  readonly lowWatermark?: number | undefined;
}

/**
 * 0.8, as nbdkit's cache filter: far enough below the cap that a sequential
 * read does not evict on every block, close enough to keep most of the cache.
 */
export const DEFAULT_LOW_WATERMARK = 0.8;

/**
 * The persistent block cache (`/var/tmp/blocks` by default), shared by every
 * image and every daemon on the machine: a block is stored once. Stored bytes
 * are kept as served (compressed), in the store layout.
 *
 * LRU eviction between the high and low watermarks; a block being read or
 * written is pinned and never evicted. Errors: a missing block is
 * BlockNotFoundError; an unreadable one MirrorUnavailableError. put() never
 * fails a read: a full disk is logged once and the block is simply not cached.
 * It does not verify: wrap it with `checked`.
 */
export class DiskCache implements BlockSource, BlockSink {
  private readonly store: DirStore;
  /** id → stored size, in least-recently-used-first order (a Map keeps insertion order). */
  private readonly lru = new Map<string, number>();
  private readonly pins = new Map<string, number>();
  private total = 0;
  private fullWarned = false;

  constructor(
    private readonly components: { logger?: Logger },
    private readonly options: DiskCacheOptions,
  ) {
    this.store = new DirStore(options.dir);
  }

  /** Learns what the cache holds (oldest mtime first) so eviction and has() need no disk access. */
  async open(signal?: AbortSignal): Promise<void> {
    const found: { id: string; size: number; mtime: number }[] = [];
    const root = join(this.options.dir, 'blocks');
    let shards: string[] = [];
    try {
      shards = await readdir(root);
    } catch {
      return; // an empty or new cache
    }
    for (const shard of shards) {
      signal?.throwIfAborted();
      const names = await readdir(join(root, shard)).catch(() => [] as string[]);
      await Promise.all(
        names
          .filter((n) => isBlockId(n) && n.startsWith(shard))
          .map(async (n) => {
            const st = await stat(join(root, shard, n)).catch(() => undefined);
            if (st?.isFile()) found.push({ id: n, size: st.size, mtime: st.mtimeMs });
          }),
      );
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.remember(f.id, f.size);
    await this.evict();
  }

  get bytes(): number {
    return this.total;
  }

  get blocks(): number {
    return this.lru.size;
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted();
    this.pin(ref.id);
    try {
      const bytes = await readFile(this.store.pathOf(ref.id), { signal: options?.signal });
      this.remember(ref.id, bytes.length);
      return bytes;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        this.forget(ref.id);
        throw new BlockNotFoundError(ref.id, this.toString());
      }
      if ((e as Error).name === 'AbortError') throw options?.signal?.reason ?? e;
      throw new MirrorUnavailableError(this.toString(), (e as Error).message, { cause: e });
    } finally {
      this.unpin(ref.id);
    }
  }

  async has(ref: BlockRef): Promise<boolean> {
    return this.lru.has(ref.id);
  }

  /** Synchronous has(), from the in-memory view (after open()). */
  holds(id: string): boolean {
    return this.lru.has(id);
  }

  async put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    if (this.lru.has(ref.id)) return;
    this.pin(ref.id);
    try {
      await this.store.put(ref, stored, options);
      this.remember(ref.id, stored.length);
    } catch (e) {
      if (e instanceof StoreFullError) {
        if (!this.fullWarned)
          this.logger.fault(`cache ${this.options.dir} is full: serving blocks without caching them`);
        this.fullWarned = true;
        return;
      }
      this.logger.fault(`cache ${this.options.dir}: cannot store block ${ref.id}: ${(e as Error).message}`);
      return;
    } finally {
      this.unpin(ref.id);
    }
    await this.evict();
  }

  /** Drops a block (a corrupt entry). */
  async delete(id: string): Promise<void> {
    this.forget(id);
    await unlink(this.store.pathOf(id)).catch(() => {});
  }

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  private remember(id: string, size: number): void {
    const old = this.lru.get(id);
    if (old !== undefined) {
      this.lru.delete(id);
      this.total -= old;
    }
    this.lru.set(id, size);
    this.total += size;
  }

  private forget(id: string): void {
    const old = this.lru.get(id);
    if (old === undefined) return;
    this.lru.delete(id);
    this.total -= old;
  }

  private pin(id: string): void {
    this.pins.set(id, (this.pins.get(id) ?? 0) + 1);
  }

  private unpin(id: string): void {
    const n = (this.pins.get(id) ?? 1) - 1;
    if (n <= 0) this.pins.delete(id);
    else this.pins.set(id, n);
  }

  private evicting = false;

  private async evict(): Promise<void> {
    const max = this.options.maxBytes;
    if (max === undefined || this.total <= max || this.evicting) return;
    this.evicting = true;
    try {
      const low = max * (this.options.lowWatermark ?? DEFAULT_LOW_WATERMARK);
      for (const [id] of this.lru) {
        if (this.total <= low) break;
        if (this.pins.has(id)) continue;
        this.forget(id);
        await unlink(this.store.pathOf(id)).catch(() => {});
      }
    } finally {
      this.evicting = false;
    }
  }

  toString(): string {
    return `disk(${this.options.dir})`;
  }
}
