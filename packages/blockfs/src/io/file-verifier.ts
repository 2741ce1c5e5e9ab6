import { read } from 'node:fs';
import { blockId, hashOfId } from '@thfc/format';
import type { FetchOptions } from '@thfc/store';

/**
 * Checks that a cached block file holds its block: the first `size` bytes of
 * `fd` hash to `id`. Resolves false for other bytes; rejects on I/O errors.
 */
export interface FileVerifier {
  /** `options` carries the priority (a reader waiting, or read-ahead) for verifiers that queue work. */
  verify(fd: number, size: number, id: string, options?: FetchOptions): Promise<boolean>;
  /** Stops any threads it runs. */
  close(): Promise<void>;
  toString(): string;
}

/**
 * Buffers kept for reads being checked at once. Four: the kernel has at most a
 * few FUSE reads of one stream in flight, and read-ahead checks a window of
 * blocks; more than that allocate and are left to the GC.
 */
const SPARE_BUFFERS = 4;

/**
 * Verification on the calling thread: one pread into a reused buffer (no
 * allocation per block), then the hash. SHA-1 runs at ~1.3 GB/s on one core
 * (limits.md), ~0.2 ms per 256 KiB block. BlockWorkers does the same on a
 * helper thread.
 */
export class InlineVerifier implements FileVerifier {
  private readonly spare: Buffer[] = [];

  async verify(fd: number, size: number, id: string): Promise<boolean> {
    const alg = hashOfId(id);
    if (alg === undefined) return false;
    const spare = this.spare.pop();
    const buf = spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafeSlow(size);
    try {
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, buf, 0, size, 0, (e, bytes) => (e ? reject(e) : resolve(bytes))),
      );
      return n === size && blockId(buf.subarray(0, size), alg) === id;
    } finally {
      if (this.spare.length < SPARE_BUFFERS) this.spare.push(buf);
    }
  }

  async close(): Promise<void> {
    this.spare.length = 0;
  }

  toString(): string {
    return 'inline';
  }
}
