import { describe, expect, it } from 'vitest';
import { blockId } from '../src/block-id.js';
import type { BlockRef } from '../src/block-source.js';
import { type Codec, encodeBlock } from '../src/codecs.js';
import { BlockCorruptError } from '../src/errors.js';
import { decodeVerified } from '../src/verify-block.js';

function block(size: number, codec: Codec, alg: 'sha1' | 'sha256' = 'sha1') {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i % 13) * (i % 7);
  const enc = encodeBlock(data, { codec, level: codec === 'zlib' ? 6 : 3 });
  expect(enc.codec).toBe(codec);
  const ref: BlockRef = { id: blockId(data, alg), codec: enc.codec, storedSize: enc.bytes.length, size };
  return { data, ref, stored: enc.bytes };
}

function corruptReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BlockCorruptError);
    return (e as BlockCorruptError).message;
  }
  throw new Error('expected BlockCorruptError');
}

describe('decodeVerified', () => {
  it.each(['zstd', 'zlib', 'none'] as const)('returns the block for good %s bytes', (codec) => {
    for (const alg of ['sha1', 'sha256'] as const) {
      const { data, ref, stored } = block(4096, codec, alg);
      expect(Buffer.from(decodeVerified(ref, stored, 'test')).equals(Buffer.from(data))).toBe(true);
    }
  });

  it('rejects a body of the wrong size before decoding', () => {
    const { ref, stored } = block(4096, 'zstd');
    const msg = corruptReason(() => decodeVerified(ref, stored.subarray(0, stored.length - 1), 'http(a)'));
    expect(msg).toContain(`${stored.length - 1} bytes, the index says ${stored.length}`);
    expect(msg).toContain('http(a)');
  });

  it('rejects bytes that decode but hash to another name', () => {
    const a = block(4096, 'none');
    const other = new Uint8Array(a.stored);
    other[100] = (other[100] as number) ^ 1;
    const msg = corruptReason(() => decodeVerified(a.ref, other, 'disk'));
    expect(msg).toContain(`content hashes to ${blockId(other, 'sha1')}`);
  });

  it('rejects another valid block served under this name', () => {
    const a = block(4096, 'zstd');
    const data = new Uint8Array(4096).fill(7);
    const c = encodeBlock(data, { codec: 'zstd', level: 3 });
    const msg = corruptReason(() => decodeVerified({ ...a.ref, storedSize: c.bytes.length }, c.bytes, 'x'));
    expect(msg).toContain(`content hashes to ${blockId(data, 'sha1')}`);
  });

  it('rejects a name that is not a block id', () => {
    const { ref, stored } = block(4096, 'none');
    const msg = corruptReason(() => decodeVerified({ ...ref, id: 'not-a-name' }, stored, 'x'));
    expect(msg).toContain('not a block name');
  });

  it('passes codec failures on as BlockCorruptError', () => {
    const { ref, stored } = block(8192, 'zstd');
    const bad = new Uint8Array(stored);
    bad.fill(0, 4, 12);
    expect(() => decodeVerified(ref, bad, 'x')).toThrow(BlockCorruptError);
  });
});
