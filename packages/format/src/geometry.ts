import { InvalidArgumentError } from './errors.js';

/** Block sizes are powers of two in this range: 4 KiB is the page size; past 4 MiB a single miss costs too much latency. */
export const MIN_BLOCK_SIZE = 4 * 1024;
export const MAX_BLOCK_SIZE = 4 * 1024 * 1024;
/** 256 KiB, the original's default (LBCAS 2009): big enough to amortise an HTTP request, small enough for a fast first read. */
export const DEFAULT_BLOCK_SIZE = 256 * 1024;
/** Index offsets and sizes must stay exact in a JS number. */
export const MAX_IMAGE_SIZE = Number.MAX_SAFE_INTEGER;

export function isValidBlockSize(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_BLOCK_SIZE && n <= MAX_BLOCK_SIZE && (n & (n - 1)) === 0;
}

export function assertBlockSize(n: number): number {
  if (!isValidBlockSize(n)) {
    throw new InvalidArgumentError(`bad block size ${n}: must be a power of two from 4K to 4M (e.g. 64K, 256K, 1M)`);
  }
  return n;
}

export function blockCount(imageSize: number, blockSize: number): number {
  return Math.ceil(imageSize / blockSize);
}

/** Uncompressed length of block `i`: the last block may be short. */
export function blockLength(i: number, imageSize: number, blockSize: number): number {
  return Math.min(blockSize, imageSize - i * blockSize);
}

const UNITS: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/** Parses `262144`, `256K`, `256KiB`, `1M`, `2G` (binary units). */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new InvalidArgumentError(`bad size "${text}": expected a number with an optional K, M, G or T suffix`);
  }
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`size "${text}" is too large`);
  return n;
}
