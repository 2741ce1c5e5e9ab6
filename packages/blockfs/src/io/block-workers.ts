import { Worker } from 'node:worker_threads';
import { BlockCorruptError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import type { BlockDecoder, Decoded, GateWaiter, Priority } from '@thfc/store';
import { currentPriority, type FetchOptions, PriorityGate } from '@thfc/store';
import type { WorkerReply, WorkerRequest } from './block-worker.js';
import type { FileVerifier } from './file-verifier.js';

export interface BlockWorkersOptions {
  /** Threads; 0 is not allowed (use InlineDecoder and InlineVerifier instead). */
  readonly threads?: number | undefined;
}

/**
 * One thread. The daemon's main thread is the bottleneck of every read (FUSE
 * requests, HTTP, bookkeeping): on the 2-core machine (limits.md) one helper
 * thread takes zstd decoding (~0.85 GB/s) and SHA-1 (~1.3 GB/s) off it and
 * leaves the other core's remaining time to the kernel, the reader and the
 * mirror. A second thread would only compete with them.
 */
export const DEFAULT_BLOCK_THREADS = 1;

/**
 * The compiled worker. The same relative path works from src/io (tests)
 * and dist/io: both sit two levels below the package, so tests run the
 * built worker (build first, as for every other package).
 */
const WORKER_URL = new URL('../../dist/io/block-worker.js', import.meta.url);

/**
 * Recycled buffers kept: 16 × 256 KiB = 4 MiB. The write-behind hands them
 * back about as fast as fetches take them; a few more than the read-ahead
 * window covers a burst, and more would only hold RAM idle.
 */
const MAX_SPARES = 16;

/**
 * Jobs handed to a thread at once: the one it runs and the next, so it never
 * idles waiting for the main thread. The rest wait here, where a job a reader
 * waits on goes before read-ahead, prefetch and fill (as in an HTTP mirror's
 * queues): a reader's block waits behind at most one background job per thread.
 */
const POSTED_PER_THREAD = 2;

/** One job: waits in the gate, then is posted to a thread (`post`) and answered by it. */
class Job implements GateWaiter {
  constructor(
    public priority: Priority,
    readonly make: (n: number) => WorkerRequest,
    readonly transfer: ArrayBuffer[],
    private readonly post: (job: Job) => void,
    readonly resolve: (reply: WorkerReply) => void,
    readonly fail: (error: unknown) => void,
  ) {}

  grant(): void {
    this.post(this);
  }
}

class Thread {
  readonly pending = new Map<number, Job>();
  worker: Worker | undefined;
}

/**
 * Worker threads that decode and verify fetched blocks (BlockDecoder) and
 * hash cached block files on their first use (FileVerifier), so the main
 * thread keeps answering FUSE requests meanwhile. Work goes to the thread with
 * the fewest jobs. A thread that dies fails its jobs (MirrorUnavailableError:
 * the block could not be checked, so it is not served) and is replaced at once
 * when jobs wait, else on the next job.
 *
 * Stored bytes are transferred to the thread and back, and the decoded block
 * comes back the same way: no copies. The caller's stored buffer is empty
 * afterwards; decode() returns the one to use.
 */
export class BlockWorkers implements BlockDecoder, FileVerifier {
  private readonly threads: Thread[];
  /** Buffers this pool handed out (decoded blocks): the only ones recycle() takes back. */
  private readonly handedOut = new WeakSet<ArrayBufferLike>();
  /** Recycled buffers waiting for a block to be decoded into. */
  private readonly spares: ArrayBuffer[] = [];
  /** Jobs waiting for a thread, demand first; a slot is one of a thread's POSTED_PER_THREAD. */
  private readonly gate: PriorityGate<Job>;
  private readonly post = (job: Job) => this.postToThread(job);
  private seq = 0;
  private closed = false;

  constructor(options: BlockWorkersOptions = {}) {
    const n = options.threads ?? DEFAULT_BLOCK_THREADS;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`threads must be a whole number ≥ 1, not ${n}`);
    this.threads = Array.from({ length: n }, () => new Thread());
    this.gate = new PriorityGate<Job>({}, { capacity: n * POSTED_PER_THREAD });
  }

  async decode(ref: BlockRef, stored: Uint8Array, source: string, options?: FetchOptions): Promise<Decoded> {
    const plain = { id: ref.id, codec: ref.codec, storedSize: ref.storedSize, size: ref.size };
    // A buffer that is not all its own (a slice of a pool) is copied once, so the transfer takes nothing else.
    const own =
      stored.byteOffset === 0 && stored.byteLength === stored.buffer.byteLength && stored.buffer instanceof ArrayBuffer
        ? stored
        : Uint8Array.prototype.slice.call(stored);
    const spare = this.spareFor(ref.size);
    const into = spare && new Uint8Array(spare);
    const transfer = spare ? [own.buffer as ArrayBuffer, spare] : [own.buffer as ArrayBuffer];
    const reply = await this.run(
      (n) => ({ n, op: 'decode', ref: plain, stored: own, source, into }),
      options,
      transfer,
    );
    if ('corrupt' in reply) throw new BlockCorruptError(ref.id, source, reply.corrupt);
    if (!('data' in reply)) throw new MirrorUnavailableError(this.toString(), 'unexpected reply to decode');
    // Arrived as plain Uint8Arrays; callers expect Buffers (copy, subarray) as everywhere else.
    const data = asBuffer(reply.data);
    const back = reply.stored ? asBuffer(reply.stored) : data;
    this.handedOut.add(data.buffer);
    return { stored: back, data };
  }

  /**
   * Takes back a block decoded here that no one holds any more (the
   * write-behind, once it is on disk), to decode a later block into: the main
   * thread then allocates no 256 KiB buffer per fetched block.
   */
  recycle(data: Uint8Array): void {
    const buffer = data.buffer;
    if (!this.handedOut.has(buffer) || !(buffer instanceof ArrayBuffer)) return; // not one of ours
    if (this.spares.length < MAX_SPARES && !this.spares.includes(buffer)) this.spares.push(buffer);
  }

  private spareFor(size: number): ArrayBuffer | undefined {
    const spare = this.spares.pop();
    if (spare && spare.byteLength >= size) return spare;
    return undefined; // too small for this image's blocks: left to the GC
  }

  async verify(fd: number, size: number, id: string, options?: FetchOptions): Promise<boolean> {
    const reply = await this.run((n) => ({ n, op: 'verify', fd, size, id }), options);
    if (!('ok' in reply)) throw new MirrorUnavailableError(this.toString(), 'unexpected reply to verify');
    return reply.ok;
  }

  async close(): Promise<void> {
    this.closed = true;
    const closed = new MirrorUnavailableError(this.toString(), 'closed');
    this.gate.failAll(closed);
    await Promise.all(
      this.threads.map(async (t) => {
        const w = t.worker;
        t.worker = undefined;
        await w?.terminate();
        this.fail(t, new MirrorUnavailableError(this.toString(), 'closed'));
      }),
    );
  }

  /** @internal Threads started and not yet told to end (they start on the first job; close() or a thread's death ends one). */
  get running(): number {
    return this.threads.filter((t) => t.worker !== undefined).length;
  }

  toString(): string {
    return `workers(${this.threads.length})`;
  }

  private run(
    make: (n: number) => WorkerRequest,
    options: FetchOptions | undefined,
    transfer: ArrayBuffer[] = [],
  ): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new MirrorUnavailableError(this.toString(), 'closed'));
    return new Promise<WorkerReply>((resolve, reject) => {
      const job = new Job(currentPriority(options), make, transfer, this.post, resolve, reject);
      if (this.gate.tryTake(job.priority)) job.grant();
      else {
        this.gate.wait(job, undefined, options?.urgency);
      }
    }).then((reply) => {
      if ('error' in reply) {
        const e = new MirrorUnavailableError(this.toString(), reply.error);
        throw reply.code ? Object.assign(e, { errno: reply.code }) : e;
      }
      return reply;
    });
  }

  /** Hands a job the gate let through to the thread with the fewest jobs (which has room: the gate counts them). */
  private postToThread(job: Job): void {
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const worker = this.start(thread);
    const n = ++this.seq;
    thread.pending.set(n, job);
    worker.postMessage(job.make(n), job.transfer);
  }

  private start(thread: Thread): Worker {
    if (thread.worker) return thread.worker;
    const worker = new Worker(WORKER_URL);
    // The daemon lives as long as its mount; these threads must not keep a finished process alive.
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const job = thread.pending.get(reply.n);
      if (job) {
        thread.pending.delete(reply.n);
        this.gate.release(job.priority);
        job.resolve(reply);
      }
      this.gate.pump();
    });
    const died = (why: string) => {
      if (thread.worker !== worker) return;
      thread.worker = undefined;
      this.fail(thread, new MirrorUnavailableError(this.toString(), why));
      // The jobs still queued go to a new thread now: none may be waiting for a later job to make a pass.
      if (!this.closed) this.gate.pump();
    };
    worker.on('error', (e) => died(`worker failed: ${e.message}`));
    worker.on('exit', (code) => died(`worker exited (${code})`));
    thread.worker = worker;
    return worker;
  }

  private fail(thread: Thread, error: Error): void {
    for (const job of thread.pending.values()) {
      this.gate.release(job.priority);
      job.fail(error);
    }
    thread.pending.clear();
  }
}

function asBuffer(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
