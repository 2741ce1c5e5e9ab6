import type { BlockRef, ImageIndex } from '@thfc/format';

/**
 * The distinct blocks of a mounted image that the local cache does not hold:
 * one bit per block of the index, set at the first block of each missing id.
 * 512 KB for a 4,194,304-block image, where a Set of hex ids took ~100 bytes
 * a block and a minute to build.
 */
export class MissingBlocks {
  private readonly bits: Uint8Array;
  private count = 0;

  /** `holds(ref)`: whether the cache holds the block; undefined when there is no cache, or an empty one. */
  constructor(
    private readonly index: ImageIndex,
    holds: ((ref: BlockRef) => boolean) | undefined,
  ) {
    this.bits = new Uint8Array(Math.ceil(index.blockCount / 8));
    for (const i of index.uniqueBlocks()) if (!holds?.(index.ref(i) as BlockRef)) this.set(i);
  }

  get size(): number {
    return this.count;
  }

  has(id: string): boolean {
    const i = this.index.findBlock(id);
    return i >= 0 && this.isSet(i);
  }

  /** The block with this id is now cached. */
  delete(id: string): void {
    const i = this.index.findBlock(id);
    if (i < 0 || !this.isSet(i)) return;
    this.bits[i >>> 3] = (this.bits[i >>> 3] as number) & ~(1 << (i & 7));
    this.count--;
  }

  /** The missing blocks' refs, in image order. */
  *refs(): IterableIterator<BlockRef> {
    for (let i = 0; i < this.index.blockCount; i++) if (this.isSet(i)) yield this.index.ref(i) as BlockRef;
  }

  private isSet(i: number): boolean {
    return ((this.bits[i >>> 3] as number) & (1 << (i & 7))) !== 0;
  }

  private set(i: number): void {
    this.bits[i >>> 3] = (this.bits[i >>> 3] as number) | (1 << (i & 7));
    this.count++;
  }
}
