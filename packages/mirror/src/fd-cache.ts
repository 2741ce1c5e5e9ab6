import { close, constants, fstat, open } from 'node:fs';
import { MirrorUnavailableError } from '@thfc/format';

/**
 * Block files held open. A hit saves the open/fstat/close round trips to the
 * thread pool, about a third of the server's cost per block on loopback. 1024
 * descriptors cover 256 MiB of hot 256 KiB blocks (the boot path of a few
 * images) and stay far below the descriptor limit Node raises to at start
 * (20000 on the dev machine), leaving the rest for client sockets.
 */
export const DEFAULT_MAX_OPEN_FILES = 1024;

/**
 * An open descriptor is trusted for 60 s, as nginx's open_file_cache_valid
 * does. Blocks are immutable, so a longer life would be harmless for
 * content; the bound is for the store changing under the mirror (gc deleting
 * a block, a damaged block file replaced by sync), which shows within a
 * minute.
 */
export const DEFAULT_FILE_REVALIDATE_MS = 60_000;

/** A held descriptor. Pass it back to `release` exactly once. */
export interface OpenFile {
  readonly fd: number;
  readonly size: number;
  /** `dev:ino:size:mtime`: changes whenever the path names different bytes (files are replaced by rename). */
  readonly identity: string;
}

interface Entry extends OpenFile {
  readonly path: string;
  refs: number;
  readonly openedAt: number;
  /** Out of the map: closed when the last holder releases it. */
  retired: boolean;
}

/**
 * A bounded LRU of read-only descriptors for immutable files, reference
 * counted so a descriptor is never closed under a read in flight. Files are
 * opened with O_NOFOLLOW and must be regular files: a symlink or directory
 * planted in the store is "not found", never followed.
 *
 * Errors: a missing path (or a symlink, a non-file) resolves to undefined;
 * any other failure to open is MirrorUnavailableError (this store cannot
 * answer: permissions, I/O, descriptor exhaustion).
 */
export class FdCache {
  private readonly entries = new Map<string, Entry>();
  private readonly opening = new Map<string, { waiters: number; promise: Promise<Entry | undefined> }>();
  private readonly maxOpen: number;
  private readonly revalidateMs: number;
  private readonly now: () => number;
  private closed = false;

  constructor(
    components: { readonly now?: () => number } = {},
    options: { readonly maxOpenFiles?: number; readonly revalidateMs?: number } = {},
  ) {
    this.now = components.now ?? Date.now;
    this.maxOpen = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    this.revalidateMs = options.revalidateMs ?? DEFAULT_FILE_REVALIDATE_MS;
  }

  /** Descriptors in the cache (a few more may be open: evicted ones still being read). */
  get size(): number {
    return this.entries.size;
  }

  acquire(path: string): Promise<OpenFile | undefined> {
    const hit = this.entries.get(path);
    if (hit) {
      if (this.now() - hit.openedAt < this.revalidateMs) {
        hit.refs++;
        // Most recently used goes last: Map iteration order is the LRU order.
        this.entries.delete(path);
        this.entries.set(path, hit);
        return Promise.resolve(hit);
      }
      this.retire(hit);
    }
    let pending = this.opening.get(path);
    if (!pending) {
      // Holders are counted before the entry becomes visible: an eviction between the open
      // completing and a waiter resuming must never see it idle and close it under them.
      const opening = { waiters: 0 } as { waiters: number; promise: Promise<Entry | undefined> };
      opening.promise = openRegularFile(path).then(
        (opened) => {
          this.opening.delete(path);
          if (!opened) return undefined;
          const entry: Entry = { ...opened, path, refs: opening.waiters, openedAt: this.now(), retired: false };
          if (this.closed) entry.retired = true;
          else {
            this.entries.set(path, entry);
            this.evict();
          }
          return entry;
        },
        (e) => {
          this.opening.delete(path);
          throw e;
        },
      );
      pending = opening;
      this.opening.set(path, opening);
    }
    pending.waiters++;
    return pending.promise;
  }

  release(file: OpenFile): void {
    const entry = file as Entry;
    entry.refs--;
    if (entry.retired && entry.refs === 0) close(entry.fd, () => {});
  }

  /** Forgets `path` (e.g. after a pull-through replaced it); holders keep their descriptor. */
  forget(path: string): void {
    const entry = this.entries.get(path);
    if (entry) this.retire(entry);
  }

  /** Closes every idle descriptor; those in use close on release. */
  close(): void {
    this.closed = true;
    for (const entry of [...this.entries.values()]) this.retire(entry);
  }

  private evict(): void {
    for (const entry of this.entries.values()) {
      if (this.entries.size <= this.maxOpen) return;
      this.retire(entry);
    }
  }

  private retire(entry: Entry): void {
    if (this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
    if (entry.retired) return;
    entry.retired = true;
    if (entry.refs === 0) close(entry.fd, () => {});
  }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Opens `path` read-only without following a final symlink; undefined unless it is a regular file. */
export function openRegularFile(path: string): Promise<OpenFile | undefined> {
  return new Promise((resolve, reject) => {
    open(path, OPEN_FLAGS, (err, fd) => {
      if (err) {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR' || err.code === 'ELOOP') resolve(undefined);
        else reject(new MirrorUnavailableError(`store file ${path}`, err.message, { cause: err }));
        return;
      }
      fstat(fd, (e, st) => {
        if (e || !st.isFile()) {
          close(fd, () => {});
          if (e) reject(new MirrorUnavailableError(`store file ${path}`, e.message, { cause: e }));
          else resolve(undefined);
          return;
        }
        resolve({ fd, size: st.size, identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` });
      });
    });
  });
}
