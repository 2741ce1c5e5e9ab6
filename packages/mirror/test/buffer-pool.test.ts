import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/buffer-pool.js';

describe('BufferPool', () => {
  it('reuses returned chunks, keeps at most maxFree, and refuses foreign sizes', () => {
    const pool = new BufferPool(1024, 1);
    const a = pool.take();
    const b = pool.take();
    expect(a.length).toBe(1024);
    expect(a).not.toBe(b);
    pool.give(a);
    pool.give(b); // over maxFree: dropped
    pool.give(Buffer.alloc(10)); // not a chunk
    expect(pool.take()).toBe(a);
    expect(pool.take()).not.toBe(b);
  });
});
