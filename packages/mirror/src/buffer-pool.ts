/**
 * 256 KiB: the default block size, so a default block goes out as one read
 * and one write. Larger files (indexes, 4 MiB blocks) stream in chunks of
 * this size, which bounds a response's memory at one chunk in flight.
 */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/**
 * Free chunks kept for reuse. 64 × 256 KiB = 16 MiB: enough for the
 * concurrency a loopback benchmark or a busy mirror sustains without
 * allocating, small next to the page cache the blocks come from.
 */
export const DEFAULT_POOLED_CHUNKS = 64;

/**
 * Reusable read buffers for the serving path, so a request allocates no
 * 256 KiB buffer (and the GC sees no garbage) in the steady state. A buffer
 * goes back only once the response that used it has handed it to the kernel
 * ('finish' or a write callback): a buffer still queued for a socket must
 * never be reused. One lost on an aborted response is simply collected.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly chunkBytes = DEFAULT_CHUNK_BYTES,
    private readonly maxFree = DEFAULT_POOLED_CHUNKS,
  ) {}

  take(): Buffer {
    // Not from Buffer's shared slab: pooled chunks live long and are written into.
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
  }

  give(buffer: Buffer): void {
    if (this.free.length < this.maxFree && buffer.length === this.chunkBytes) this.free.push(buffer);
  }
}
