import { type BlockRef, type BlockSink, StoreFullError } from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '@thfc/store';

export interface WriteBehindOptions {
  /** Writes running at once. */
  readonly parallel?: number | undefined;
  /** Bytes of blocks queued or being written; a block that would pass it is served but not cached. */
  readonly maxPendingBytes?: number | undefined;
}

/**
 * Two writes at once: a block write is open + write + close + rename, four
 * trips through libuv's pool of four threads. Two keep the disk busy while
 * leaving threads for the preads a reader is waiting on.
 */
export const DEFAULT_WRITE_PARALLEL = 2;

/**
 * 32 MiB: 128 decoded 256 KiB blocks. Background work (read-ahead, prefetch,
 * fill) waits for its blocks' writes, so it never runs ahead of the disk; what
 * queues here beyond that is blocks readers fetched faster than the disk takes
 * them (a new file costs ~0.5 ms of page-cache writing per 256 KiB on the
 * measured VM). Those buffers are mostly the ones the memory cache holds
 * anyway, so the bound costs little extra RSS; past it, blocks are served
 * without being cached rather than piling up against the 200 MB budget.
 */
export const DEFAULT_MAX_PENDING_BYTES = 32 * 1024 * 1024;

interface Job {
  readonly ref: BlockRef;
  readonly data: Uint8Array;
  readonly stored: Promise<boolean>;
  settle(stored: boolean): void;
}

/**
 * Writes blocks to a sink (the disk cache) off the read path: write() returns
 * at once, and the reader is served from memory meanwhile. Blocks queued or
 * being written stay readable through pending(), so a block is never fetched
 * again while its write is still on the way.
 *
 * Only verified bytes may be handed to it. Write failures never reach a
 * reader: a full disk (StoreFullError) is logged once and stops caching for
 * the rest of the daemon's life; any other failure is logged (the first one,
 * then a count) and that block is simply not cached.
 */
export class WriteBehind {
  private readonly queue: Job[] = [];
  /** Queued or being written, by block id. */
  private readonly jobs = new Map<string, Job>();
  private pendingBytes = 0;
  private running = 0;
  private full = false;
  private idleWaiters: (() => void)[] = [];
  /** Blocks not cached: the disk was full, a write failed, or too much was pending. */
  skipped = 0;
  failed = 0;

  constructor(
    private readonly components: {
      sink: BlockSink & { toString(): string };
      logger?: Logger | undefined;
      /**
       * Given each buffer once its block is written, for reuse (the decoder's
       * pool). Only callers that hand over buffers no one else holds once
       * written may set it (CheckedReader.keep says why it does).
       */
      release?: ((data: Uint8Array) => void) | undefined;
    },
    private readonly options: WriteBehindOptions = {},
  ) {}

  /**
   * Queues a verified block for the sink and returns at once. The promise
   * resolves once the block is stored (true) or will not be (false); it never
   * rejects, and callers need not wait for it.
   */
  write(ref: BlockRef, data: Uint8Array): Promise<boolean> {
    const known = this.jobs.get(ref.id);
    if (known) return known.stored;
    const max = this.options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    if (this.full || this.pendingBytes + data.length > max) {
      this.skipped++;
      return Promise.resolve(false);
    }
    let settle!: (stored: boolean) => void;
    const stored = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    const job: Job = { ref, data, stored, settle };
    this.pendingBytes += data.length;
    this.jobs.set(ref.id, job);
    this.queue.push(job);
    this.pump();
    return stored;
  }

  /** The block's bytes while it is queued or being written. */
  pending(id: string): Uint8Array | undefined {
    return this.jobs.get(id)?.data;
  }

  /** While the block is queued or being written: its write's outcome, as write() returned it. */
  written(id: string): Promise<boolean> | undefined {
    return this.jobs.get(id)?.stored;
  }

  /** True once a full disk stopped caching. */
  get stopped(): boolean {
    return this.full;
  }

  /** Resolves when nothing is queued or being written (unmount, tests). */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private get logger(): Logger {
    return this.components.logger ?? SILENT_LOGGER;
  }

  private pump(): void {
    const parallel = Math.max(1, this.options.parallel ?? DEFAULT_WRITE_PARALLEL);
    while (this.running < parallel) {
      const job = this.queue.shift();
      if (!job) break;
      if (this.full) {
        this.skipped++;
        this.finish(job, false);
        continue;
      }
      this.running++;
      this.components.sink.put(job.ref, job.data).then(
        () => this.done(job, true),
        (e: unknown) => {
          this.fail(job, e);
          this.done(job, false);
        },
      );
    }
    if (this.running === 0 && this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private done(job: Job, stored: boolean): void {
    this.running--;
    this.finish(job, stored);
    if (stored) this.components.release?.(job.data);
    this.pump();
  }

  private finish(job: Job, stored: boolean): void {
    this.jobs.delete(job.ref.id);
    this.pendingBytes -= job.data.length;
    job.settle(stored);
  }

  private fail(job: Job, e: unknown): void {
    const where = String(this.components.sink);
    if (e instanceof StoreFullError) {
      if (!this.full) this.logger.fault(`cache ${where} is full: serving blocks without caching them`);
      this.full = true;
      this.skipped++;
      return;
    }
    this.failed++;
    if (this.failed === 1) {
      this.logger.fault(
        `cache ${where}: cannot store block ${job.ref.id}: ${(e as Error)?.message ?? e}; serving it uncached (further failures are counted, not logged)`,
      );
    }
  }

  toString(): string {
    return `behind(${this.components.sink})`;
  }
}
