import { NBD_STATE_HOLE, NBD_STATE_ZERO } from '@thfc/format';
import type { Extent } from './reply.js';

/** How an image is laid out, as base:allocation needs it. */
export interface BlockMap {
  readonly size: number;
  readonly blockSize: number;
  /** Block i is all zeros and stored nowhere (no entry of the index points at data). */
  isZero(i: number): boolean;
}

/**
 * base:allocation over [offset, offset + length): runs of data blocks as
 * allocated (flags 0), runs of zero blocks as hole|zero, so that copying
 * tools skip them. Adjacent blocks of one kind are one extent; with `one`
 * only the first extent is given. Extents never pass the range's end.
 */
export function allocationExtents(map: BlockMap, offset: number, length: number, one = false): Extent[] {
  const end = Math.min(map.size, offset + length);
  const out: Extent[] = [];
  let at = offset;
  while (at < end) {
    const i = Math.floor(at / map.blockSize);
    const zero = map.isZero(i);
    let j = i + 1;
    while (j * map.blockSize < end && map.isZero(j) === zero) j++;
    const runEnd = Math.min(end, j * map.blockSize);
    out.push({ length: runEnd - at, flags: zero ? NBD_STATE_HOLE | NBD_STATE_ZERO : 0 });
    if (one) break;
    at = runEnd;
  }
  return out;
}
