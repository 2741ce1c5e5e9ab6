import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type CommandIo, progressFor } from '@thfc/cli';
import { type BlockSource, decodeVerified, type ImageIndex } from '@thfc/format';
import { DirStore, readIndexFile, tempPathFor } from '@thfc/store';
import { fsError, InterruptedError, UsageError } from './errors.js';

export interface UnpackOptions {
  readonly index: string;
  /** Output file, or `-` for stdout. */
  readonly out: string;
  /** Where the blocks are; default: the index's directory. */
  readonly store?: string | undefined;
  /** Replace an existing output file. */
  readonly force?: boolean | undefined;
}

export interface UnpackSummary {
  readonly name: string;
  readonly out: string;
  readonly bytes: number;
  readonly blocks: number;
  readonly zeroBlocks: number;
  readonly seconds: number;
}

/** Blocks read ahead of the writer. Reads from a local store overlap decode and write; 8 saturates 2 cores. */
const READ_WINDOW = 8;

/**
 * Rebuilds the image byte for byte, verifying every block. Zero blocks are
 * left as holes in a file (written as zeros to stdout). The output appears
 * under its name only when complete: it is written to a temp file and renamed.
 */
export async function runUnpack(options: UnpackOptions, io: CommandIo): Promise<UnpackSummary> {
  const started = performance.now();
  const decoded = await readIndexFile(options.index);
  const index = decoded.index;
  const source: BlockSource = new DirStore(options.store ?? dirname(options.index));
  const toStdout = options.out === '-';
  if (!toStdout) await checkOut(options.out, options.force ?? false);
  const progress = progressFor(io, `unpack ${index.header.name}`, index.header.size);

  const tmp = toStdout ? undefined : tempPathFor(options.out);
  const fh = tmp
    ? await open(tmp, 'wx', 0o644).catch((e) => {
        throw fsError(e, options.out);
      })
    : undefined;
  const zeros = Buffer.alloc(index.header.blockSize);
  let done = 0;
  try {
    let i = 0;
    for await (const data of blocksInOrder(index, source, io.signal)) {
      io.signal.throwIfAborted();
      const pos = i * index.header.blockSize;
      const len = index.blockLength(i);
      if (fh) {
        if (data) await fh.write(data, 0, data.length, pos);
      } else {
        await writeOut(io.stdout, data ?? zeros.subarray(0, len));
      }
      done += len;
      progress.update(done);
      i++;
    }
    if (fh && tmp) {
      await fh.truncate(index.header.size);
      await fh.sync();
      await fh.close();
      await rename(tmp, options.out);
    }
  } catch (e) {
    await fh?.close().catch(() => {});
    if (tmp) await unlink(tmp).catch(() => {});
    progress.finish();
    if (io.signal.aborted) throw new InterruptedError(`interrupted; ${options.out} was not written`);
    throw fsError(e, options.out);
  }
  progress.finish();
  return {
    name: index.header.name,
    out: options.out,
    bytes: index.header.size,
    blocks: index.blockCount,
    zeroBlocks: index.counts().zero,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Each block's verified bytes (undefined for a zero block), in order, with up to READ_WINDOW reads in flight. */
async function* blocksInOrder(
  index: ImageIndex,
  source: BlockSource,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array | undefined> {
  const read = (i: number): Promise<Uint8Array | undefined> => {
    const ref = index.ref(i);
    if (!ref) return Promise.resolve(undefined);
    return source.get(ref, { signal }).then((stored) => decodeVerified(ref, stored, source.toString()));
  };
  const window: Promise<Uint8Array | undefined>[] = [];
  let next = 0;
  for (let i = 0; i < index.blockCount; i++) {
    while (next < index.blockCount && next < i + READ_WINDOW) {
      const p = read(next++);
      p.catch(() => {}); // awaited below; this only stops an early exit from leaving it unhandled
      window.push(p);
    }
    yield await (window.shift() as Promise<Uint8Array | undefined>);
  }
}

async function checkOut(out: string, force: boolean): Promise<void> {
  const st = await stat(out).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory()) throw new UsageError(`${out} is a directory; give the path of the image file to write`);
  if (!force) throw new UsageError(`${out} already exists; refusing to overwrite it (use --force)`);
}

function writeOut(stream: NodeJS.WritableStream, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = stream.write(data, (e) => (e ? reject(e) : undefined));
    if (ok) resolve();
    else stream.once('drain', resolve);
  });
}
