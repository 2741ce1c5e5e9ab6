import { createHash } from 'node:crypto';
import { InvalidArgumentError } from './errors.js';

/**
 * A block is named by the lowercase hex digest of its *uncompressed* bytes,
 * as git and casync do, so a name survives a change of codec or level.
 */
export type HashAlgorithm = 'sha1' | 'sha256';
export const HASH_ALGORITHMS: readonly HashAlgorithm[] = ['sha1', 'sha256'];
/** SHA-1 is the original's choice (Trusted HTTP-FUSE CLOOP, 2006); see docs/TRUST.md for when to pick sha256. */
export const DEFAULT_HASH: HashAlgorithm = 'sha1';

export function hashLength(alg: HashAlgorithm): number {
  return alg === 'sha1' ? 20 : 32;
}

export function parseHashAlgorithm(text: string): HashAlgorithm {
  if (text === 'sha1' || text === 'sha256') return text;
  throw new InvalidArgumentError(`unknown hash "${text}" (expected sha1 or sha256)`);
}

export function blockId(data: Uint8Array, alg: HashAlgorithm): string {
  return createHash(alg).update(data).digest('hex');
}

const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

export function isBlockId(text: string, alg?: HashAlgorithm): boolean {
  if (alg === 'sha1') return HEX40.test(text);
  if (alg === 'sha256') return HEX64.test(text);
  return HEX40.test(text) || HEX64.test(text);
}

/** The hash a block name was made with, from its length alone. */
export function hashOfId(id: string): HashAlgorithm | undefined {
  return HEX40.test(id) ? 'sha1' : HEX64.test(id) ? 'sha256' : undefined;
}

const ZEROS = new Uint8Array(64 * 1024);

/** True when every byte is zero. Zero blocks are never stored or fetched. */
export function isZeroBlock(data: Uint8Array): boolean {
  for (let off = 0; off < data.length; off += ZEROS.length) {
    const n = Math.min(ZEROS.length, data.length - off);
    if (Buffer.compare(data.subarray(off, off + n), ZEROS.subarray(0, n)) !== 0) return false;
  }
  return true;
}
