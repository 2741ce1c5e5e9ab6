import { randomInt } from 'node:crypto';

/**
 * The distinct ids of an index, found without a string per block: an
 * open-addressing hash table (linear probing) of block numbers over the
 * index's raw id bytes, with 8 bits of each slot's hash beside it so a probe
 * rarely reads the ids, and a bitmap marking each id's first block. At 4
 * slots per 3 non-zero blocks it costs ~6.7 bytes and 1 bit per block: 28 MB
 * for 4,194,304 blocks, where a Map of hex strings took ~350 bytes a block.
 *
 * The hash is seeded per process: ids come from whoever wrote the index, and
 * a fixed hash would let one fill a chain on purpose.
 */
export class BlockIdTable {
  /** Distinct ids. */
  readonly size: number;
  /** Sum of `storedSize` over distinct ids. */
  readonly storedBytes: number;
  /** Slot → block number + 1; 0 is empty. */
  private readonly slots: Uint32Array;
  /** The low 8 bits of the hash of the id in each slot. */
  private readonly tags: Uint8Array;
  /** Bit i: block i is the first with its id. */
  private readonly first: Uint8Array;
  private readonly seed = randomInt(2 ** 31);

  /**
   * `present(i)` says whether block i has an id (a zero block has none);
   * `storedSize(i)` is its stored size.
   */
  constructor(
    private readonly ids: Uint8Array,
    private readonly idLength: number,
    blocks: number,
    present: (i: number) => boolean,
    storedSize: (i: number) => number,
  ) {
    let nonZero = 0;
    for (let i = 0; i < blocks; i++) if (present(i)) nonZero++;
    const slotCount = Math.max(8, Math.ceil((nonZero * 4) / 3));
    this.slots = new Uint32Array(slotCount);
    this.tags = new Uint8Array(slotCount);
    this.first = new Uint8Array(Math.ceil(blocks / 8));
    let size = 0;
    let storedBytes = 0;
    for (let i = 0; i < blocks; i++) {
      if (!present(i)) continue;
      const h = this.hash(ids, i * idLength);
      const tag = h & 0xff;
      let s = h % slotCount;
      for (;;) {
        const held = this.slots[s] as number;
        if (held === 0) {
          this.slots[s] = i + 1;
          this.tags[s] = tag;
          this.first[i >>> 3] = (this.first[i >>> 3] as number) | (1 << (i & 7));
          size++;
          storedBytes += storedSize(i);
          break;
        }
        if (this.tags[s] === tag && this.sameId(held - 1, ids, i * idLength)) break;
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
    const tag = h & 0xff;
    let s = h % this.slots.length;
    for (;;) {
      const held = this.slots[s] as number;
      if (held === 0) return -1;
      if (this.tags[s] === tag && this.sameId(held - 1, bytes, at)) return held - 1;
      s = s + 1 === this.slots.length ? 0 : s + 1;
    }
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
