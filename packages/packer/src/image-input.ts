import { type FileHandle, open, stat } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import { freshBuffers, type TakeBuffer } from './block-buffer-pool.js';
import { fsError, InputError, UsageError } from './errors.js';
import { blockSteps, type Extent } from './image-extents.js';
import { imageExtents, imageFacts, openThroughQemuNbd } from './qemu-tools.js';
import { readBlocks, splitBlocks } from './split-blocks.js';

/** What the packer gets from its input: whole blocks to hash, or runs of hole blocks it never reads. */
export type InputBlock =
  | { readonly kind: 'holes'; readonly count: number; readonly bytes: number }
  | { readonly kind: 'data'; readonly buffer: Buffer };

/** `auto`: ask qemu-img; anything else is a qemu format name, `raw` included. */
export type InputFormat = 'auto' | (string & {});

export interface ImageInput {
  /** The image's size when known before reading: files, devices, qemu images; not stdin. */
  readonly size: number | undefined;
  /** The format read: `raw`, or the qemu format read through qemu-nbd. */
  readonly format: string;
  /** True when holes are skipped (qemu-img map gave the extents). */
  readonly sparse: boolean;
  /** `take` gives each data block's buffer (whole `blockSize` bytes; a short last block is a view of one). */
  blocks(blockSize: number, signal: AbortSignal, take?: TakeBuffer): AsyncGenerator<InputBlock>;
  close(): Promise<void>;
}

interface PositionalReader {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/**
 * Opens the image to pack. A regular file or block device is mapped with
 * `qemu-img map` and read around its holes; a qcow2 (or other qemu format)
 * image is read through qemu-nbd; without qemu-img, or for stdin and other
 * streams, every byte is read in order, as before sparse packing.
 *
 * Format probing is how qemu reads a guest-written raw disk as qcow2 with a
 * host file as its backing store; so in `auto`, an image with a backing file
 * is refused unless its format is given explicitly.
 */
export async function openImageInput(
  image: string,
  components: { stdin: NodeJS.ReadableStream },
  options: { format?: InputFormat | undefined; signal: AbortSignal },
): Promise<ImageInput> {
  const wanted = options.format ?? 'auto';
  if (image === '-') {
    if (wanted !== 'auto' && wanted !== 'raw') throw new UsageError(`--input-format ${wanted} cannot read stdin`);
    return sequential(undefined, undefined, components.stdin);
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(image);
  } catch (e) {
    throw fsError(e, `image ${image}`);
  }
  if (!st.isFile() && !st.isBlockDevice()) {
    // A pipe or character device: read in order, as stdin.
    if (wanted !== 'auto' && wanted !== 'raw')
      throw new UsageError(`--input-format ${wanted} needs a file or block device`);
    return sequential(await openFile(image), undefined);
  }
  const fh = await openFile(image);
  try {
    return await openFileInput(image, fh, st.isFile() ? st.size : undefined, wanted, options.signal);
  } catch (e) {
    await fh.close().catch(() => {});
    throw e;
  }
}

/** `size` is the file's own size (undefined for a device): qemu rounds a raw file's size up to 512 bytes. */
async function openFileInput(
  image: string,
  fh: FileHandle,
  size: number | undefined,
  wanted: InputFormat,
  signal: AbortSignal,
): Promise<ImageInput> {
  const facts = await imageFacts(image, signal);
  if (!facts) {
    if (wanted !== 'auto' && wanted !== 'raw') {
      throw new UsageError(`--input-format ${wanted} needs qemu-img (Debian: qemu-utils), which is not installed`);
    }
    return sequential(fh, size);
  }
  const format = wanted === 'auto' ? facts.format : wanted;
  if (wanted === 'auto' && facts.backingFile !== undefined) {
    throw new UsageError(
      `${image} is ${facts.format} with a backing file (${facts.backingFile}); give --input-format ${facts.format} to read through it, or --input-format raw to pack the file as it is`,
    );
  }
  const map = await imageExtents(image, format, signal);
  if (!map) throw new InputError(`${image}: qemu-img disappeared while in use`);
  if (format === 'raw') return sparse(fh, map.extents, size ?? map.size, 'raw', () => fh.close());
  await fh.close();
  const reader = await openThroughQemuNbd(image, format, signal);
  if (reader.size !== map.size) {
    await reader.close();
    throw new InputError(`${image}: qemu-nbd says ${reader.size} bytes, qemu-img map ${map.size}`);
  }
  return sparse(reader, map.extents, map.size, format, () => reader.close());
}

async function openFile(path: string): Promise<FileHandle> {
  return open(path, 'r').catch((e) => {
    throw fsError(e, `image ${path}`);
  });
}

function sequential(fh: FileHandle | undefined, size: number | undefined, stream?: NodeJS.ReadableStream): ImageInput {
  return {
    size,
    format: 'raw',
    sparse: false,
    async *blocks(blockSize, signal, take = freshBuffers(blockSize)) {
      const source = fh
        ? readBlocks(fh, blockSize, signal, take)
        : splitBlocks(addAbortSignal(signal, stream as Readable) as AsyncIterable<Uint8Array>, blockSize, signal, take);
      for await (const buffer of source) yield { kind: 'data', buffer };
    },
    close: async () => {
      await fh?.close();
    },
  };
}

function sparse(
  reader: PositionalReader,
  extents: readonly Extent[],
  size: number,
  format: string,
  close: () => Promise<void>,
): ImageInput {
  return {
    size,
    format,
    sparse: true,
    async *blocks(blockSize, signal, take = freshBuffers(blockSize)) {
      for (const step of blockSteps(extents, size, blockSize)) {
        signal.throwIfAborted();
        if (step.kind === 'holes') {
          yield step;
          continue;
        }
        const whole = take();
        const buffer = step.length === whole.length ? whole : whole.subarray(0, step.length);
        let fill = 0;
        while (fill < step.length) {
          const { bytesRead } = await reader.read(buffer, fill, step.length - fill, step.start + fill);
          if (bytesRead === 0)
            throw new InputError(`the image shrank while being packed (no bytes at ${step.start + fill})`);
          fill += bytesRead;
        }
        yield { kind: 'data', buffer };
      }
    },
    close,
  };
}
