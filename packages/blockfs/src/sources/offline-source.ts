import { type BlockRef, type BlockSource, MirrorUnavailableError } from '@thfc/format';

/** The remote of an --offline mount: never touches the network, so a block not cached locally gives EIO. */
export class OfflineSource implements BlockSource {
  async get(ref: BlockRef): Promise<Uint8Array> {
    throw new MirrorUnavailableError(
      this.toString(),
      `block ${ref.id} is not cached and cannot be fetched offline (--offline)`,
    );
  }
  async has(): Promise<boolean> {
    return false;
  }
  toString(): string {
    return 'offline';
  }
}
