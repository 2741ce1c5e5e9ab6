/**
 * Whole-block buffers the packer reads into, hands to a worker (transferred,
 * not copied), and gets back with the block's stored bytes in it. Reusing
 * them keeps the packer's memory at its in-flight window: a fresh 256 KiB
 * buffer per block is freed only when V8 next collects, and between two
 * collections a fast pack piled up tens of MB of them.
 *
 * `take()` gives a buffer of exactly `blockSize` bytes that the caller owns
 * until it `give`s the ArrayBuffer back; one never given back (a failed
 * block) is simply collected.
 */
export class BlockBufferPool {
  private readonly free: ArrayBuffer[] = [];

  /** `maxFree`: the most buffers kept; the in-flight window's size, as more are never out at once. */
  constructor(
    readonly blockSize: number,
    private readonly maxFree: number,
  ) {}

  take(): Buffer {
    const reused = this.free.pop();
    // Not from Buffer's shared slab: the whole ArrayBuffer is transferred to a worker.
    return reused ? Buffer.from(reused) : Buffer.allocUnsafeSlow(this.blockSize);
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === this.blockSize && this.free.length < this.maxFree) this.free.push(buffer);
  }

  /** Buffers waiting to be taken again. */
  get idle(): number {
    return this.free.length;
  }
}

/** Where readers get a block's buffer: a pool's `take`, or a fresh buffer each time. */
export type TakeBuffer = () => Buffer;

export function freshBuffers(blockSize: number): TakeBuffer {
  return () => Buffer.allocUnsafeSlow(blockSize);
}
