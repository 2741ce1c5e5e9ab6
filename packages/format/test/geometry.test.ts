import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import {
  assertBlockSize,
  blockCount,
  blockLength,
  DEFAULT_BLOCK_SIZE,
  isValidBlockSize,
  MAX_BLOCK_SIZE,
  MAX_IMAGE_SIZE,
  MIN_BLOCK_SIZE,
  parseSize,
} from '../src/geometry.js';

describe('block sizes', () => {
  it('has the documented bounds and default', () => {
    expect(MIN_BLOCK_SIZE).toBe(4096);
    expect(MAX_BLOCK_SIZE).toBe(4194304);
    expect(DEFAULT_BLOCK_SIZE).toBe(262144);
    expect(MAX_IMAGE_SIZE).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('accepts every power of two from 4 KiB to 4 MiB', () => {
    const ok: number[] = [];
    for (let n = 1; n <= 2 ** 30; n *= 2) if (isValidBlockSize(n)) ok.push(n);
    expect(ok).toEqual([4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304]);
    expect(assertBlockSize(65536)).toBe(65536);
  });

  it('rejects non powers of two, fractions and out-of-range values', () => {
    for (const bad of [0, -4096, 4095, 4097, 12288, 2048, 8 * 1024 * 1024, 4096.5, Number.NaN, Infinity]) {
      expect(isValidBlockSize(bad), String(bad)).toBe(false);
      expect(() => assertBlockSize(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe('blockCount / blockLength', () => {
  it('rounds up and makes only the last block short', () => {
    expect(blockCount(1, 4096)).toBe(1);
    expect(blockCount(4096, 4096)).toBe(1);
    expect(blockCount(4097, 4096)).toBe(2);
    expect(blockCount(3 * 65536, 65536)).toBe(3);
    expect(blockLength(0, 4097, 4096)).toBe(4096);
    expect(blockLength(1, 4097, 4096)).toBe(1);
    expect(blockLength(2, 3 * 65536, 65536)).toBe(65536);
    expect(blockLength(0, 100, 4096)).toBe(100);
  });

  it('stays exact for the largest images', () => {
    const size = 2 ** 52 + 5;
    expect(blockCount(size, MAX_BLOCK_SIZE)).toBe(2 ** 30 + 1);
    expect(blockLength(2 ** 30, size, MAX_BLOCK_SIZE)).toBe(5);
  });

  it('sums to the image size', () => {
    for (const [size, bs] of [
      [1, 4096],
      [123457, 4096],
      [1 << 20, 262144],
      [(1 << 20) + 1, 262144],
    ] as const) {
      let total = 0;
      for (let i = 0; i < blockCount(size, bs); i++) total += blockLength(i, size, bs);
      expect(total).toBe(size);
    }
  });
});

describe('parseSize', () => {
  it('reads plain numbers and binary units', () => {
    expect(parseSize('262144')).toBe(262144);
    expect(parseSize('256K')).toBe(262144);
    expect(parseSize('256k')).toBe(262144);
    expect(parseSize('256KiB')).toBe(262144);
    expect(parseSize('256kb')).toBe(262144);
    expect(parseSize('1M')).toBe(1048576);
    expect(parseSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseSize('1T')).toBe(1024 ** 4);
    expect(parseSize(' 4 K ')).toBe(4096);
    expect(parseSize('0')).toBe(0);
  });

  it('rejects garbage, fractions, negatives and unsafe sizes', () => {
    for (const bad of ['', 'K', '1.5M', '-1', '1P', '1 MB extra', '0x10', '99999999999T']) {
      expect(() => parseSize(bad), bad).toThrow(InvalidArgumentError);
    }
  });
});
