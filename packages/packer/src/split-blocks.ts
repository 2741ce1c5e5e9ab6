import type { FileHandle } from 'node:fs/promises';
import { freshBuffers, type TakeBuffer } from './block-buffer-pool.js';

/**
 * Re-chunks a byte stream into blocks of exactly `blockSize` bytes (the last
 * may be short). Each yielded block is a buffer from `take` (a whole
 * `blockSize` buffer of its own) that the consumer owns, so it can be
 * transferred to a worker without copying again.
 */
export async function* splitBlocks(
  input: AsyncIterable<Uint8Array>,
  blockSize: number,
  signal?: AbortSignal,
  take: TakeBuffer = freshBuffers(blockSize),
): AsyncGenerator<Buffer> {
  let block = take();
  let fill = 0;
  for await (const chunk of input) {
    signal?.throwIfAborted();
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(blockSize - fill, chunk.length - off);
      block.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === blockSize) {
        yield block;
        block = take();
        fill = 0;
      }
    }
  }
  if (fill > 0) yield block.subarray(0, fill);
}

/** Reads a file (or any fd) as blocks with positional-less reads straight into buffers from `take`: no extra copy. */
export async function* readBlocks(
  fh: FileHandle,
  blockSize: number,
  signal?: AbortSignal,
  take: TakeBuffer = freshBuffers(blockSize),
): AsyncGenerator<Buffer> {
  for (;;) {
    signal?.throwIfAborted();
    const block = take();
    let fill = 0;
    while (fill < blockSize) {
      const { bytesRead } = await fh.read(block, fill, blockSize - fill, null);
      if (bytesRead === 0) break;
      fill += bytesRead;
    }
    if (fill > 0) yield fill === blockSize ? block : block.subarray(0, fill);
    if (fill < blockSize) return;
  }
}
