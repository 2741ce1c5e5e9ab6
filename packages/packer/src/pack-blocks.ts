import { type CommandIo, type ProgressSink, progressFor } from '@thfc/cli';
import { type CodecSpec, type HashAlgorithm, IndexBuilder } from '@thfc/format';
import type { DirStore } from '@thfc/store';
import { BlockBufferPool } from './block-buffer-pool.js';
import { fsError, InputError, InterruptedError, StoreFullError } from './errors.js';
import type { ImageInput } from './image-input.js';
import type { PackTask, PackTaskResult } from './pack-protocol.js';
import { WorkerPool, workerScript } from './worker-pool.js';

/**
 * Blocks in flight per worker. Two keeps every worker busy while the main
 * thread reads and writes; more only holds memory (each is a whole block,
 * its buffer reused once the block is written).
 */
const DEFAULT_INFLIGHT_PER_WORKER = 4;

export interface PackBlocksOptions {
  /** The image and the store as the user named them (for messages). */
  readonly image: string;
  readonly store: string;
  readonly name: string;
  readonly blockSize: number;
  readonly hash: HashAlgorithm;
  readonly codec: CodecSpec;
  readonly workers: number;
}

/** What the read/dispatch loop leaves for the index and the summary. */
export interface PackedBlocks {
  /** Every block of the image, in order: its id and stored size, or zero. */
  readonly entries: IndexBuilder;
  readonly bytesIn: number;
  /** Bytes actually read: holes qemu-img map reported are skipped. */
  readonly bytesRead: number;
  /** Blocks (and their stored bytes) this run wrote: the store lacked them. */
  readonly newBlocks: number;
  readonly newBytes: number;
}

/**
 * Reads INPUT block by block and hands each to a worker thread (hash, zero
 * test, compress, look it up in the store); the main thread writes the new
 * ones to STORE. Memory is bounded by the in-flight window, not by the image.
 * Closes INPUT. An interrupted or failed run leaves only whole blocks behind
 * and says how many (InterruptedError, StoreFullError); an empty image is an
 * InputError.
 */
export async function packBlocks(
  input: ImageInput,
  store: DirStore,
  o: PackBlocksOptions,
  io: CommandIo,
): Promise<PackedBlocks> {
  const pool = new WorkerPool<PackTask, PackTaskResult>(workerScript('pack-worker', import.meta.url), o.workers, {
    storeRoot: o.store,
    hash: o.hash,
    codec: o.codec,
  });
  const run = new PackRun(store, pool, o, input.size);
  const onAbort = () => run.stop.abort(io.signal.reason);
  io.signal.addEventListener('abort', onAbort, { once: true });
  const progress = progressFor(io, `pack ${o.name}`, input.size);
  try {
    await run.readAll(input, progress);
  } catch (e) {
    if (!run.stop.signal.aborted) run.firstError ??= fsError(e, o.image);
  } finally {
    await Promise.allSettled(run.inflight);
    await pool.close();
    await input.close().catch(() => {});
    io.signal.removeEventListener('abort', onAbort);
  }
  progress.finish();
  if (io.signal.aborted && !run.firstError) {
    throw new InterruptedError(
      `interrupted after ${formatCount(run.entries.length)} blocks; ${run.newBlocks} new blocks are stored and will be reused: run the same command again to finish`,
    );
  }
  if (run.firstError instanceof StoreFullError) {
    throw new StoreFullError(
      `store ${o.store} is full (no space left on device) after ${run.newBlocks} new blocks; they are kept: free space and run the same command again to resume`,
    );
  }
  if (run.firstError) throw fsError(run.firstError, o.store);
  if (run.bytesIn === 0) throw new InputError(`${o.image}: the image is empty`);
  return run;
}

/** One pack's window of blocks in flight, and what it has counted and written so far. */
class PackRun implements PackedBlocks {
  readonly entries: IndexBuilder;
  /** Stops reading: on the user's interrupt, or at the first failure. */
  readonly stop = new AbortController();
  readonly inflight = new Set<Promise<void>>();
  private readonly maxInflight: number;
  private readonly buffers: BlockBufferPool;
  /** Blocks this run wrote: one met twice is written once. */
  private readonly written = new Set<string>();
  bytesIn = 0;
  bytesRead = 0;
  newBlocks = 0;
  newBytes = 0;
  firstError: unknown;

  constructor(
    private readonly store: DirStore,
    private readonly pool: WorkerPool<PackTask, PackTaskResult>,
    private readonly o: PackBlocksOptions,
    size: number | undefined,
  ) {
    // Typed arrays sized for the whole image: the pages of its holes are never written, so never resident.
    this.entries = new IndexBuilder(o.hash, size ? Math.ceil(size / o.blockSize) : 0);
    this.maxInflight = o.workers * DEFAULT_INFLIGHT_PER_WORKER;
    // One more than the window: the next block is read before waiting for a slot.
    this.buffers = new BlockBufferPool(o.blockSize, this.maxInflight + 1);
  }

  async readAll(input: ImageInput, progress: ProgressSink): Promise<void> {
    const { stop, inflight } = this;
    let seq = 0;
    for await (const step of input.blocks(this.o.blockSize, stop.signal, () => this.buffers.take())) {
      if (stop.signal.aborted) break;
      if (step.kind === 'holes') {
        this.entries.setZero(seq, step.count);
        seq += step.count;
        this.bytesIn += step.bytes;
        progress.update(this.bytesIn);
        continue;
      }
      const block = step.buffer;
      const task: PackTask = { seq: seq++, buffer: block.buffer as ArrayBuffer, length: block.length };
      this.bytesIn += block.length;
      this.bytesRead += block.length;
      const p: Promise<void> = this.pool
        .run(task, [task.buffer])
        .then((r) => this.stored(r))
        .catch((e) => {
          this.firstError ??= e;
          stop.abort(e);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      progress.update(this.bytesIn);
      if (inflight.size >= this.maxInflight) await Promise.race(inflight);
    }
  }

  /** A worker's answer: the block's entry, and its bytes written when the store lacks them. */
  private async stored(r: PackTaskResult): Promise<void> {
    if ('error' in r) throw new Error(`block ${r.seq}: ${r.error}`);
    if (r.zero) {
      this.entries.setZero(r.seq, 1);
      this.buffers.give(r.buffer);
      return;
    }
    this.entries.set(r.seq, { id: r.id, codec: r.codec, storedSize: r.storedSize });
    if (!r.existing && !this.written.has(r.id)) {
      this.written.add(r.id);
      const ref = { id: r.id, codec: r.codec, storedSize: r.storedSize, size: 0 };
      await this.store.put(ref, new Uint8Array(r.buffer, 0, r.storedSize));
      this.newBlocks++;
      this.newBytes += r.storedSize;
    }
    // Only once written: the stored bytes live in this buffer until then.
    this.buffers.give(r.buffer);
  }
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
