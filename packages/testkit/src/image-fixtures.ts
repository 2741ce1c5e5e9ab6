import { randomBytes } from 'node:crypto';
import {
  type BlockRef,
  blockId,
  type CodecSpec,
  type DecodedIndex,
  decodeIndex,
  encodeBlock,
  encodeIndex,
  type IndexEntry,
  type IndexHeader,
  isZeroBlock,
} from '@thfc/format';
import { FakeSource } from '@thfc/format/testing';

/**
 * Real encoded blocks and indexes for the unit tests of store and blockfs:
 * seeded bytes, encoded with the format's own codecs. Nothing here is mocked;
 * the fake is FakeSource.
 */

/** Seeded bytes that compress (a byte pattern plus the seed), distinct for every seed. */
export function patternBytes(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size);
  const tag = Buffer.from(`seed-${seed}-`);
  for (let i = 0; i < size; i++) data[i] = i % 64 < tag.length ? (tag[i % 64] as number) : (i * 7 + seed) & 0xff;
  return data;
}

export interface TestBlock {
  readonly ref: BlockRef;
  readonly stored: Uint8Array;
  readonly data: Uint8Array;
}

export function blockOf(data: Uint8Array, spec: CodecSpec = { codec: 'zstd', level: 3 }): TestBlock {
  const enc = encodeBlock(data, spec);
  return {
    ref: { id: blockId(data, 'sha1'), codec: enc.codec, storedSize: enc.bytes.length, size: data.length },
    stored: enc.bytes,
    data,
  };
}

/** A compressible block of `size` bytes. */
export function makeBlock(seed: number, size = 4096): TestBlock {
  return blockOf(patternBytes(size, seed));
}

/** An incompressible block: stored raw, so its stored size is exactly `size`. */
export function rawBlock(size = 4096): TestBlock {
  return blockOf(randomBytes(size), { codec: 'none', level: 0 });
}

/** Bytes of the same length as `stored` that are not the block (one byte flipped in the middle). */
export function corrupted(stored: Uint8Array): Uint8Array {
  const bad = Uint8Array.from(stored);
  const mid = bad.length >> 1;
  bad[mid] = (bad[mid] as number) ^ 0xff;
  return bad;
}

export const CREATED = '2026-01-01T00:00:00Z';

export function indexHeader(size: number, blockSize = 4096, name = 'img'): IndexHeader {
  return { version: 1, name, size, blockSize, hash: 'sha1', codec: 'zstd:3', created: CREATED };
}

export interface TestImage {
  readonly bytes: Uint8Array;
  readonly decoded: DecodedIndex;
  readonly indexBytes: Uint8Array;
  /** Holds every non-zero block of the image. */
  readonly source: FakeSource;
}

/**
 * An image made of `blocks` (each the block size, the last may be shorter):
 * zero blocks become `zero` entries, the rest are encoded and put in a FakeSource.
 */
export function makeImage(
  blocks: readonly Uint8Array[],
  options: { blockSize?: number; name?: string } = {},
): TestImage {
  const blockSize = options.blockSize ?? 4096;
  const bytes = Buffer.concat(blocks);
  const source = new FakeSource('image');
  const entries: IndexEntry[] = blocks.map((data) => {
    if (isZeroBlock(data)) return { zero: true };
    const b = blockOf(data);
    source.blocks.set(b.ref.id, b.stored);
    return { id: b.ref.id, codec: b.ref.codec, storedSize: b.ref.storedSize };
  });
  const indexBytes = encodeIndex(indexHeader(bytes.length, blockSize, options.name), entries);
  return { bytes, decoded: decodeIndex(indexBytes), indexBytes, source };
}
