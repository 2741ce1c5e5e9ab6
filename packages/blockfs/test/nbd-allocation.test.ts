import { describe, expect, it } from 'vitest';
import { allocationExtents, type BlockMap } from '../src/nbd/allocation.js';

/** 10 blocks of 100 bytes, the last one 50; blocks 2, 3 and 9 are zero. */
const map: BlockMap = { size: 950, blockSize: 100, isZero: (i) => [2, 3, 9].includes(i) };
const HZ = 3;

describe('allocationExtents', () => {
  it('merges runs of one kind and cuts at the range, even mid-block', () => {
    expect(allocationExtents(map, 0, 950)).toEqual([
      { length: 200, flags: 0 },
      { length: 200, flags: HZ },
      { length: 500, flags: 0 },
      { length: 50, flags: HZ },
    ]);
    expect(allocationExtents(map, 150, 200)).toEqual([
      { length: 50, flags: 0 },
      { length: 150, flags: HZ },
    ]);
  });

  it('gives one extent with REQ_ONE, and none past the end of the image', () => {
    expect(allocationExtents(map, 250, 600, true)).toEqual([{ length: 150, flags: HZ }]);
    expect(allocationExtents(map, 900, 1000)).toEqual([{ length: 50, flags: HZ }]);
  });
});
