import { type BlockRef, MirrorUnavailableError } from '@thfc/format';
import type { Decoded, VerifiedBlockSource } from '@thfc/store';

/** The remote of an --offline mount: never touches the network, so a block not cached locally gives EIO. */
export class OfflineSource implements VerifiedBlockSource {
  async getVerified(ref: BlockRef): Promise<Decoded> {
    throw this.unavailable(ref);
  }
  async get(ref: BlockRef): Promise<Uint8Array> {
    throw this.unavailable(ref);
  }
  async has(): Promise<boolean> {
    return false;
  }
  toString(): string {
    return 'offline';
  }
  private unavailable(ref: BlockRef): MirrorUnavailableError {
    return new MirrorUnavailableError(
      this.toString(),
      `block ${ref.id} is not cached and cannot be fetched offline (--offline)`,
    );
  }
}
