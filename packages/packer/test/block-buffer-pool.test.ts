import { describe, expect, it } from 'vitest';
import { BlockBufferPool } from '../src/block-buffer-pool.js';

describe('BlockBufferPool', () => {
  it('gives back a buffer it was given, whole, before allocating a new one', () => {
    const pool = new BlockBufferPool(4096, 2);
    const a = pool.take();
    expect(a.length).toBe(4096);
    // Its own ArrayBuffer, not a slice of Buffer's shared slab: it is transferred whole to a worker.
    expect(a.buffer.byteLength).toBe(4096);
    pool.give(a.buffer as ArrayBuffer);
    const again = pool.take();
    expect(again.buffer).toBe(a.buffer);
    expect(again.length).toBe(4096);
    expect(pool.take().buffer).not.toBe(a.buffer);
  });

  it('keeps at most maxFree buffers, and none of another size', () => {
    const pool = new BlockBufferPool(4096, 2);
    const taken = [pool.take(), pool.take(), pool.take()];
    for (const b of taken) pool.give(b.buffer as ArrayBuffer);
    expect(pool.idle).toBe(2);
    pool.give(new ArrayBuffer(100));
    expect(pool.idle).toBe(2);
    const small = new BlockBufferPool(4096, 5);
    small.give(new ArrayBuffer(100));
    expect(small.idle).toBe(0);
  });
});
