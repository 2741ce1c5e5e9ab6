import { describe, expect, it } from 'vitest';
import {
  blockId,
  DEFAULT_HASH,
  HASH_ALGORITHMS,
  hashLength,
  hashOfId,
  isBlockId,
  isZeroBlock,
  parseHashAlgorithm,
} from '../src/block-id.js';
import { InvalidArgumentError } from '../src/errors.js';

const SHA1_ABC = 'a9993e364706816aba3e25717850c26c9cd0d89d';
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('blockId', () => {
  it('is the lowercase hex digest of the bytes (FIPS 180 test vectors)', () => {
    const abc = new TextEncoder().encode('abc');
    expect(blockId(abc, 'sha1')).toBe(SHA1_ABC);
    expect(blockId(abc, 'sha256')).toBe(SHA256_ABC);
    expect(blockId(new Uint8Array(0), 'sha1')).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
  });

  it('hashes only the view, not the whole underlying buffer', () => {
    const big = new TextEncoder().encode('xxabcxx');
    expect(blockId(big.subarray(2, 5), 'sha1')).toBe(SHA1_ABC);
  });
});

describe('hash algorithms', () => {
  it('defaults to sha1 and knows two algorithms', () => {
    expect(DEFAULT_HASH).toBe('sha1');
    expect([...HASH_ALGORITHMS]).toEqual(['sha1', 'sha256']);
  });

  it('gives digest lengths in bytes', () => {
    expect(hashLength('sha1')).toBe(20);
    expect(hashLength('sha256')).toBe(32);
  });

  it('parses exactly sha1 and sha256', () => {
    expect(parseHashAlgorithm('sha1')).toBe('sha1');
    expect(parseHashAlgorithm('sha256')).toBe('sha256');
    for (const bad of ['SHA1', 'md5', 'sha-256', '', ' sha1']) {
      expect(() => parseHashAlgorithm(bad)).toThrow(InvalidArgumentError);
    }
  });
});

describe('isBlockId / hashOfId', () => {
  it('accepts lowercase hex of the right length', () => {
    expect(isBlockId(SHA1_ABC)).toBe(true);
    expect(isBlockId(SHA256_ABC)).toBe(true);
    expect(isBlockId(SHA1_ABC, 'sha1')).toBe(true);
    expect(isBlockId(SHA1_ABC, 'sha256')).toBe(false);
    expect(isBlockId(SHA256_ABC, 'sha256')).toBe(true);
    expect(isBlockId(SHA256_ABC, 'sha1')).toBe(false);
  });

  it('rejects uppercase, wrong lengths, non-hex and path tricks', () => {
    for (const bad of [
      SHA1_ABC.toUpperCase(),
      SHA1_ABC.slice(1),
      `${SHA1_ABC}0`,
      `${SHA1_ABC.slice(0, 39)}g`,
      `../${SHA1_ABC.slice(3)}`,
      `${SHA1_ABC}\n`,
      '',
    ]) {
      expect(isBlockId(bad), bad).toBe(false);
      expect(hashOfId(bad), bad).toBeUndefined();
    }
  });

  it('tells the hash from the name length', () => {
    expect(hashOfId(SHA1_ABC)).toBe('sha1');
    expect(hashOfId(SHA256_ABC)).toBe('sha256');
  });
});

describe('isZeroBlock', () => {
  it('is true for all-zero data of any length, including empty and > 64 KiB', () => {
    expect(isZeroBlock(new Uint8Array(0))).toBe(true);
    expect(isZeroBlock(new Uint8Array(1))).toBe(true);
    expect(isZeroBlock(new Uint8Array(256 * 1024 + 7))).toBe(true);
  });

  it('finds a single non-zero byte anywhere, including past the first 64 KiB', () => {
    const size = 200 * 1024 + 3;
    for (const pos of [0, 1, 65535, 65536, 131071, size - 1]) {
      const d = new Uint8Array(size);
      d[pos] = 1;
      expect(isZeroBlock(d), `byte ${pos}`).toBe(false);
    }
  });

  it('looks only at the view', () => {
    const d = new Uint8Array(10).fill(9);
    d.fill(0, 3, 7);
    expect(isZeroBlock(d.subarray(3, 7))).toBe(true);
    expect(isZeroBlock(d.subarray(2, 7))).toBe(false);
  });
});
