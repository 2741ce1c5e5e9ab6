import { type BlockRef, type BlockSource, decodeVerified, type SourceOptions } from '@thfc/format';

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
 * The decoded block is remembered for these stored bytes (see isVerified in
 * @thfc/format), so checking them again further up costs a lookup.
 */
export class VerifiedSource implements BlockSource {
  readonly inner: BlockSource;

  constructor(components: { readonly source: BlockSource }) {
    this.inner = components.source;
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    const stored = await this.inner.get(ref, options);
    decodeVerified(ref, stored, this.inner.toString());
    return stored;
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
