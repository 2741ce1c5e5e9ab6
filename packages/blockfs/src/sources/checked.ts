import { BlockCorruptError, BlockNotFoundError, type BlockRef, blockId, hashOfId } from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '../logger.js';
import type { LocalBlocks } from './block-reader.js';
import type { CacheEntry, DiskCache } from './disk-cache.js';
import { type FileVerifier, InlineVerifier } from './file-verifier.js';
import { type Priority, Urgency } from './urgency.js';
import type { WriteBehind } from './write-behind.js';

export interface CheckedOptions {
  /** Verify on every use, not only the first use after start. */
  readonly paranoid?: boolean | undefined;
}

/**
 * A decoded block as a cache entry: raw (codec `none`), stored size = size.
 * The disk cache holds blocks in this form, so it is a valid store in which
 * every block is raw, and a hit needs no decompression.
 */
export function rawRef(ref: BlockRef): BlockRef {
  return ref.codec === 'none' && ref.storedSize === ref.size
    ? ref
    : { id: ref.id, codec: 'none', storedSize: ref.size, size: ref.size };
}

/** `verified` value for a block this daemon wrote: good, its file not opened yet (the first open records it). */
const WRITTEN_HERE = '';

/**
 * The disk cache as the read path sees it: decoded blocks, each verified on
 * its first use after start (every use when paranoid), then served by
 * positional reads straight into the reader's buffer: no allocation, no
 * decompression, no hash.
 *
 * Verification is bound to the file checked (inode and change time): a file
 * replaced under the same name (another daemon's rename) is checked again
 * before it is read.
 * A file of the wrong length (another format) is a miss; a corrupt one is
 * dropped and reported as a miss (BlockNotFoundError), so cached() fetches
 * it again: the cache heals itself. A block that was just fetched (and
 * verified) is kept through the write-behind and served from its buffer until
 * it is on disk.
 *
 * Passes on BlockNotFoundError and MirrorUnavailableError from the disk;
 * absorbs BlockCorruptError. Reads are not cut short by a signal: they are
 * local, and a FUSE buffer must not be written after its request is answered.
 */
export class CheckedSource implements LocalBlocks {
  /** id → identity of the file that was checked (WRITTEN_HERE for blocks this daemon wrote). */
  private readonly verified = new Map<string, string>();
  private readonly checking = new Map<string, { promise: Promise<void>; urgency: Urgency }>();
  private readonly verifier: FileVerifier;

  constructor(
    private readonly components: {
      disk: DiskCache;
      writer: WriteBehind;
      verifier?: FileVerifier | undefined;
      logger?: Logger | undefined;
    },
    private readonly options: CheckedOptions = {},
  ) {
    this.verifier = components.verifier ?? new InlineVerifier();
  }

  holds(ref: BlockRef): boolean {
    return this.components.writer.pending(ref.id) !== undefined || this.components.disk.holds(ref.id, ref.size);
  }

  async read(
    ref: BlockRef,
    dst: Uint8Array,
    at: number,
    from: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    const pending = this.components.writer.pending(ref.id);
    if (pending) {
      // Copied now and never handed up: once written, the write-behind's buffer is reused (see keep()).
      dst.set(pending.subarray(from, from + length), at);
      return undefined;
    }
    const { disk } = this.components;
    const raw = rawRef(ref);
    if (this.options.paranoid) {
      const data = await this.readWhole(raw);
      dst.set(data.subarray(from, from + length), at);
      return data;
    }
    const entry = disk.openEntry(raw) ?? (await disk.entry(raw));
    try {
      if (!this.isVerified(ref.id, entry.file.identity)) await this.check(raw, entry, 'demand');
      await entry.read(dst, at, from, length);
    } finally {
      entry.release();
    }
    return undefined;
  }

  /** read() when it needs no wait: a write still behind, or a file checked since start and open (readNow). */
  readNow(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number): boolean {
    const pending = this.components.writer.pending(ref.id);
    if (pending) {
      dst.set(pending.subarray(from, from + length), at);
      return true;
    }
    if (this.options.paranoid || !this.verified.has(ref.id)) return false;
    const entry = this.components.disk.openEntry(rawRef(ref));
    if (!entry) return false;
    try {
      return this.isVerified(ref.id, entry.file.identity) && entry.readNow(dst, at, from, length);
    } finally {
      entry.release();
    }
  }

  /** Local and verified: waits for a write still behind, or checks the file on its first use. */
  async load(ref: BlockRef): Promise<undefined> {
    const writing = this.components.writer.written(ref.id);
    if (writing) {
      // Background work waits for its block to reach the disk, so it never runs ahead of the writes.
      await writing;
      return undefined;
    }
    if (this.options.paranoid || this.verified.has(ref.id)) return undefined;
    const { disk } = this.components;
    const raw = rawRef(ref);
    const entry = disk.openEntry(raw) ?? (await disk.entry(raw));
    try {
      if (!this.isVerified(ref.id, entry.file.identity)) await this.check(raw, entry, 'background');
    } finally {
      entry.release();
    }
    return undefined;
  }

  /**
   * Writes a fetched, verified block behind; resolves once it is on disk
   * (true) or will not be (false).
   *
   * Once the write lands no one else holds the buffer, so the write-behind
   * may give it back for reuse: readers copy from it synchronously (those who
   * waited on the fetch resume before any write can finish; later ones copy
   * from pending()), and neither read() nor cached() hands a block the local
   * cache holds to a cache above.
   */
  keep(ref: BlockRef, data: Uint8Array): Promise<boolean> {
    // Good from now on: until it lands it is served from the write-behind's buffer, after that from disk. Unless
    // the disk already has a file of that name (one that failed to read, or another daemon's): the write will
    // not replace it (DiskCache.put skips it), so that file is still checked on its first use.
    if (!this.verified.has(ref.id) && !this.components.disk.holds(ref.id, ref.size)) {
      this.verified.set(ref.id, WRITTEN_HERE);
    }
    return this.components.writer.write(rawRef(ref), data).then((stored) => {
      if (!stored && this.verified.get(ref.id) === WRITTEN_HERE) this.verified.delete(ref.id);
      return stored;
    });
  }

  private isVerified(id: string, identity: string): boolean {
    const known = this.verified.get(id);
    if (known === undefined) return false;
    if (known === WRITTEN_HERE) {
      this.verified.set(id, identity);
      return true;
    }
    return known === identity;
  }

  /**
   * Checks the entry's file once however many readers wait; a corrupt file is
   * dropped (BlockNotFoundError). A reader joining a check read-ahead started
   * raises it, as cached() does for fetches.
   */
  private async check(raw: BlockRef, entry: CacheEntry, priority: Priority): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const running = this.checking.get(raw.id);
      if (!running) break;
      if (priority === 'demand') running.urgency.raise();
      await running.promise.catch(() => {});
      if (this.isVerified(raw.id, entry.file.identity)) return;
    }
    const urgency = new Urgency(priority);
    const run = { promise: this.checkFile(raw, entry, urgency), urgency };
    this.checking.set(raw.id, run);
    try {
      await run.promise;
    } finally {
      if (this.checking.get(raw.id) === run) this.checking.delete(raw.id);
    }
  }

  private async checkFile(raw: BlockRef, entry: CacheEntry, urgency: Urgency): Promise<void> {
    const ok = await this.verifier.verify(entry.file.fd, raw.size, raw.id, { urgency });
    if (ok) {
      this.verified.set(raw.id, entry.file.identity);
      return;
    }
    await this.drop(raw, new BlockCorruptError(raw.id, String(this.components.disk), 'content hashes to another name'));
  }

  /** Paranoid: the whole block, read and hashed on every use; served from the bytes that were hashed. */
  private async readWhole(raw: BlockRef): Promise<Uint8Array> {
    const data = await this.components.disk.get(raw);
    const alg = hashOfId(raw.id);
    const actual = alg && blockId(data, alg);
    if (actual !== raw.id) {
      await this.drop(raw, new BlockCorruptError(raw.id, String(this.components.disk), `content hashes to ${actual}`));
    }
    return data;
  }

  private async drop(raw: BlockRef, why: BlockCorruptError): Promise<never> {
    (this.components.logger ?? SILENT_LOGGER).fault(`${why.message}; dropped from the cache, fetching again`);
    this.verified.delete(raw.id);
    await this.components.disk.delete(raw.id);
    throw new BlockNotFoundError(raw.id, this.toString());
  }

  toString(): string {
    return `checked${this.options.paranoid ? '-always' : '-once'}(${this.components.writer})`;
  }
}
