import type { BigIntStats } from 'node:fs';
import { AdaptiveIo, type OpenFile } from './adaptive-io.js';

export interface OpenFilesOptions {
  /** Descriptors kept open while idle; more may be open while in use. */
  readonly max?: number | undefined;
}

/**
 * 1024 descriptors: a sequential reader needs two or three (each block is read
 * in two 128 KiB FUSE requests), but 4 KiB random reads over a whole image
 * (1,928 blocks in the benchmark) skip an open + fstat per read for most
 * blocks when this many stay open. Node raises the soft RLIMIT_NOFILE to the
 * hard limit (20,000 on the measured machine, 4,096 or more on common
 * distributions), so 1024 leaves ample room for sockets; each costs the kernel
 * about 1 KiB.
 */
export const DEFAULT_OPEN_FILES = 1024;

class Slot implements OpenFile {
  fd = -1;
  size = 0;
  identity = '';
  stats!: BigIntStats;
  opened = false;
  users = 1;
  /** Dropped from the table: closes when its last user releases it, never handed out again. */
  retired = false;
  ready!: Promise<Slot>;
}

/**
 * An LRU of open read-only descriptors, keyed by name, so a positional read of
 * a cached block costs one pread instead of open + read + close. A descriptor
 * is closed only when no one uses it: closing one while a read is queued in
 * libuv would let the number be reused by another open and the read land in
 * the wrong file. acquire() pins; release() unpins; drop() retires a name
 * (its file was deleted or replaced) without disturbing reads in flight.
 */
export class OpenFiles {
  /** Least recently used first (a Map iterates in insertion order). */
  private readonly slots = new Map<string, Slot>();
  private readonly max: number;

  private readonly io: AdaptiveIo;

  constructor(components: { io?: AdaptiveIo | undefined } = {}, options: OpenFilesOptions = {}) {
    this.max = Math.max(0, options.max ?? DEFAULT_OPEN_FILES);
    this.io = components.io ?? new AdaptiveIo();
  }

  /** The file for `key` if it is open now, pinned until release(); undefined otherwise (then call acquire). */
  acquireOpen(key: string): OpenFile | undefined {
    const slot = this.slots.get(key);
    if (!slot?.opened) return undefined;
    this.use(key, slot);
    return slot;
  }

  /**
   * Opens `path` for `key`, or shares its open descriptor; pinned until
   * release(). Rejects with the fs error (ENOENT for a missing file); a
   * rejected acquire must not be released.
   */
  acquire(key: string, path: string): Promise<OpenFile> {
    const known = this.slots.get(key);
    if (known) {
      this.use(key, known);
      return known.opened ? Promise.resolve(known) : known.ready;
    }
    const slot = new Slot();
    slot.ready = this.io.open(path).then(
      (file) => {
        slot.fd = file.fd;
        slot.size = file.size;
        slot.identity = file.identity;
        slot.stats = file.stats;
        slot.opened = true;
        if (slot.retired && slot.users === 0) this.io.close(slot.fd);
        return slot;
      },
      (error: unknown) => {
        if (this.slots.get(key) === slot) this.slots.delete(key);
        slot.retired = true;
        throw error;
      },
    );
    this.slots.set(key, slot);
    return slot.ready;
  }

  /** Unpins one successful acquire of this file. */
  release(file: OpenFile): void {
    const slot = file as Slot;
    slot.users--;
    if (slot.users > 0) return;
    if (slot.retired) this.io.close(slot.fd);
    else this.trim();
  }

  /** Retires `key`: its descriptor closes once unused, and the next acquire opens the path afresh. */
  drop(key: string): void {
    const slot = this.slots.get(key);
    if (!slot) return;
    this.slots.delete(key);
    slot.retired = true;
    if (slot.users === 0 && slot.opened) this.io.close(slot.fd);
  }

  /** Names with a descriptor open or opening. */
  get size(): number {
    return this.slots.size;
  }

  /** Closes every idle descriptor; those in use close when released. */
  closeAll(): void {
    for (const key of [...this.slots.keys()]) this.drop(key);
  }

  private use(key: string, slot: Slot): void {
    slot.users++;
    this.slots.delete(key);
    this.slots.set(key, slot);
  }

  /** Closes the least recently used idle descriptors beyond `max`. */
  private trim(): void {
    if (this.slots.size <= this.max) return;
    for (const [key, slot] of this.slots) {
      if (this.slots.size <= this.max) return;
      if (slot.users > 0 || !slot.opened) continue;
      this.slots.delete(key);
      slot.retired = true;
      this.io.close(slot.fd);
    }
  }
}
