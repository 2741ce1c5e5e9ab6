import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * A fixed pool of worker threads, each fed tasks in FIFO order. Results are
 * matched to tasks by order per worker, so tasks need no ids of their own.
 */
export class WorkerPool<Task, Result> {
  private readonly workers: {
    worker: Worker;
    waiting: { resolve: (r: Result) => void; reject: (e: Error) => void }[];
  }[] = [];
  private failed: Error | undefined;

  constructor(script: URL, size: number, workerData: unknown) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(script, { workerData });
      const slot = { worker, waiting: [] as { resolve: (r: Result) => void; reject: (e: Error) => void }[] };
      worker.on('message', (r: Result) => slot.waiting.shift()?.resolve(r));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0 && !this.failed) this.fail(new Error(`worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  private fail(e: Error): void {
    this.failed = e;
    for (const w of this.workers) for (const p of w.waiting.splice(0)) p.reject(e);
  }

  run(task: Task, transfer: ArrayBuffer[] = []): Promise<Result> {
    if (this.failed) return Promise.reject(this.failed);
    let best = this.workers[0];
    for (const w of this.workers) if (best && w.waiting.length < best.waiting.length) best = w;
    if (!best) return Promise.reject(new Error('empty worker pool'));
    const slot = best;
    return new Promise<Result>((resolve, reject) => {
      slot.waiting.push({ resolve, reject });
      slot.worker.postMessage(task, transfer);
    });
  }

  get size(): number {
    return this.workers.length;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/**
 * A worker script beside the calling module. Under vitest the caller is the
 * TypeScript source, which Node cannot run in a worker, so fall back to the
 * built file in ../dist (the test command builds first).
 */
export function workerScript(name: string, callerUrl: string): URL {
  const beside = new URL(`./${name}.js`, callerUrl);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL(`../dist/${name}.js`, callerUrl);
}
