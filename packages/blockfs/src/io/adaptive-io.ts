import {
  type BigIntStats,
  close,
  closeSync,
  constants as fsc,
  fstat,
  fstatSync,
  open,
  openSync,
  read,
  readSync,
} from 'node:fs';
import { type FileIdentity, identityOf } from './file-identity.js';

export interface AdaptiveIoOptions {
  /** A synchronous call slower than this waited for the disk: go asynchronous for a while. */
  readonly slowMs?: number | undefined;
  /** The longest spell of asynchronous calls after a switch (DEFAULT_ASYNC_BACKOFF_MS). */
  readonly backoffMs?: number | undefined;
  /** The first spell after a quiet while (DEFAULT_MIN_ASYNC_BACKOFF_MS); it doubles on each switch soon after the last. */
  readonly minBackoffMs?: number | undefined;
  /** Slow calls in a row it takes to switch, each ending within `slowWindowMs` of the last (see DEFAULT_SLOW_CALLS). */
  readonly slowCalls?: number | undefined;
  readonly slowWindowMs?: number | undefined;
  /** One call slower than this switches at once (DEFAULT_STALL_MS). */
  readonly stallMs?: number | undefined;
  /** Clock in ms (tests). */
  readonly now?: (() => number) | undefined;
}

/**
 * 1 ms: a 128 KiB pread the page cache answers takes ~6 µs on the measured
 * VM, an open or fstat of a cached block file a few µs; a call 100 times
 * slower waited for the disk (or the thread lost its core for a while, which
 * asynchronous calls would not have helped).
 */
export const DEFAULT_SLOW_IO_MS = 1;

/**
 * Three slow calls in a row, each ending within 50 ms of the one before: a
 * page cache that has lost the cache files makes nearly every call wait for
 * the disk, so the third such call switches after at most three blocking
 * accesses, however long each takes. One slow call alone is
 * usually not the disk: the first open after mount (a cold directory lookup),
 * or this thread losing its core for a moment on a busy 2-core VM. Switching
 * on a single one (as this class first did) sent 70-85 % of a warm
 * sequential read through the thread pool for a whole second on the
 * benchmark machine: warm reads ran at a median 454 MB/s against 516 MB/s
 * with every call in place (5 alternating runs each).
 */
export const DEFAULT_SLOW_CALLS = 3;
export const DEFAULT_SLOW_WINDOW_MS = 50;

/**
 * A single call this slow switches at once: 10 ms is a disk seek or a
 * throttled volume, not a cold lookup or a lost time slice, and the main
 * thread must not wait for two more of them.
 */
export const DEFAULT_STALL_MS = 10;

/**
 * Asynchronous calls after a switch: 50 ms at first, doubling while the
 * synchronous calls tried after each spell are slow again, up to one second.
 * A one-off stall (seen at the start of a warm read on the benchmark VM: one
 * call over 10 ms, then none) costs 50 ms of pooled calls, not a whole
 * second of them (which had cut that read from ~650-740 to 570 MB/s); a
 * cache that has fallen out of the page cache reaches one-second spells
 * within five switches, and then costs the main thread one blocking disk
 * access per second at most; one back in RAM is noticed within a second.
 */
export const DEFAULT_ASYNC_BACKOFF_MS = 1000;
export const DEFAULT_MIN_ASYNC_BACKOFF_MS = 50;

/** One open file: its descriptor and what fstat said when it was opened. */
export interface OpenFile {
  readonly fd: number;
  readonly size: number;
  /** Which version of which file was opened (FileIdentity): what a verification is bound to. */
  readonly identity: FileIdentity;
  /** The fstat behind `identity`, to compare a later fstat with field by field (sameVersion). */
  readonly stats: BigIntStats;
}

/**
 * The small local file operations of the read path (open, fstat, pread,
 * close), done in place while they stay fast. Each asynchronous fs call hops
 * through libuv's thread pool and back: on the measured VM that costs ~25-50
 * µs of main-thread time and latency per call (a thread wake-up is an
 * inter-processor interrupt there), against ~6 µs for a 128 KiB pread the
 * page cache answers in place. Only a few FUSE requests are in flight at
 * once, so that latency is throughput. Calls that turn out slow (the disk,
 * not the page cache: DEFAULT_SLOW_CALLS of them close together, or one
 * stall) switch to asynchronous calls for a spell that grows while they stay
 * slow (DEFAULT_MIN_ASYNC_BACKOFF_MS up to `backoffMs`), so a cold page
 * cache never holds the main thread for long.
 */
export class AdaptiveIo {
  private asyncUntil = 0;
  /** The spell the last switch started. */
  private backoff = 0;
  /** When the slow calls of the current run ended, oldest first. */
  private readonly slowAt: number[] = [];
  /** Calls done in place and through the pool, and how many were slow. */
  readonly counts = { sync: 0, async: 0, slow: 0 };

  constructor(private readonly options: AdaptiveIoOptions = {}) {}

  /** Reads up to `length` bytes at `position` into dst at `at`; resolves to the count read. */
  read(fd: number, dst: Uint8Array, at: number, length: number, position: number): Promise<number> {
    return this.run(
      () => readSync(fd, dst, at, length, position),
      (done) => read(fd, dst, at, length, position, (e, n) => done(e, n)),
    );
  }

  /**
   * read() done in place, now, while calls are done in place: the count
   * read; undefined in pooled mode or on an error (read() then reports it).
   */
  readNow(fd: number, dst: Uint8Array, at: number, length: number, position: number): number | undefined {
    if (!this.inSyncMode()) return undefined;
    try {
      return this.timed(() => readSync(fd, dst, at, length, position));
    } catch {
      return undefined;
    }
  }

  /** Opens a regular file read-only and fstats it. Rejects with the fs error (ENOENT, EISDIR for a directory…). */
  async open(path: string): Promise<OpenFile> {
    // O_NOATIME: reading a cached block should not dirty its inode. Refused (EPERM) on files the caller does not own.
    const fd = await this.run(
      () => openNoAtimeSync(path),
      (done) =>
        open(path, fsc.O_RDONLY | fsc.O_NOATIME, (e, n) => (e?.code === 'EPERM' ? open(path, 'r', done) : done(e, n))),
    );
    let st: BigIntStats;
    try {
      st = await this.stat(fd);
    } catch (e) {
      this.close(fd);
      throw e;
    }
    if (!st.isFile()) {
      this.close(fd);
      throw Object.assign(new Error(`EISDIR: not a regular file, open '${path}'`), { code: 'EISDIR' });
    }
    return { fd, size: Number(st.size), identity: identityOf(st), stats: st };
  }

  /**
   * open() done in place, now, while calls are done in place: the file, or
   * undefined in pooled mode, on any error, or for a file that is not regular
   * (open() then reports it). An open and an fstat of a cached block file: a
   * few microseconds, against a promise chain through the slow path.
   */
  openNow(path: string): OpenFile | undefined {
    if (!this.inSyncMode()) return undefined;
    let fd: number;
    try {
      fd = this.timed(() => openNoAtimeSync(path));
    } catch {
      return undefined;
    }
    const st = this.statNow(fd);
    if (st === undefined || !st.isFile()) {
      this.close(fd);
      return undefined;
    }
    return { fd, size: Number(st.size), identity: identityOf(st), stats: st };
  }

  /** fstat with nanosecond times (bigint). Rejects with the fs error. */
  stat(fd: number): Promise<BigIntStats> {
    return this.run(
      () => fstatSync(fd, { bigint: true }),
      (done) => fstat(fd, { bigint: true }, done),
    );
  }

  /**
   * stat() done in place, now, while calls are done in place; undefined in
   * pooled mode or on an error (stat() then reports it). About a microsecond
   * on the measured VM, so the read path can afford one per read.
   */
  statNow(fd: number): BigIntStats | undefined {
    if (!this.inSyncMode()) return undefined;
    try {
      return this.timed(() => fstatSync(fd, { bigint: true }));
    } catch {
      return undefined;
    }
  }

  /** Closes a descriptor; errors are ignored (nothing useful can be done about them). */
  close(fd: number): void {
    if (this.inSyncMode()) {
      try {
        closeSync(fd);
      } catch {}
    } else close(fd, () => {});
  }

  private inSyncMode(): boolean {
    return this.now() >= this.asyncUntil;
  }

  private now(): number {
    return this.options.now ? this.options.now() : performance.now();
  }

  /**
   * Records a slow call that took `ms` and ended at `t`; switches to the pool
   * on a stall, or when enough slow calls came one close after another.
   */
  private slow(t: number, ms: number): void {
    this.counts.slow++;
    const needed = Math.max(1, this.options.slowCalls ?? DEFAULT_SLOW_CALLS);
    const last = this.slowAt[this.slowAt.length - 1];
    // A gap measured end to end: slow calls back to back are close however long each one took.
    if (last !== undefined && t - ms - last > (this.options.slowWindowMs ?? DEFAULT_SLOW_WINDOW_MS)) {
      this.slowAt.length = 0;
    }
    this.slowAt.push(t);
    if (this.slowAt.length < needed && ms <= (this.options.stallMs ?? DEFAULT_STALL_MS)) return;
    this.slowAt.length = 0;
    const max = this.options.backoffMs ?? DEFAULT_ASYNC_BACKOFF_MS;
    const min = Math.min(max, this.options.minBackoffMs ?? DEFAULT_MIN_ASYNC_BACKOFF_MS);
    // Slow again soon after the last spell ended: the disk, not a blip; stay away longer each time.
    const again = this.backoff > 0 && t - this.asyncUntil < max;
    this.backoff = again ? Math.min(max, this.backoff * 2) : min;
    this.asyncUntil = t + this.backoff;
  }

  private run<T>(inPlace: () => T, pooled: (done: (e: Error | null, v: T) => void) => void): Promise<T> {
    if (this.inSyncMode()) {
      try {
        return Promise.resolve(this.timed(inPlace));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    this.counts.async++;
    return new Promise<T>((resolve, reject) => pooled((e, v) => (e ? reject(e) : resolve(v))));
  }

  /** Runs a call in place, counting it and noting it when slow. */
  private timed<T>(call: () => T): T {
    const t0 = this.now();
    try {
      return call();
    } finally {
      this.counts.sync++;
      const t1 = this.now();
      if (t1 - t0 > (this.options.slowMs ?? DEFAULT_SLOW_IO_MS)) this.slow(t1, t1 - t0);
    }
  }
}

function openNoAtimeSync(path: string): number {
  try {
    return openSync(path, fsc.O_RDONLY | fsc.O_NOATIME);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    return openSync(path, 'r');
  }
}
