import { Worker } from 'node:worker_threads';
import type { FileIdentity } from './file-identity.js';
import type { WriteReply, WriteRequest } from './file-writer-thread.js';

/** The compiled thread body; tests run the built one, as for BlockWorkers. */
const WORKER_URL = new URL('../../dist/sources/file-writer-thread.js', import.meta.url);

/**
 * New cache files, created on a thread of their own (file-writer-thread.ts):
 * the cold path's largest main-thread cost was creating each block's file
 * through libuv's pool, five calls and callbacks per block (~1.2 s of ~4.3 s
 * on a cold read of 1,947 blocks, docs/PERFORMANCE.md). Here the main thread
 * posts one message (the bytes copied, ~88 KiB on average) and gets one back.
 * Not the BlockWorkers thread: synchronous writes there serialised behind
 * decoding and lost (file-writer.ts).
 *
 * write() resolves to the identity of the file written (as writeNewFile's
 * fstat), or rejects with an Error carrying the fs `code` (e.g. ENOSPC).
 * A thread that dies fails the writes it had; the next write starts another.
 */
export class FileWriterPool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve(id: FileIdentity): void; reject(e: Error): void }>();
  private seq = 0;

  write(tmp: string, path: string, bytes: Uint8Array): Promise<FileIdentity> {
    this.closing = false;
    const worker = this.start();
    const n = ++this.seq;
    return new Promise<FileIdentity>((resolve, reject) => {
      this.pending.set(n, { resolve, reject });
      const request: WriteRequest = { n, tmp, path, bytes };
      worker.postMessage(request);
    });
  }

  private closing = false;

  /** Stops the thread once the writes in it are done (a later write starts another). */
  close(): void {
    this.closing = true;
    this.stopIfIdle();
  }

  private stopIfIdle(): void {
    if (!this.closing || this.pending.size > 0 || !this.worker) return;
    const worker = this.worker;
    this.worker = undefined;
    void worker.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_URL);
    // The daemon lives as long as its mount; this thread must not keep a finished process alive.
    worker.unref();
    worker.on('message', (reply: WriteReply) => {
      const p = this.pending.get(reply.n);
      this.pending.delete(reply.n);
      if (!p) return;
      if ('identity' in reply) p.resolve(reply.identity);
      else p.reject(Object.assign(new Error(reply.error), reply.code ? { code: reply.code } : {}));
      this.stopIfIdle();
    });
    const died = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(new Error(why));
    };
    worker.on('error', (e) => died(`file writer failed: ${e.message}`));
    worker.on('exit', (code) => died(`file writer exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private fail(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
