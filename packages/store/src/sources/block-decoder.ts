import { type BlockRef, decodeVerified } from '@thfc/format';
import type { FetchOptions } from './urgency.js';

/**
 * Runs the one check between stored bytes and a reader (decodeVerified:
 * stored size, bounded decode, hash) and resolves to the decoded block, or
 * rejects with BlockCorruptError. verified() calls it once per fetched block
 * and hands the decoded block up with the stored bytes (VerifiedRemote), so
 * nothing decodes a block twice. It may run on another thread (BlockWorkers).
 */
export interface BlockDecoder {
  /**
   * The decoded block, and the stored bytes to use from now on: a decoder that
   * hands `stored` to another thread without copying gives it back as a new
   * object, and the one passed in is then empty.
   */
  decode(ref: BlockRef, stored: Uint8Array, source: string, options?: FetchOptions): Promise<Decoded>;
  /**
   * Takes back a decoded block no one holds any more, to decode a later block
   * into (no allocation). Optional; buffers it did not hand out are ignored.
   */
  recycle?(data: Uint8Array): void;
  /** Stops any threads it runs. */
  close(): Promise<void>;
  toString(): string;
}

export interface Decoded {
  readonly stored: Uint8Array;
  readonly data: Uint8Array;
}

/** Decoding on the calling thread. */
export class InlineDecoder implements BlockDecoder {
  async decode(ref: BlockRef, stored: Uint8Array, source: string): Promise<Decoded> {
    return { stored, data: decodeVerified(ref, stored, source) };
  }

  async close(): Promise<void> {}

  toString(): string {
    return 'inline';
  }
}
