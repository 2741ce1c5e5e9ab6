import type { Transform } from 'node:stream';
import { deflateSync, inflateSync } from 'node:zlib';
import { DecompressStream } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { BlockCorruptError, InvalidArgumentError } from './errors.js';

/**
 * How a block is stored. `zero` is not a codec: zero blocks are never stored
 * (see image-index.ts), so a stored block is always one of these three.
 */
export type Codec = 'zstd' | 'zlib' | 'none';
export const CODECS: readonly Codec[] = ['zstd', 'zlib', 'none'];

export interface CodecSpec {
  readonly codec: Codec;
  /** Compression level; 0 for `none`. Only the packer uses it: it is not needed to decode. */
  readonly level: number;
}

/** zstd level 3 is zstd's own default: ~2× zlib-6's speed at a better ratio (measured in bench/pack). */
export const DEFAULT_CODEC: CodecSpec = { codec: 'zstd', level: 3 };
/** zlib 6 is zlib's default; level 9 (what cloop used) is ~4× slower for <1% smaller output. */
const DEFAULT_LEVEL: Record<Codec, number> = { zstd: 3, zlib: 6, none: 0 };
const LEVEL_RANGE: Record<Codec, [number, number]> = { zstd: [1, 19], zlib: [1, 9], none: [0, 0] };

export function parseCodecSpec(text: string): CodecSpec {
  const m = /^(zstd|zlib|none)(?::(\d+))?$/.exec(text);
  if (!m) throw new InvalidArgumentError(`bad codec "${text}": expected zstd[:1-19], zlib[:1-9] or none`);
  const codec = m[1] as Codec;
  const level = m[2] === undefined ? DEFAULT_LEVEL[codec] : Number(m[2]);
  const [lo, hi] = LEVEL_RANGE[codec];
  if (level < lo || level > hi) {
    throw new InvalidArgumentError(`bad level ${level} for ${codec}: expected ${lo}-${hi}`);
  }
  return { codec, level };
}

export function formatCodecSpec(spec: CodecSpec): string {
  return spec.codec === 'none' ? 'none' : `${spec.codec}:${spec.level}`;
}

export function isCodec(text: string): text is Codec {
  return text === 'zstd' || text === 'zlib' || text === 'none';
}

export interface EncodedBlock {
  readonly codec: Codec;
  /** Stored bytes. For zstd and zlib always shorter than the input; for `none`, the input itself. */
  readonly bytes: Uint8Array;
}

/**
 * Compression must save at least 1/32 (3%) of a block to be kept: below that
 * the decode time on every read costs more than the bytes saved once. This
 * also guarantees the invariant that only `none` blocks have stored size ==
 * block length, which lets a store's existing block be classified by its size.
 */
const MIN_SAVING_SHIFT = 5;

let cctx: InstanceType<typeof zstd.CCtx> | undefined;
let dctx: InstanceType<typeof zstd.DCtx> | undefined;

/**
 * The size `encodeBlock`'s `scratch` must have for input of `length` bytes:
 * the codec's worst case (zstd's bound covers zlib's output too, which is
 * never kept when larger than the input).
 */
export function encodeBound(length: number): number {
  return zstd.compressBound(length);
}

/**
 * Compresses a block with `spec`, or keeps it raw when that saves too little.
 *
 * `scratch` (at least `encodeBound(data.length)` bytes) receives zstd output
 * directly: the returned bytes are then a view of it, valid until the caller
 * reuses it. Otherwise (and for zlib) compressed bytes come in a buffer of
 * their own. A
 * packer that encodes block after block reuses one scratch and allocates
 * nothing per block.
 */
export function encodeBlock(data: Uint8Array, spec: CodecSpec, scratch?: Uint8Array): EncodedBlock {
  if (spec.codec === 'none' || data.length === 0) return { codec: 'none', bytes: data };
  let out: Uint8Array;
  if (spec.codec === 'zstd') {
    cctx ??= new zstd.CCtx();
    const bound = zstd.compressBound(data.length);
    if (scratch && scratch.length < bound) {
      throw new InvalidArgumentError(`encodeBlock scratch of ${scratch.length} bytes, need ${bound}`);
    }
    const dst = scratch ?? Buffer.allocUnsafe(bound);
    const n = cctx.compress(dst, data, spec.level);
    out = dst.subarray(0, n);
  } else {
    out = deflateSync(data, { level: spec.level });
  }
  // At least one byte must be saved even when 1/32 of the block rounds to 0 (a short last block under 32 bytes).
  const saving = Math.max(1, data.length >>> MIN_SAVING_SHIFT);
  if (out.length > data.length - saving) return { codec: 'none', bytes: data };
  if (scratch && spec.codec === 'zstd') return { codec: spec.codec, bytes: out };
  return { codec: spec.codec, bytes: Uint8Array.prototype.slice.call(out) };
}

/**
 * Decodes stored bytes to exactly `length` bytes. Output is bounded by
 * `length` before any decompression happens, so a hostile block cannot become
 * a decompression bomb. Throws BlockCorruptError on any mismatch; the caller
 * still has to check the hash.
 *
 * `into` (at least `length` bytes) receives a zstd block directly, with no
 * buffer of its own allocated and copied: the read path's helper thread
 * decodes every fetched block into a recycled buffer this way. A raw block is
 * returned as it is, and a zlib block in a buffer of its own.
 */
export function decodeBlock(
  stored: Uint8Array,
  codec: Codec,
  length: number,
  id = '?',
  source = 'input',
  into?: Uint8Array,
): Uint8Array {
  const corrupt = (why: string) => new BlockCorruptError(id, source, why);
  if (codec === 'none') {
    if (stored.length !== length) throw corrupt(`raw block is ${stored.length} bytes, expected ${length}`);
    return stored;
  }
  if (stored.length >= length)
    throw corrupt(`compressed block is not smaller than the block (${stored.length} >= ${length})`);
  if (codec === 'zstd') {
    let declared: number | null;
    try {
      declared = zstd.getFrameContentSize(stored);
    } catch {
      throw corrupt('not a zstd frame');
    }
    if (declared !== null && declared !== length)
      throw corrupt(`zstd frame declares ${declared} bytes, expected ${length}`);
    dctx ??= new zstd.DCtx();
    const dst = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let n: number;
    try {
      n = dctx.decompress(dst, stored);
    } catch (e) {
      dctx = undefined; // a failed context may hold state; start clean next time
      throw corrupt(`zstd: ${(e as Error).message}`);
    }
    if (n !== length) throw corrupt(`zstd gave ${n} bytes, expected ${length}`);
    return dst;
  }
  let out: Buffer;
  try {
    out = inflateSync(stored, { maxOutputLength: length });
  } catch (e) {
    throw corrupt(`zlib: ${(e as Error).message}`);
  }
  if (out.length !== length) throw corrupt(`zlib gave ${out.length} bytes, expected ${length}`);
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Classifies bytes already in a store. By the encodeBlock invariant a block
 * whose stored size equals its length is raw; otherwise the frame magic tells
 * zstd from zlib. Returns undefined for bytes that fit neither.
 */
export function sniffCodec(stored: Uint8Array, length: number): Codec | undefined {
  return classifyStored(stored.subarray(0, 4), stored.length, length);
}

/** sniffCodec from the first 4 bytes and the size alone, for callers that do not want to read a whole file. */
export function classifyStored(head: Uint8Array, storedSize: number, length: number): Codec | undefined {
  if (storedSize === length) return 'none';
  if (storedSize > length || storedSize < 2 || head.length < 2) return undefined;
  if (head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0) === ZSTD_MAGIC) return 'zstd';
  const cmf = head[0] as number;
  const flg = head[1] as number;
  if ((cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0) return 'zlib';
  return undefined;
}

/** One zstd frame of `data` (its content size recorded), for files that are not blocks: NAME.idx.zst. */
export function zstdCompress(data: Uint8Array, level: number): Uint8Array {
  cctx ??= new zstd.CCtx();
  const dst = Buffer.allocUnsafe(zstd.compressBound(data.length));
  const n = cctx.compress(dst, data, level);
  return Uint8Array.prototype.slice.call(dst, 0, n);
}

/** A streaming zstd decoder (a Transform): the caller bounds what it lets through. */
export function zstdDecompressStream(): Transform {
  return new DecompressStream();
}
