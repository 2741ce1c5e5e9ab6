import { BlockNotFoundError, type BlockRef, type BlockSink, type BlockSource } from '@thfc/format';

/** A cache that keeps nothing, for --nocache: `cached(null, remote)` still fetches each block once for all waiters. */
export class NullCache implements BlockSource, BlockSink {
  async get(ref: BlockRef): Promise<Uint8Array> {
    throw new BlockNotFoundError(ref.id, this.toString());
  }
  async has(): Promise<boolean> {
    return false;
  }
  async put(): Promise<void> {}
  toString(): string {
    return 'none';
  }
}
