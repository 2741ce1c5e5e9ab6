import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BlockNotFoundError,
  type BlockRef,
  type BlockSink,
  type BlockSource,
  blockPath,
  type Codec,
  classifyStored,
  fsError,
  isBlockId,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { TEMP_PREFIX, writeFileAtomic } from './atomic-file.js';

/**
 * A store directory: `ROOT/NAME.idx` and `ROOT/blocks/ab/<id>`, plain static
 * files any web server can serve. Blocks are written to a temp file in their
 * shard and renamed into place, so a block file is whole or absent.
 *
 * Errors: a missing block is BlockNotFoundError; any other read failure is
 * MirrorUnavailableError (the store could not answer). It does not verify:
 * wrap it for that. put() maps ENOSPC to StoreFullError.
 */
export class DirStore implements BlockSource, BlockSink {
  private readonly madeShards = new Set<string>();

  constructor(readonly root: string) {}

  pathOf(id: string): string {
    return join(this.root, blockPath(id));
  }

  async get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted();
    try {
      return await readFile(this.pathOf(ref.id), { signal: options?.signal });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlockNotFoundError(ref.id, this.toString());
      if ((e as Error).name === 'AbortError') throw options?.signal?.reason ?? e;
      throw new MirrorUnavailableError(this.toString(), (e as Error).message, { cause: e });
    }
  }

  async has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    options?.signal?.throwIfAborted();
    try {
      await stat(this.pathOf(ref.id));
      return true;
    } catch {
      return false;
    }
  }

  async put(ref: BlockRef, stored: Uint8Array, options?: SourceOptions): Promise<void> {
    const path = this.pathOf(ref.id);
    const shard = ref.id.slice(0, 2);
    if (!this.madeShards.has(shard)) {
      try {
        await mkdir(join(this.root, 'blocks', shard), { recursive: true });
      } catch (e) {
        throw fsError(e, join(this.root, 'blocks', shard));
      }
      this.madeShards.add(shard);
    }
    await writeFileAtomic(path, stored, { signal: options?.signal });
  }

  /** Lists every block file (and leftover temp file) with its size and mtime. */
  async *list(): AsyncGenerator<{ id: string | undefined; path: string; size: number; mtimeMs: number }> {
    const blocksDir = join(this.root, 'blocks');
    let shards: string[];
    try {
      shards = (await readdir(blocksDir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(e, blocksDir);
    }
    for (const shard of shards) {
      const dir = join(blocksDir, shard);
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch {
        continue; // a stray file at shard level is not ours to judge
      }
      for (const name of names) {
        const path = join(dir, name);
        const st = await stat(path).catch(() => undefined);
        if (!st?.isFile()) continue;
        const isBlock = isBlockId(name) && name.startsWith(shard);
        if (!isBlock && !name.startsWith(TEMP_PREFIX)) continue;
        yield { id: isBlock ? name : undefined, path, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }

  async remove(path: string): Promise<void> {
    await unlink(path);
  }

  toString(): string {
    return `dir(${this.root})`;
  }
}

/**
 * What a store already holds under `id`, read synchronously (used from pack
 * workers, where sync I/O blocks no one): the stored size and codec, or
 * undefined when the block is absent or its file cannot be classified (a
 * damaged file is then rewritten by the packer).
 */
export function probeStoredBlockSync(path: string, length: number): { codec: Codec; storedSize: number } | undefined {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return undefined;
  }
  const head = Buffer.alloc(4);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const n = readSync(fd, head, 0, 4, 0);
    const codec = classifyStored(head.subarray(0, n), size, length);
    return codec ? { codec, storedSize: size } : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
