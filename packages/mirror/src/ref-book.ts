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
 * Memory: one Map entry per distinct block, the ref packed into one number
 * (~100 bytes with the key): a million blocks (256 GiB of 256 KiB blocks)
 * cost ~100 MB.
 */
export class RefBook {
  private readonly refs = new Map<string, number>();
  /** Indexes already added, by digest: re-adding one is free. */
  private readonly seen = new Set<string>();

  get size(): number {
    return this.refs.size;
  }

  /** Adds every block of `index`; a later index wins for an id it shares with an earlier one. */
  addIndex(index: ImageIndex, digest: string): void {
    if (this.seen.has(digest)) return;
    this.seen.add(digest);
    for (const ref of index.uniqueRefs().values()) this.add(ref);
  }

  add(ref: BlockRef): void {
    this.refs.set(ref.id, CODECS.indexOf(ref.codec) + 4 * (ref.size + SIZE_SPAN * ref.storedSize));
  }

  /** True when the index with this digest was already added. */
  knows(digest: string): boolean {
    return this.seen.has(digest);
  }

  has(id: string): boolean {
    return this.refs.has(id);
  }

  get(id: string): BlockRef | undefined {
    const packed = this.refs.get(id);
    if (packed === undefined) return undefined;
    const codec = CODECS[packed % 4] as Codec;
    const rest = Math.floor(packed / 4);
    return { id, codec, size: rest % SIZE_SPAN, storedSize: Math.floor(rest / SIZE_SPAN) };
  }
}
