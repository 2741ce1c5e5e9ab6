import type { BlockRef, BlockSource, SourceOptions } from '@thfc/format';
import { type BlockDecoder, InlineDecoder } from './block-decoder.js';

/**
 * Checks every block the inner source returns with `decodeVerified` (stored
 * size, bounded decode, hash) and returns the stored bytes unchanged. Wrap
 * each mirror in one (`failover(verified(http(a)), verified(http(b)))`) so a
 * mirror's bad bytes are caught as that mirror's fault and failover moves on.
 *
 * Errors: passes on all three seam errors from the inner source unchanged,
 * and adds BlockCorruptError (naming the inner source) for bytes that do not
 * verify. `has` is passed through: it cannot be verified without the bytes.
 *
 * The decoder remembers the decoded block for these stored bytes, so cached()
 * asking the same decoder again costs a lookup. It may decode on another
 * thread (BlockWorkers); by default it runs decodeVerified inline.
 */
export class VerifiedSource implements BlockSource {
  readonly inner: BlockSource;
  private readonly decoder: BlockDecoder;

  constructor(components: { readonly source: BlockSource; readonly decoder?: BlockDecoder | undefined }) {
    this.inner = components.source;
    this.decoder = components.decoder ?? new InlineDecoder();
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    const fetched = await this.inner.get(ref, options);
    return (await this.decoder.decode(ref, fetched, this.inner.toString(), options)).stored;
  }

  has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return this.inner.has(ref, options);
  }

  toString(): string {
    return `verified(${this.inner})`;
  }
}

export function verified(source: BlockSource): VerifiedSource {
  return new VerifiedSource({ source });
}
