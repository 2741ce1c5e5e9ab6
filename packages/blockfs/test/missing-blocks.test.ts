import { describe, expect, it } from 'vitest';
import { MissingBlocks } from '../src/missing-blocks.js';
import { makeImage, patternBytes } from './image-fixtures.js';

/** Blocks a, zero, b, a, c: three distinct ids, a twice. */
function image() {
  const [a, b, c] = [1, 2, 3].map((seed) => patternBytes(4096, seed));
  const img = makeImage([a, new Uint8Array(4096), b, a, c] as Uint8Array[]);
  const index = img.decoded.index;
  const ids = [0, 2, 4].map((i) => index.ref(i)?.id as string);
  return { index, ids };
}

describe('MissingBlocks', () => {
  it('without a cache, holds every distinct id once, in image order', () => {
    const { index, ids } = image();
    const missing = new MissingBlocks(index, undefined);
    expect(missing.size).toBe(3);
    expect([...missing.refs()].map((r) => r.id)).toEqual(ids);
    expect(ids.every((id) => missing.has(id))).toBe(true);
  });

  it('leaves out what the cache holds, asked once per distinct id with the block ref', () => {
    const { index, ids } = image();
    const asked: string[] = [];
    const missing = new MissingBlocks(index, (r) => {
      asked.push(r.id);
      expect(r.size).toBe(4096);
      return r.id === ids[1];
    });
    expect(asked).toEqual(ids);
    expect(missing.size).toBe(2);
    expect(missing.has(ids[1] as string)).toBe(false);
  });

  it('forgets a block once it is stored, once, and ignores ids the index does not have', () => {
    const { index, ids } = image();
    const missing = new MissingBlocks(index, undefined);
    missing.delete(ids[0] as string);
    missing.delete(ids[0] as string);
    missing.delete('00'.repeat(20));
    missing.delete('not an id');
    expect(missing.size).toBe(2);
    expect(missing.has(ids[0] as string)).toBe(false);
    expect([...missing.refs()].map((r) => r.id)).toEqual(ids.slice(1));
  });
});
