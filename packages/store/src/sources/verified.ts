import type { BlockRef, BlockSource, SourceOptions } from '@thfc/format';
import { type BlockDecoder, type Decoded, InlineDecoder } from './block-decoder.js';
import type { FetchOptions } from './urgency.js';

/**
 * A remote whose blocks arrive checked and decoded, once: what cached()
 * fetches from. getVerified() resolves to the stored bytes that verified and
 * the decoded block they gave (BlockDecoder.decode), so no one above decodes
 * them again.
 */
export interface VerifiedRemote {
  getVerified(ref: BlockRef, options?: FetchOptions): Promise<Decoded>;
  toString(): string;
}

/** A block source that is also a VerifiedRemote (verified(), and a failover over them). */
export type VerifiedBlockSource = BlockSource & VerifiedRemote;

/**
 * Checks every block the inner source returns with its decoder (stored
 * size, bounded decode, hash: decodeVerified). Wrap each mirror in one
 * (`failover(verified(http(a)), verified(http(b)))`) so a mirror's bad bytes
 * are caught as that mirror's fault and failover moves on.
 *
 * getVerified() gives the decoded block with the stored bytes, for the read
 * path; get() gives the stored bytes alone (a BlockSource, for the mirror's
 * users). The decoder may run on another thread (BlockWorkers); by default it
 * runs decodeVerified inline.
 *
 * Errors: passes on all three seam errors from the inner source unchanged,
 * and adds BlockCorruptError (naming the inner source) for bytes that do not
 * verify. `has` is passed through: it cannot be verified without the bytes.
 */
export class VerifiedSource implements VerifiedBlockSource {
  readonly inner: BlockSource;
  private readonly decoder: BlockDecoder;

  constructor(components: { readonly source: BlockSource; readonly decoder?: BlockDecoder | undefined }) {
    this.inner = components.source;
    this.decoder = components.decoder ?? new InlineDecoder();
  }

  async getVerified(ref: BlockRef, options?: FetchOptions): Promise<Decoded> {
    const fetched = await this.inner.get(ref, options);
    return this.decoder.decode(ref, fetched, this.inner.toString(), options);
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    return (await this.getVerified(ref, options)).stored;
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
