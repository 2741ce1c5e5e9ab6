import type { BlockRef, BlockSink, BlockSource, SourceOptions } from '../block-source.js';
import { BlockNotFoundError } from '../errors.js';

/**
 * A Map plus hooks: the test double for the block seam. `onGet` runs before
 * each get and may throw (to stage a fault) or return bytes to serve instead.
 */
export class FakeSource implements BlockSource, BlockSink {
  readonly blocks = new Map<string, Uint8Array>();
  readonly calls: string[] = [];
  onGet?: (ref: BlockRef) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

  constructor(readonly name = 'fake') {}

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted();
    this.calls.push(ref.id);
    const hooked = await this.onGet?.(ref);
    options?.signal?.throwIfAborted(); // aborted while "in flight", as a real remote would be
    if (hooked) return hooked;
    const b = this.blocks.get(ref.id);
    if (!b) throw new BlockNotFoundError(ref.id, this.toString());
    return b;
  }

  async has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    options?.signal?.throwIfAborted();
    return this.blocks.has(ref.id);
  }

  async put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    options?.signal?.throwIfAborted();
    if (!this.blocks.has(ref.id)) this.blocks.set(ref.id, stored);
  }

  toString(): string {
    return `fake(${this.name})`;
  }
}
