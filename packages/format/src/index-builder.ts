import { type HashAlgorithm, hashLength } from './block-id.js';
import { CODE_ZERO, codeOfCodec, ImageIndex, type IndexEntry, type IndexHeader } from './image-index.js';
import { grownColumns } from './index-columns.js';

/**
 * An index's entries as they are found, in any order, held the way ImageIndex
 * holds them: raw digest bytes, a codec byte and a stored size per block, in
 * typed arrays. A block never set is a zero block, and costs nothing until a
 * later block is set: the arrays are sized for `expectedBlocks` up front, and
 * the pages of a large zeroed array are not resident until written, so a
 * sparse terabyte image costs memory only for its data blocks.
 */
export class IndexBuilder {
  private readonly idLength: number;
  private ids: Uint8Array;
  private codes: Uint8Array;
  private sizes: Uint32Array;
  private count = 0;

  constructor(hash: HashAlgorithm, expectedBlocks = 0) {
    this.idLength = hashLength(hash);
    const cap = Math.max(1024, expectedBlocks);
    this.ids = new Uint8Array(cap * this.idLength);
    this.codes = new Uint8Array(cap);
    this.sizes = new Uint32Array(cap);
  }

  /** Blocks so far: one past the last block set. */
  get length(): number {
    return this.count;
  }

  set(i: number, entry: IndexEntry): void {
    if (!Number.isInteger(i) || i < 0) throw new RangeError(`block ${i} out of range`);
    if (i >= this.codes.length) this.grow(i + 1);
    if (entry.zero) this.codes[i] = CODE_ZERO;
    else {
      const raw = Buffer.from(entry.id, 'hex');
      if (raw.length !== this.idLength || entry.id.length !== 2 * this.idLength)
        throw new RangeError(`block ${i}: "${entry.id.slice(0, 80)}" is not a ${this.idLength}-byte hex id`);
      this.ids.set(raw, i * this.idLength);
      this.codes[i] = codeOfCodec(entry.codec);
      this.sizes[i] = entry.storedSize;
    }
    if (i >= this.count) this.count = i + 1;
  }

  /** Marks blocks [from, from + n) as zero blocks; past the last block set, that writes nothing. */
  setZero(from: number, n: number): void {
    const end = from + n;
    if (end > this.codes.length) this.grow(end);
    if (from < this.count) this.codes.fill(CODE_ZERO, from, Math.min(end, this.count));
    if (end > this.count) this.count = end;
  }

  /** The index of the blocks so far; `header` must describe exactly `length` blocks (encodeIndex checks it). */
  build(header: IndexHeader): ImageIndex {
    const n = this.count;
    return new ImageIndex(
      header,
      this.ids.subarray(0, n * this.idLength),
      this.codes.subarray(0, n),
      this.sizes.subarray(0, n),
    );
  }

  private grow(atLeast: number): void {
    const cap = Math.max(atLeast, this.codes.length * 2);
    [this.ids, this.codes, this.sizes] = grownColumns(this.ids, this.codes, this.sizes, cap, this.idLength);
  }
}
