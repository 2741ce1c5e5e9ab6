import { BlockNotFoundError, type BlockRef, type BlockSource, type SourceOptions } from '@thfc/format';
import type { BlockReader, LocalBlocks } from '../src/sources/block-reader.js';

/**
 * Shared fixtures for the blockfs unit tests: real temp directories, real
 * encoded blocks and indexes (from @thfc/testkit, which store's tests share),
 * and the fakes of blockfs's own reader seams. Nothing here is mocked.
 */

// The encoded blocks and images store's tests share, named once (in @thfc/testkit's index).
export * from '@thfc/testkit';

/** A promise with its resolver outside, to hold a fake source's answer until the test lets it go. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (value: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Wraps a source and records the options of every get: FakeSource records only ids. */
export class RecordingSource implements BlockSource {
  readonly gets: { id: string; priority: SourceOptions['priority']; signal: AbortSignal | undefined }[] = [];
  constructor(readonly inner: BlockSource) {}
  get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    this.gets.push({ id: ref.id, priority: options?.priority, signal: options?.signal });
    return this.inner.get(ref, options);
  }
  has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return this.inner.has(ref, options);
  }
  toString(): string {
    return `recording(${this.inner})`;
  }
}

/** A whole decoded block through a BlockReader (what a reader of the image would get). */
export async function readWhole(
  reader: { read: BlockReader['read'] },
  ref: BlockRef,
  options?: SourceOptions,
): Promise<Uint8Array> {
  const out = new Uint8Array(ref.size);
  await reader.read(ref, out, 0, 0, ref.size, options);
  return out;
}

/**
 * A local cache for cached(): a Map of decoded blocks plus hooks. `onRead`
 * may throw to stage a fault; `gateKeep` holds every keep() until released.
 */
export class FakeLocal implements LocalBlocks {
  readonly blocks = new Map<string, Uint8Array>();
  readonly reads: string[] = [];
  readonly kept: string[] = [];
  onRead?: (ref: BlockRef) => void;
  gateKeep?: Promise<void>;

  holds(ref: BlockRef): boolean {
    return this.blocks.has(ref.id);
  }
  async read(ref: BlockRef, dst: Uint8Array, at: number, from: number, length: number): Promise<undefined> {
    this.reads.push(ref.id);
    this.onRead?.(ref);
    const data = this.blocks.get(ref.id);
    if (!data) throw new BlockNotFoundError(ref.id, this.toString());
    dst.set(data.subarray(from, from + length), at);
    return undefined;
  }
  async load(ref: BlockRef): Promise<undefined> {
    if (!this.blocks.has(ref.id)) throw new BlockNotFoundError(ref.id, this.toString());
    return undefined;
  }
  async keep(ref: BlockRef, data: Uint8Array): Promise<boolean> {
    this.kept.push(ref.id);
    await this.gateKeep;
    this.blocks.set(ref.id, data);
    return true;
  }
  toString(): string {
    return 'fake(local)';
  }
}

/** A BlockReader over a Map of decoded blocks, for the layers above cached(). */
export class FakeReader implements BlockReader {
  readonly blocks = new Map<string, Uint8Array>();
  readonly reads: string[] = [];
  readonly loads: string[] = [];
  /** Hand the whole block up (as a fetch does) or copy the slice alone (as a verified disk hit does). */
  handUp = true;
  onRead?: (ref: BlockRef) => void;

  async read(
    ref: BlockRef,
    dst: Uint8Array,
    at: number,
    from: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    this.reads.push(ref.id);
    this.onRead?.(ref);
    const data = this.blocks.get(ref.id);
    if (!data) throw new BlockNotFoundError(ref.id, this.toString());
    dst.set(data.subarray(from, from + length), at);
    return this.handUp ? data : undefined;
  }
  async load(ref: BlockRef): Promise<Uint8Array | undefined> {
    this.loads.push(ref.id);
    const data = this.blocks.get(ref.id);
    if (!data) throw new BlockNotFoundError(ref.id, this.toString());
    return this.handUp ? data : undefined;
  }
  toString(): string {
    return 'fake(reader)';
  }
}
