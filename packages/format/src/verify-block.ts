import { blockId, hashOfId } from './block-id.js';
import type { BlockRef } from './block-source.js';
import { decodeBlock } from './codecs.js';
import { BlockCorruptError } from './errors.js';

/**
 * The one check that stands between stored bytes and a reader: the bytes are
 * the size the index says, decode (bounded) to the block's length, and hash
 * to the block's name. Returns the decoded block; throws BlockCorruptError.
 * `into` is where a compressed block may be decoded (decodeBlock); on a
 * failure its contents are undefined.
 */
export function decodeVerified(ref: BlockRef, stored: Uint8Array, source: string, into?: Uint8Array): Uint8Array {
  if (stored.length !== ref.storedSize) {
    throw new BlockCorruptError(ref.id, source, `${stored.length} bytes, the index says ${ref.storedSize}`);
  }
  const data = decodeBlock(stored, ref.codec, ref.size, ref.id, source, into);
  const alg = hashOfId(ref.id);
  if (alg === undefined) throw new BlockCorruptError(ref.id, source, 'not a block name');
  const actual = blockId(data, alg);
  if (actual !== ref.id) throw new BlockCorruptError(ref.id, source, `content hashes to ${actual}`);
  return data;
}
