import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/nbd/buffer-pool.js';

describe('BufferPool', () => {
  it('hands a given-back buffer out again for the same length, and keeps no more than its cap', () => {
    const pool = new BufferPool(3000);
    const a = pool.take(1000);
    const b = pool.take(1000);
    expect(a).not.toBe(b);
    pool.give(a);
    expect(pool.take(1000)).toBe(a);
    expect(pool.take(500)).not.toBe(a);
    pool.give(a);
    pool.give(b);
    const c = pool.take(2000);
    pool.give(c); // over the cap: dropped
    expect(pool.take(2000)).not.toBe(c);
  });
});
