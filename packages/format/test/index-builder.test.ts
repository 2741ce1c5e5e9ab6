import { describe, expect, it } from 'vitest';
import { blockId } from '../src/block-id.js';
import { decodeIndex, encodeIndex, type IndexEntry, type IndexHeader } from '../src/image-index.js';
import { IndexBuilder } from '../src/index-builder.js';

const HEADER: IndexHeader = {
  version: 1,
  name: 'img',
  size: 5 * 4096,
  blockSize: 4096,
  hash: 'sha1',
  codec: 'zstd:3',
  created: '2026-01-01T00:00:00Z',
};

const a: IndexEntry = { id: blockId(new Uint8Array([1]), 'sha1'), codec: 'zstd', storedSize: 10 };
const b: IndexEntry = { id: blockId(new Uint8Array([2]), 'sha1'), codec: 'none', storedSize: 4096 };

describe('IndexBuilder', () => {
  it('takes entries in any order; blocks never set are zero; encodes like the same list', () => {
    const builder = new IndexBuilder('sha1', 2);
    builder.set(3, a);
    builder.setZero(0, 1);
    builder.set(1, b);
    builder.setZero(4, 1);
    expect(builder.length).toBe(5);
    const list = [{ zero: true }, b, { zero: true }, a, { zero: true }] as IndexEntry[];
    const built = encodeIndex(HEADER, builder.build(HEADER).entries());
    expect(Buffer.from(built).equals(Buffer.from(encodeIndex(HEADER, list)))).toBe(true);
    expect(decodeIndex(built).index.counts()).toEqual({ blocks: 5, zero: 3, unique: 2, storedBytes: 4106 });
  });

  it('zeroes a block set earlier, and grows past its first size', () => {
    const builder = new IndexBuilder('sha1');
    builder.set(2000, a);
    builder.set(1, a);
    builder.setZero(0, 2);
    expect(builder.length).toBe(2001);
    const index = builder.build({ ...HEADER, size: 2001 * 4096 });
    expect(index.isZero(1)).toBe(true);
    expect(index.entry(2000)).toEqual(a);
  });

  it('refuses an id of the wrong length and a negative block', () => {
    const builder = new IndexBuilder('sha256');
    expect(() => builder.set(0, a)).toThrow(RangeError);
    expect(() => builder.set(-1, { zero: true })).toThrow(RangeError);
  });
});
