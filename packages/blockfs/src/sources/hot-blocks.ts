import type { BlockRef } from '@thfc/format';
import type { DiskCache } from '../io/disk-cache.js';
import { sameVersion } from '../io/file-identity.js';
import type { WriteBehind } from '../io/write-behind.js';
import type { CacheCounters, CachedReader } from './cached-reader.js';
import type { CheckedReader } from './checked-reader.js';
import { rawRef } from './checked-reader.js';
import type { MemoryReader } from './memory-reader.js';

/** A read path's synchronous fast path (HotBlocks, or ImageSource, which binds one). */
export interface ReadsNow {
  /**
   * Copies bytes [from, from + length) of the decoded block into dst at `at`
   * now, synchronously, when that needs no wait (a block in RAM, a write still
   * behind, or a cache file checked and open while plain reads are fast);
   * returns false when it cannot, and the caller uses the tree's read(), which
   * then does everything again. Has no effect but the copy and hit counters;
   * never throws. A FUSE request answered here costs no promise, no microtask
   * and no thread hop, which is what limits a warm sequential read (see
   * ImageReader.readNow).
   */
  readNow(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number): boolean;
}

/** The parts of one tree (`memory(cached(checked(behind(disk)), remote))`) whose state a hot read looks at. */
export interface HotParts {
  /** The memory cache at the top; none leaves RAM out. */
  readonly memory?: MemoryReader | undefined;
  /** cached(): a block it is fetching is not served locally, and a local hit counts in its counters. */
  readonly cached?: CachedReader | undefined;
  /** The checked disk cache below cached(); none with --nocache. */
  readonly checked?: CheckedReader | undefined;
}

/** What a hot read of a cache file looks at. */
interface HotFiles {
  readonly checked: CheckedReader;
  readonly disk: DiskCache;
  readonly verified: ReadonlyMap<string, unknown>;
}

/**
 * The hot index of one read path: every block a read can be answered with
 * now, without waiting, looked up in one place. It holds the memory cache's
 * LRU, cached()'s fetches in flight, the write-behind's pending blocks, the
 * checked cache's trust and the disk cache's open files, and answers
 * readNow() from them, in the order read() would: RAM, then (unless the block
 * is being fetched) a write still behind, then a file that is trusted (never
 * with --paranoid, never one being checked), open, and read in place. The
 * bytes of a file are served only once an fstat after the copy shows the
 * version that was verified; a file that changed under its descriptor is
 * logged, forgotten and reopened by the checked cache (changedUnder), as its
 * read() does.
 *
 * It keeps no state of its own: the layers stay the owners of theirs, and
 * their read() and load() the slow path.
 */
export class HotBlocks implements ReadsNow {
  private readonly memory: MemoryReader | undefined;
  private readonly fetching: ReadonlyMap<string, unknown> | undefined;
  private readonly counters: CacheCounters | undefined;
  private readonly writer: WriteBehind | undefined;
  /** The checked disk cache's trust and open files; none with --paranoid (every use is hashed whole). */
  private readonly files: HotFiles | undefined;

  constructor(parts: HotParts) {
    const { memory, cached, checked } = parts;
    this.memory = memory;
    this.fetching = cached?.fetching;
    this.counters = cached?.counters;
    this.writer = checked?.writer;
    if (checked && !checked.paranoid) this.files = { checked, disk: checked.disk, verified: checked.verified };
  }

  readNow(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number): boolean {
    const memory = this.memory;
    const hit = memory?.lru.get(ref.id);
    // A block shorter than asked for is never served (a buffer given up for reuse would read as empty).
    if (memory && hit && hit.length >= from + length) {
      memory.hits++;
      dst.set(hit.subarray(from, from + length), at);
      return true;
    }
    if (this.writer === undefined || this.fetching?.has(ref.id)) return false;
    const pending = this.writer.pending(ref.id);
    if (pending) {
      dst.set(pending.subarray(from, from + length), at);
      return this.hit();
    }
    return this.readFile(ref, dst, at, from, length) && this.hit();
  }

  /** A trusted, open cache file read in place and confirmed by fstat; false leaves the read to read(). */
  private readFile(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number): boolean {
    const files = this.files;
    if (files === undefined || !files.verified.has(ref.id)) return false;
    const { checked, disk } = files;
    const entry = disk.openEntry(rawRef(ref));
    if (!entry) return false;
    try {
      // The bytes are copied before the identity is confirmed; on false the caller must not use them.
      if (!checked.trusts(ref.id, entry.file) || !entry.readNow(dst, at, from, length)) return false;
      const now = entry.statNow();
      if (now === undefined) return false; // cannot confirm now: read() will
      if (sameVersion(now, entry.file.stats)) return true;
      checked.changedUnder(ref.id, entry.file, now);
      return false;
    } finally {
      entry.release();
    }
  }

  /** A local hit, counted as cached() counts one. */
  private hit(): true {
    if (this.counters) this.counters.hits++;
    return true;
  }
}
