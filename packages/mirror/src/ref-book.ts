import type { BlockRef, Codec, ImageIndex } from '@thfc/format';

const CODECS: readonly Codec[] = ['none', 'zstd', 'zlib'];
/** Sizes are at most 4 MiB (2^22), so each fits in 23 bits; with the codec, a ref packs into 48 bits. */
const SIZE_SPAN = 2 ** 23;

/**
 * What the mirror knows about blocks it does not hold: for every block id in
 * an index it has seen, the codec, stored size and length that
 * `decodeVerified` needs. A request names only the id; with the ref, a
 * pulled block is checked exactly as a client will check it (stored size,
 * bounded decode, hash), so the mirror never stores bytes its clients would
 * refuse.
 *
 * Memory: the indexes themselves, which hold their entries in typed arrays
 * and find an id through their id table (~30 bytes a block for SHA-1), and
 * one Map entry per ref added alone, packed into one number (~100 bytes with
 * the key). A Map of every id of a 4,194,304-block index took ~400 MB.
 */
export class RefBook {
  private readonly refs = new Map<string, number>();
  /** Indexes added, newest first, and their digests: re-adding one is free. */
  private readonly indexes: ImageIndex[] = [];
  private readonly seen = new Set<string>();

  /** Refs added alone, plus the distinct ids of each index (an id in two indexes counts twice). */
  get size(): number {
    return this.refs.size + this.indexes.reduce((n, index) => n + index.uniqueCount(), 0);
  }

  /** Adds every block of `index`; a later index wins for an id it shares with an earlier one. */
  addIndex(index: ImageIndex, digest: string): void {
    if (this.seen.has(digest)) return;
    this.seen.add(digest);
    index.uniqueCount(); // its id table, built now rather than on the first request
    this.indexes.unshift(index);
  }

  /** Adds one ref; it wins over the indexes' refs for its id. */
  add(ref: BlockRef): void {
    this.refs.set(ref.id, CODECS.indexOf(ref.codec) + 4 * (ref.size + SIZE_SPAN * ref.storedSize));
  }

  /** True when the index with this digest was already added. */
  knows(digest: string): boolean {
    return this.seen.has(digest);
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  get(id: string): BlockRef | undefined {
    const packed = this.refs.get(id);
    if (packed === undefined) {
      for (const index of this.indexes) {
        const i = index.findBlock(id);
        if (i >= 0) return index.ref(i);
      }
      return undefined;
    }
    const codec = CODECS[packed % 4] as Codec;
    const rest = Math.floor(packed / 4);
    return { id, codec, size: rest % SIZE_SPAN, storedSize: Math.floor(rest / SIZE_SPAN) };
  }
}
