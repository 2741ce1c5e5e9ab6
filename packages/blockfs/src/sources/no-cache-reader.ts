import { BlockNotFoundError, type BlockRef } from '@thfc/format';
import type { LocalBlocks } from './block-reader.js';

/** A local cache that keeps nothing, for --nocache: `cached(none, remote)` still fetches each block once for all waiters. */
export class NoCacheReader implements LocalBlocks {
  holds(): boolean {
    return false;
  }
  async read(ref: BlockRef): Promise<undefined> {
    throw new BlockNotFoundError(ref.id, this.toString());
  }
  async load(ref: BlockRef): Promise<undefined> {
    throw new BlockNotFoundError(ref.id, this.toString());
  }
  async keep(): Promise<boolean> {
    return false;
  }
  toString(): string {
    return 'none';
  }
}
