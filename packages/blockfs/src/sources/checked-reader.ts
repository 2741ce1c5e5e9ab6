import type { BigIntStats } from 'node:fs';
import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  blockId,
  hashOfId,
  MirrorUnavailableError,
} from '@thfc/format';
import { type Logger, type Priority, SILENT_LOGGER, type Urgency } from '@thfc/store';
import type { OpenFile } from '../io/adaptive-io.js';
import type { CacheEntry, DiskCache } from '../io/disk-cache.js';
import { describeChange, type FileIdentity, identityOf, sameVersion } from '../io/file-identity.js';
import { type FileVerifier, InlineVerifier } from '../io/file-verifier.js';
import { SingleFlight } from '../io/single-flight.js';
import type { WriteBehind } from '../io/write-behind.js';
import type { LocalBlocks } from './block-reader.js';

export interface CheckedOptions {
  /** Verify on every use, not only the first use after start. */
  readonly paranoid?: boolean | undefined;
  /** Nothing can be fetched (--offline): a dropped entry's log line says so instead of "fetching again". */
  readonly offline?: boolean | undefined;
}

/**
 * Tries of a read whose file changed under it: the second opens the file by
 * name again and checks it. A file that changes again within that read is
 * being written to as it is read; the read then leaves the cache to cached()
 * (MirrorUnavailableError: fetched from a mirror, EIO offline).
 */
const CHANGED_TRIES = 2;

/** What CheckedReader did since start, for stats.json. */
export interface CheckCounts {
  /** Entries trusted without a hash because the seal of the last clean stop vouched for their identity. */
  sealed: number;
  /** Cache files hashed (first use of an entry not trusted by identity; every use with --paranoid). */
  checked: number;
  /** Entries found changed since they were checked (a changed identity), and so checked again. */
  changed: number;
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

/** `verified` value for a block this daemon is writing: good, its file's identity not known until the write lands. */
const WRITTEN_HERE = '';

/**
 * The disk cache as the read path sees it: decoded blocks, each trusted only
 * while its file is the very version that was verified (FileIdentity: device,
 * inode, size, change and modification times), then served by positional
 * reads straight into the reader's buffer: no allocation, no decompression,
 * no hash.
 *
 * An entry is trusted by identity when this daemon wrote its file (the
 * identity fstat gave on the written descriptor), when it hashed the file on
 * its first use, or when the seal of the last clean stop vouched for that
 * identity (adopt()). Every read confirms it: the bytes are read, then the
 * descriptor is fstat'ed (about a microsecond), and they are served only if
 * the file is still the version that was opened, so a write that lands
 * during the read is caught too. A file opened afresh (a recycled
 * descriptor, a name replaced by a rename) is trusted only if its identity is
 * the one recorded. A changed identity is logged with the entry's name, the
 * descriptor is closed and the file at the name is checked again. With
 * `paranoid`, every use reads and hashes the whole block.
 *
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
export class CheckedReader implements LocalBlocks {
  /** id → identity of the file that was verified (WRITTEN_HERE while this daemon's write of it is behind). */
  private readonly verifiedIds = new Map<string, FileIdentity>();
  /** @internal The entries trusted, which HotBlocks serves from (a file being checked is not among them yet). */
  readonly verified: ReadonlyMap<string, FileIdentity> = this.verifiedIds;
  private readonly checking = new SingleFlight<void>();
  private readonly verifier: FileVerifier;
  readonly counts: CheckCounts = { sealed: 0, checked: 0, changed: 0 };

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

  /**
   * Trusts the entries a seal vouches for, each while its file keeps the
   * identity given: the first open of each compares, and a file that changed
   * since is checked as any other. Only entries the disk cache holds are
   * taken (the others are gone); none with `paranoid`. Returns how many.
   */
  adopt(sealed: ReadonlyMap<string, FileIdentity>): number {
    if (this.options.paranoid) return 0;
    let n = 0;
    for (const [id, identity] of sealed) {
      if (this.verified.has(id) || !this.components.disk.holds(id)) continue;
      this.verifiedIds.set(id, identity);
      n++;
    }
    this.counts.sealed += n;
    return n;
  }

  /** Every entry verified (by a check, a write or a seal) with the identity it was verified with: what a seal records. */
  *trusted(): IterableIterator<[string, FileIdentity]> {
    for (const [id, identity] of this.verified) if (identity !== WRITTEN_HERE) yield [id, identity];
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
    for (let tries = 1; ; tries++) {
      const entry = disk.openEntry(raw) ?? (await disk.entry(raw));
      let now: BigIntStats;
      try {
        if (!this.trusts(ref.id, entry.file)) await this.check(raw, entry, 'demand');
        await entry.read(dst, at, from, length);
        now = await entry.stat();
      } finally {
        entry.release();
      }
      // Read, then confirmed: bytes read before a change landed are served, bytes read after are not.
      if (sameVersion(now, entry.file.stats)) return undefined;
      this.changedUnder(ref.id, entry.file, now);
      if (tries >= CHANGED_TRIES) {
        throw new MirrorUnavailableError(String(disk), `cache entry ${ref.id} changed while it was being read`);
      }
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
      if (!this.trusts(ref.id, entry.file)) await this.check(raw, entry, 'background');
    } finally {
      entry.release();
    }
    return undefined;
  }

  /**
   * Writes a fetched, verified block behind; resolves once it is on disk
   * (true) or will not be (false). Once on disk, the entry is trusted while
   * its file is the one written (DiskCache.writtenIdentity).
   *
   * Once the write lands no one else holds the buffer, so the write-behind
   * may give it back for reuse: readers copy from it synchronously (those who
   * waited on the fetch resume before any write can finish; later ones copy
   * from pending()), and neither read() nor cached() hands a block the local
   * cache holds to a cache above.
   */
  keep(ref: BlockRef, data: Uint8Array): Promise<boolean> {
    const { disk, writer } = this.components;
    // Unless the disk already has a file of that name (one that failed to read, or another daemon's): the
    // write will not replace it (DiskCache.put skips it), so that file keeps whatever trust it has.
    if (!disk.holds(ref.id, ref.size)) this.verifiedIds.set(ref.id, WRITTEN_HERE);
    return writer.write(rawRef(ref), data).then((stored) => {
      if (this.verified.get(ref.id) === WRITTEN_HERE) {
        const identity = stored ? disk.takeWritten(ref.id) : undefined;
        if (identity === undefined) this.verifiedIds.delete(ref.id);
        else this.verifiedIds.set(ref.id, identity);
      }
      return stored;
    });
  }

  /**
   * True when `file` is the version of the entry that was verified. A file
   * that is not (a descriptor opened afresh onto a changed or replaced file)
   * is logged and forgotten, so the caller checks it. @internal read()'s and HotBlocks'.
   */
  trusts(id: string, file: OpenFile): boolean {
    let known = this.verified.get(id);
    if (known === undefined) return false;
    if (known === WRITTEN_HERE) {
      // Landed, and keep() has not yet taken its identity: take it here. Not landed: not this file.
      known = this.components.disk.takeWritten(id);
      if (known === undefined) return false;
      this.verifiedIds.set(id, known);
    }
    if (known === file.identity) return true;
    this.changed(id, describeChange(known, file.identity));
    return false;
  }

  /**
   * The open file changed since it was opened (fstat `now`): forget its check
   * (logged), and open the name afresh. @internal read()'s and HotBlocks'.
   */
  changedUnder(id: string, file: OpenFile, now: BigIntStats): void {
    this.components.disk.reopen(id);
    if (this.verified.get(id) === file.identity) this.changed(id, describeChange(file.identity, identityOf(now)));
  }

  private changed(id: string, what: string): void {
    this.verifiedIds.delete(id);
    this.counts.changed++;
    this.logger.fault(`cache entry ${id} changed since it was checked (${what}): checking it again`);
  }

  /**
   * Checks the entry's file once however many readers wait; a corrupt file is
   * dropped (BlockNotFoundError). A reader joining a check read-ahead started
   * raises it, as cached() does for fetches.
   */
  private async check(raw: BlockRef, entry: CacheEntry, priority: Priority): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const running = this.checking.join(raw.id, priority);
      if (!running) break;
      await running.catch(() => {});
      if (this.verified.get(raw.id) === entry.file.identity) return;
    }
    // None in flight, or the ones joined checked another version of the file: check this one.
    await this.checking.start(raw.id, priority, (urgency) => this.checkFile(raw, entry, urgency));
  }

  /**
   * Hashes the open file, bound to the version that was opened: it is
   * recorded as verified only if fstat shows that version before and after
   * the hash. A file that changed meanwhile is not recorded; the read that
   * follows sees the change and starts over.
   */
  private async checkFile(raw: BlockRef, entry: CacheEntry, urgency: Urgency): Promise<void> {
    const before = await entry.stat();
    // Changed since it was opened: hashing this descriptor would vouch for nothing the read could use.
    if (!sameVersion(before, entry.file.stats)) return this.changedUnder(raw.id, entry.file, before);
    this.counts.checked++;
    const ok = await this.verifier.verify(entry.file.fd, raw.size, raw.id, { urgency });
    const after = await entry.stat();
    if (!ok) {
      await this.drop(
        raw,
        new BlockCorruptError(raw.id, String(this.components.disk), 'content hashes to another name'),
      );
    }
    if (sameVersion(after, before)) this.verifiedIds.set(raw.id, entry.file.identity);
  }

  /** Paranoid: the whole block, read and hashed on every use; served from the bytes that were hashed. */
  private async readWhole(raw: BlockRef): Promise<Uint8Array> {
    this.counts.checked++;
    const data = await this.components.disk.get(raw);
    const alg = hashOfId(raw.id);
    const actual = alg && blockId(data, alg);
    if (actual !== raw.id) {
      await this.drop(raw, new BlockCorruptError(raw.id, String(this.components.disk), `content hashes to ${actual}`));
    }
    return data;
  }

  private async drop(raw: BlockRef, why: BlockCorruptError): Promise<never> {
    const next = this.options.offline ? 'it cannot be fetched again offline' : 'fetching again';
    this.logger.fault(`${why.message}; dropped from the cache, ${next}`);
    this.verifiedIds.delete(raw.id);
    await this.components.disk.delete(raw.id);
    throw new BlockNotFoundError(raw.id, this.toString());
  }

  /** @internal The pieces HotBlocks reads: the write-behind, the disk cache, and whether every use is hashed. */
  get writer(): WriteBehind {
    return this.components.writer;
  }

  get disk(): DiskCache {
    return this.components.disk;
  }

  get paranoid(): boolean {
    return this.options.paranoid === true;
  }

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  toString(): string {
    return `checked${this.options.paranoid ? '-always' : '-once'}(${this.components.writer})`;
  }
}
