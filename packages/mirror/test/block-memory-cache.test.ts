import { describe, expect, it } from 'vitest';
import { BlockMemoryCache } from '../src/block-memory-cache.js';
import { BufferPool } from '../src/buffer-pool.js';

const chunk = (fill: number) => Buffer.alloc(1024, fill);

describe('BlockMemoryCache', () => {
  it('keeps blocks by id up to its byte bound, evicting the least recently used', () => {
    const pool = new BufferPool(1024);
    const cache = new BlockMemoryCache({ pool }, 3 * 1024);
    for (const [i, id] of ['a', 'b', 'c'].entries()) cache.release(cache.add(id, chunk(i)));
    const a = cache.get('a'); // a is now the most recent
    cache.release(a as NonNullable<typeof a>);
    cache.release(cache.add('d', chunk(3))); // evicts b
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.bytes[0]).toBe(0);
    expect(cache.bytes).toBe(3 * 1024);
    expect(cache.hits).toBe(2);
  });

  it('recycles an evicted buffer only once no response is writing it', () => {
    const pool = new BufferPool(1024);
    const cache = new BlockMemoryCache({ pool }, 1024);
    const first = cache.add('a', pool.take()); // held by its first response
    cache.release(cache.add('b', chunk(1))); // evicts a while it is in use
    expect(pool.take()).not.toBe(first.bytes);
    cache.release(first);
    expect(pool.take()).toBe(first.bytes);
  });

  it('hands out pooled chunks for full blocks, and refuses blocks larger than a chunk', () => {
    const pool = new BufferPool(256 * 1024);
    const cache = new BlockMemoryCache({ pool }, 10 * 1024 * 1024);
    const given = Buffer.allocUnsafeSlow(256 * 1024);
    pool.give(given);
    expect(cache.buffer(256 * 1024)).toBe(given);
    expect(cache.buffer(100).length).toBe(100);
    expect(cache.accepts(256 * 1024)).toBe(true);
    expect(cache.accepts(256 * 1024 + 1)).toBe(false);
    const big = cache.add('x', Buffer.alloc(512 * 1024));
    expect(big.bytes.length).toBe(512 * 1024); // served once, not kept
    cache.release(big);
    expect(cache.get('x')).toBeUndefined();
  });
});
