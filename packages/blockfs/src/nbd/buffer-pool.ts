/**
 * Read buffers, reused. A READ is answered from a buffer that lives until the
 * socket has written it; allocating each anew (256 KiB for nbdcopy, 2 MiB
 * for qemu) made the garbage collector a fifth of a warm copy's CPU time. A
 * buffer goes back to the pool once written; the pool keeps at most
 * `maxFreeBytes` of them, by size, so a connection holds no more than it
 * recently needed.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  constructor(private readonly maxFreeBytes: number) {}

  take(length: number): Buffer {
    const b = this.free.get(length)?.pop();
    if (!b) return Buffer.allocUnsafeSlow(length);
    this.freeBytes -= length;
    return b;
  }

  give(b: Buffer): void {
    if (this.freeBytes + b.length > this.maxFreeBytes) return;
    const list = this.free.get(b.length) ?? [];
    list.push(b);
    this.free.set(b.length, list);
    this.freeBytes += b.length;
  }
}
