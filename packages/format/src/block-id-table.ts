import { randomInt } from 'node:crypto';

/**
 * The distinct ids of an index, found without a string per block: an
 * open-addressing hash table (linear probing) of block numbers over the
 * index's raw id bytes, and a bitmap marking each id's first block.
 *
 * A slot is one 32-bit word: the block number + 1 in its low bits, and in the
 * bits a block number does not need, that many bits of the id's hash, so a
 * probe rarely reads the ids and costs one cache miss (4,194,304 blocks: 23
 * bits of block, 9 of hash). At 4 slots per 3 non-zero blocks it costs ~5.3
 * bytes and 1 bit per block: 23 MB for 4,194,304 blocks, where a Map of hex
 * strings took ~350 bytes a block.
 *
 * The hash is seeded per process: ids come from whoever wrote the index, and
 * a fixed hash would let one fill a chain on purpose.
 */
export class BlockIdTable {
  /** Distinct ids. */
  readonly size: number;
  /** Sum of `storedSize` over distinct ids. */
  readonly storedBytes: number;
  private readonly slots: Uint32Array;
  /** Bit i: block i is the first with its id. */
  private readonly first: Uint8Array;
  private readonly blockBits: number;
  private readonly blockMask: number;
  private readonly seed = randomInt(2 ** 31);

  /** `codes[i]` is 0 for a block without an id (a zero block); `storedSizes[i]` is its stored size. */
  constructor(
    private readonly ids: Uint8Array,
    private readonly idLength: number,
    codes: Uint8Array,
    storedSizes: Uint32Array,
  ) {
    const blocks = codes.length;
    let nonZero = 0;
    for (let i = 0; i < blocks; i++) if (codes[i] !== 0) nonZero++;
    const slotCount = Math.max(8, Math.ceil((nonZero * 4) / 3));
    this.slots = new Uint32Array(slotCount);
    this.first = new Uint8Array(Math.ceil(blocks / 8));
    this.blockBits = Math.max(1, Math.ceil(Math.log2(blocks + 1)));
    this.blockMask = this.blockBits >= 32 ? 0xffffffff : 2 ** this.blockBits - 1;
    const slots = this.slots;
    let size = 0;
    let storedBytes = 0;
    for (let i = 0; i < blocks; i++) {
      if (codes[i] === 0) continue;
      const h = this.hash(ids, i * idLength);
      const tagged = this.tagOf(h);
      let s = h % slotCount;
      for (;;) {
        const held = slots[s] as number;
        if (held === 0) {
          slots[s] = (tagged | (i + 1)) >>> 0;
          this.first[i >>> 3] = (this.first[i >>> 3] as number) | (1 << (i & 7));
          size++;
          storedBytes += storedSizes[i] as number;
          break;
        }
        if ((held & ~this.blockMask) >>> 0 === tagged && this.sameId((held & this.blockMask) - 1, ids, i * idLength))
          break;
        s = s + 1 === slotCount ? 0 : s + 1;
      }
    }
    this.size = size;
    this.storedBytes = storedBytes;
  }

  /** Whether block i is the first block with its id (false for a zero block). */
  isFirst(i: number): boolean {
    return ((this.first[i >>> 3] as number) & (1 << (i & 7))) !== 0;
  }

  /** The first block whose id is the raw digest at bytes[at], or -1. */
  find(bytes: Uint8Array, at = 0): number {
    if (bytes.length - at < this.idLength) return -1;
    const h = this.hash(bytes, at);
    const tagged = this.tagOf(h);
    let s = h % this.slots.length;
    for (;;) {
      const held = this.slots[s] as number;
      if (held === 0) return -1;
      const block = (held & this.blockMask) - 1;
      if ((held & ~this.blockMask) >>> 0 === tagged && this.sameId(block, bytes, at)) return block;
      s = s + 1 === this.slots.length ? 0 : s + 1;
    }
  }

  /** The hash's top bits, in the bits of a slot that the block number leaves free. */
  private tagOf(h: number): number {
    return this.blockBits >= 32 ? 0 : ((h >>> this.blockBits) << this.blockBits) >>> 0;
  }

  private sameId(block: number, bytes: Uint8Array, at: number): boolean {
    const base = block * this.idLength;
    for (let k = 0; k < this.idLength; k++) if (this.ids[base + k] !== bytes[at + k]) return false;
    return true;
  }

  /** A 32-bit unsigned hash of the id at bytes[at]. */
  private hash(bytes: Uint8Array, at: number): number {
    let h = this.seed;
    for (let k = 0; k + 3 < this.idLength; k += 4) {
      const w =
        (bytes[at + k] as number) |
        ((bytes[at + k + 1] as number) << 8) |
        ((bytes[at + k + 2] as number) << 16) |
        ((bytes[at + k + 3] as number) << 24);
      h = Math.imul(h ^ w, 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }
}
