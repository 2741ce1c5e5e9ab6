import { BlockNotFoundError, type BlockRef, type BlockSink, type BlockSource, type SourceOptions } from '@thfc/format';
import { blockSourceContract } from '@thfc/format/testing';
import { storeFiles } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { readAt, StoreReader } from '../src/store-reader.js';
import { tempDir } from './helpers.js';

/**
 * The mirror's store as a BlockSource: reads go through StoreReader's
 * descriptor cache the way a block GET does, writes through its DirStore the
 * way pull-through does (then the cached descriptor is forgotten, as there).
 */
class MirrorStore implements BlockSource, BlockSink {
  constructor(readonly reader: StoreReader) {}

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted();
    const file = await this.reader.openBlock(ref.id);
    if (!file) throw new BlockNotFoundError(ref.id, this.toString());
    try {
      const out = Buffer.alloc(file.size);
      for (let off = 0; off < out.length; ) {
        options?.signal?.throwIfAborted();
        const n = await readAt(file.fd, out.subarray(off), out.length - off, off);
        if (n === 0) throw new Error('block file shrank while being read');
        off += n;
      }
      return out;
    } finally {
      this.reader.releaseBlock(file);
    }
  }

  async has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    options?.signal?.throwIfAborted();
    const file = await this.reader.openBlock(ref.id);
    if (file) this.reader.releaseBlock(file);
    return file !== undefined;
  }

  async put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    await this.reader.dirStore.put(ref, stored, options);
    this.reader.forgetBlock(ref.id);
  }

  toString(): string {
    return `mirror-store(${this.reader.root})`;
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

blockSourceContract(
  'mirror StoreReader',
  async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const reader = await StoreReader.open({}, { root: t.dir });
    cleanups.push(() => reader.close());
    return new MirrorStore(reader);
  },
  { describe, it, expect },
  { files: (store) => storeFiles(store.reader.root) },
);
