/** What an opener hands back: at least the descriptor; the rest (size, identity, fstat) is the caller's. */
export interface OpenedFile {
  readonly fd: number;
}

/**
 * Opens and closes the files behind OpenFiles. `open` resolves to the file,
 * or to undefined when `R` allows it (an opener that answers "not there"
 * rather than rejecting); a rejection passes to every acquire waiting for
 * that open.
 */
export interface FileOpener<R extends OpenedFile | undefined> {
  open(path: string): Promise<R>;
  /** open() done now, without waiting, when it can be; undefined when it cannot (then open() is used). */
  openNow?(path: string): R | undefined;
  close(fd: number): void;
}

export interface OpenFilesOptions {
  /** Descriptors kept open while idle (DEFAULT_OPEN_FILES); more may be open while in use. */
  readonly max?: number | undefined;
  /**
   * A descriptor older than this is not handed out again: the next acquire
   * opens the path afresh (default: never; thfc-mirror's store reader trusts
   * one for DEFAULT_FILE_REVALIDATE_MS).
   */
  readonly revalidateMs?: number | undefined;
}

/**
 * 1024 descriptors: httpstorged's sequential reader needs two or three (each
 * block is read in two 128 KiB FUSE requests), but 4 KiB random reads over a
 * whole image (1,928 blocks in the benchmark) skip an open + fstat per read
 * for most blocks when this many stay open; thfc-mirror saves the open, fstat
 * and close round trips to the thread pool, about a third of its cost per
 * block on loopback, and 1024 cover 256 MiB of hot 256 KiB blocks. Node
 * raises the soft RLIMIT_NOFILE to the hard limit (20,000 on the measured
 * machine, 4,096 or more on common distributions), so 1024 leaves ample room
 * for sockets; each costs the kernel about 1 KiB.
 */
export const DEFAULT_OPEN_FILES = 1024;

/**
 * 60 s, as nginx's open_file_cache_valid: blocks are immutable, so a longer
 * life would be harmless for content; the bound is for a store changing under
 * a server (gc deleting a block, a damaged block file replaced by sync),
 * which then shows within a minute.
 */
export const DEFAULT_FILE_REVALIDATE_MS = 60_000;

/** The table's bookkeeping, kept on the file object it hands out so release() needs no lookup. */
const SLOT = Symbol('open-files slot');

interface Slot {
  readonly key: string;
  users: number;
  readonly openedAt: number;
  /** Out of the table: closed when its last user releases it, never handed out again. */
  retired: boolean;
}

type Held<R> = NonNullable<R> & { [SLOT]: Slot };

/** An open in flight: its users are counted before the file is visible, so no trim can close it under them. */
interface Opening<R> {
  users: number;
  retired: boolean;
  readonly ready: Promise<R>;
}

/**
 * A bounded LRU of read-only descriptors for files that are replaced, never
 * rewritten in place, keyed by name and reference counted. A positional read
 * of a held file costs one pread instead of open + read + close. A
 * descriptor is closed only when no one uses it: closing one while a read is
 * queued in libuv would let the number be reused by another open and the
 * read land in the wrong file. acquire() pins (concurrent acquires of one
 * name share one open); release() unpins; drop() retires a name (its file
 * was deleted or replaced) without disturbing reads in flight. The least
 * recently used idle descriptors beyond `max` are closed.
 *
 * Errors: whatever the opener rejects with (a rejected acquire must not be
 * released); an opener's `undefined` (not there) is passed on and leaves
 * nothing behind.
 */
export class OpenFiles<R extends OpenedFile | undefined> {
  /** Least recently used first (a Map iterates in insertion order). */
  private readonly slots = new Map<string, Held<R>>();
  private readonly opening = new Map<string, Opening<R>>();
  private readonly opener: FileOpener<R>;
  private readonly now: () => number;
  private readonly max: number;
  private readonly revalidateMs: number;
  /** Whether descriptors age out at all: the warm path (httpstorged's disk cache) then reads no clock. */
  private readonly revalidates: boolean;
  private closed = false;

  constructor(
    components: { readonly opener: FileOpener<R>; readonly now?: (() => number) | undefined },
    options: OpenFilesOptions = {},
  ) {
    this.opener = components.opener;
    this.now = components.now ?? Date.now;
    this.max = Math.max(0, options.max ?? DEFAULT_OPEN_FILES);
    this.revalidateMs = options.revalidateMs ?? Number.POSITIVE_INFINITY;
    this.revalidates = this.revalidateMs !== Number.POSITIVE_INFINITY;
  }

  /** Names with a descriptor in the table (a few more may be open: retired ones still in use, opens in flight). */
  get size(): number {
    return this.slots.size;
  }

  /** The file for `key` if it is open now, pinned until release(); undefined otherwise (then call acquire). */
  acquireOpen(key: string): NonNullable<R> | undefined {
    const file = this.slots.get(key);
    if (file === undefined) return undefined;
    if (this.revalidates && this.now() - file[SLOT].openedAt >= this.revalidateMs) return undefined;
    file[SLOT].users++;
    // Most recently used goes last.
    this.slots.delete(key);
    this.slots.set(key, file);
    return file;
  }

  /**
   * acquireOpen(), or else an open of `pathOf(key)` done now by the opener's
   * openNow() when no open of `key` is in flight; pinned until release().
   * Undefined means "call acquire()". The path is made only for an open, so a
   * hit builds no string.
   */
  acquireNow(key: string, pathOf: (key: string) => string): NonNullable<R> | undefined {
    const open = this.acquireOpen(key);
    if (open !== undefined || this.closed || this.opening.has(key) || this.slots.has(key)) return open;
    const opened = this.opener.openNow?.(pathOf(key));
    if (opened === undefined || opened === null) return undefined;
    const slot: Slot = { key, users: 1, openedAt: this.now(), retired: false };
    const file: Held<R> = Object.assign(opened as NonNullable<R>, { [SLOT]: slot });
    this.slots.set(key, file);
    this.trim();
    return file;
  }

  /** Opens `path` for `key`, or shares its open descriptor; pinned until release(). */
  acquire(key: string, path: string): Promise<R> {
    const open = this.acquireOpen(key);
    if (open !== undefined) return Promise.resolve(open);
    const stale = this.slots.get(key);
    if (stale !== undefined) {
      // Too old to hand out: retired, and opened afresh below.
      this.slots.delete(key);
      this.retire(stale);
    }
    let pending = this.opening.get(key);
    if (pending === undefined) pending = this.startOpen(key, path);
    pending.users++;
    return pending.ready;
  }

  /** Unpins one successful acquire of this file. */
  release(file: NonNullable<R>): void {
    const slot = (file as Held<R>)[SLOT];
    slot.users--;
    if (slot.users > 0) return;
    if (slot.retired) this.opener.close(file.fd);
    else this.trim();
  }

  /** Retires `key`: its descriptor closes once unused, and the next acquire opens the path afresh. */
  drop(key: string): void {
    const file = this.slots.get(key);
    if (file !== undefined) {
      this.slots.delete(key);
      this.retire(file);
    }
    const pending = this.opening.get(key);
    if (pending !== undefined) {
      // An open in flight would hand out what was under the name before the drop.
      this.opening.delete(key);
      pending.retired = true;
    }
  }

  /** Closes every idle descriptor; those in use close when released, and later opens are not kept. */
  close(): void {
    this.closed = true;
    for (const key of [...this.slots.keys(), ...this.opening.keys()]) this.drop(key);
  }

  private startOpen(key: string, path: string): Opening<R> {
    const pending: Opening<R> = {
      users: 0,
      retired: false,
      ready: this.opener.open(path).then(
        (opened) => {
          if (this.opening.get(key) === pending) this.opening.delete(key);
          if (opened === undefined) return opened;
          const slot: Slot = {
            key,
            users: pending.users,
            openedAt: this.now(),
            retired: pending.retired || this.closed,
          };
          const file: Held<R> = Object.assign(opened as NonNullable<R>, { [SLOT]: slot });
          if (!slot.retired) {
            this.slots.set(key, file);
            this.trim();
          }
          return file;
        },
        (error: unknown) => {
          if (this.opening.get(key) === pending) this.opening.delete(key);
          throw error;
        },
      ),
    };
    this.opening.set(key, pending);
    return pending;
  }

  private retire(file: Held<R>): void {
    const slot = file[SLOT];
    if (slot.retired) return;
    slot.retired = true;
    if (slot.users === 0) this.opener.close(file.fd);
  }

  /** Closes the least recently used idle descriptors beyond `max`. */
  private trim(): void {
    if (this.slots.size <= this.max) return;
    for (const [key, file] of this.slots) {
      if (this.slots.size <= this.max) return;
      if (file[SLOT].users > 0) continue;
      this.slots.delete(key);
      this.retire(file);
    }
  }
}
