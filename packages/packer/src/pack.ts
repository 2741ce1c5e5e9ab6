import { mkdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import {
  assertBlockSize,
  assertImageName,
  type CodecSpec,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CODEC,
  DEFAULT_HASH,
  encodeIndex,
  FORMAT_VERSION,
  formatCodecSpec,
  type HashAlgorithm,
  IndexBuilder,
  type IndexHeader,
  indexFileName,
  signIndex,
  VERSIONS_DIR,
} from '@thfc/format';
import { BlockBufferPool } from './block-buffer-pool.js';
import type { CommandIo } from './command-io.js';
import { progressFor } from './command-io.js';
import { DirStore } from './dir-store.js';
import { fsError, InputError, InterruptedError, StoreFullError, UsageError } from './errors.js';
import { type InputFormat, openImageInput } from './image-input.js';
import { looksLikeIndex, readIndexFile } from './index-file.js';
import { readKeyFile } from './key-file.js';
import type { PackTask, PackTaskResult } from './pack-protocol.js';
import { VersionStore } from './version-store.js';
import { WorkerPool, workerScript } from './worker-pool.js';

export interface PackOptions {
  /** A file or block device, or `-` for stdin. */
  readonly image: string;
  readonly store: string;
  readonly name?: string | undefined;
  readonly blockSize?: number | undefined;
  readonly codec?: CodecSpec | undefined;
  readonly hash?: HashAlgorithm | undefined;
  /** Private key file: sign the index as it is written. */
  readonly sign?: string | undefined;
  /** An earlier index of this image: its digest goes into the header's `previous`. */
  readonly previous?: string | undefined;
  /** Creation time to record; default SOURCE_DATE_EPOCH, else now. */
  readonly created?: Date | undefined;
  /** Worker threads; default one per core. */
  readonly workers?: number | undefined;
  /** The image's qemu format (`raw`, `qcow2`, …); default `auto`: qemu-img says. */
  readonly inputFormat?: InputFormat | undefined;
}

export interface PackSummary {
  readonly name: string;
  readonly index: string;
  readonly digest: string;
  /** The retained copy of this version: STORE/versions/NAME/<created>-<digest12>.idx. */
  readonly version: string;
  readonly blocks: number;
  readonly zeroBlocks: number;
  /** Distinct non-zero blocks in the image. */
  readonly uniqueBlocks: number;
  /** Blocks this run wrote (the store lacked them). */
  readonly newBlocks: number;
  readonly bytesIn: number;
  /** Stored size of the image's distinct blocks: its footprint in a store of its own. */
  readonly storedBytes: number;
  /** Bytes this run added to the store, blocks only. */
  readonly newBytes: number;
  readonly indexBytes: number;
  /** bytesIn / storedBytes. */
  readonly ratio: number;
  readonly seconds: number;
  readonly mbPerSecond: number;
  readonly signedBy: string | undefined;
  /** The format read (`raw`, or a qemu format read through qemu-nbd). */
  readonly inputFormat: string;
  /** Bytes actually read from the input: holes that qemu-img map reported are skipped. */
  readonly bytesRead: number;
}

/**
 * Blocks in flight per worker. Two keeps every worker busy while the main
 * thread reads and writes; more only holds memory (each is a whole block,
 * its buffer reused once the block is written).
 */
const DEFAULT_INFLIGHT_PER_WORKER = 4;

const IMAGE_EXTENSIONS = /\.(img|raw|iso|bin|disk|qcow2?|vmdk|vdi|vhdx?|qed)$/i;

/**
 * Splits an image into blocks, stores the ones the store lacks, and writes
 * NAME.idx last. Streaming: memory is bounded by the in-flight window, not by
 * the image. Interrupted or failed runs leave only whole blocks behind, so the
 * same command run again finishes the job and reuses them.
 */
export async function runPack(options: PackOptions, io: CommandIo): Promise<PackSummary> {
  const started = performance.now();
  const blockSize = assertBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE);
  const codec = options.codec ?? DEFAULT_CODEC;
  const hash = options.hash ?? DEFAULT_HASH;
  const fromStdin = options.image === '-';
  if (fromStdin && !options.name) throw new UsageError('reading the image from stdin needs --name');
  if (!fromStdin) await checkImage(options.image);
  const name = assertImageName(options.name ?? basename(options.image).replace(IMAGE_EXTENSIONS, ''));
  const key = options.sign ? await readKeyFile(options.sign) : undefined;
  const previous = options.previous ? (await readIndexFile(options.previous)).digest : undefined;
  const created = options.created ?? createdFromEnv(io.env);
  await prepareStore(options.store);
  const store = new DirStore(options.store);
  // Open before starting workers: a failure here must not leave threads holding the process open.
  const input = await openImageInput(
    options.image,
    { stdin: io.stdin },
    { format: options.inputFormat, signal: io.signal },
  ).catch((e) => {
    throw io.signal.aborted ? new InterruptedError('interrupted before reading the image; nothing was stored') : e;
  });

  const workers = Math.max(1, options.workers ?? availableParallelism());
  const pool = new WorkerPool<PackTask, PackTaskResult>(workerScript('pack-worker', import.meta.url), workers, {
    storeRoot: options.store,
    hash,
    codec,
  });
  const stop = new AbortController();
  const onAbort = () => stop.abort(io.signal.reason);
  io.signal.addEventListener('abort', onAbort, { once: true });
  const progress = progressFor(io, `pack ${name}`, input.size);

  // Typed arrays sized for the whole image: the pages of its holes are never written, so never resident.
  const entries = new IndexBuilder(hash, input.size ? Math.ceil(input.size / blockSize) : 0);
  const written = new Set<string>();
  let bytesIn = 0;
  let bytesRead = 0;
  let newBlocks = 0;
  let newBytes = 0;
  let firstError: unknown;
  const inflight = new Set<Promise<void>>();
  const maxInflight = workers * DEFAULT_INFLIGHT_PER_WORKER;
  // One more than the window: the next block is read before waiting for a slot.
  const buffers = new BlockBufferPool(blockSize, maxInflight + 1);

  const handle = async (r: PackTaskResult): Promise<void> => {
    if ('error' in r) throw new Error(`block ${r.seq}: ${r.error}`);
    if (r.zero) {
      entries.setZero(r.seq, 1);
      buffers.give(r.buffer);
      return;
    }
    entries.set(r.seq, { id: r.id, codec: r.codec, storedSize: r.storedSize });
    if (!r.existing && !written.has(r.id)) {
      written.add(r.id);
      const ref = { id: r.id, codec: r.codec, storedSize: r.storedSize, size: 0 };
      await store.put(ref, new Uint8Array(r.buffer, 0, r.storedSize));
      newBlocks++;
      newBytes += r.storedSize;
    }
    // Only once written: the stored bytes live in this buffer until then.
    buffers.give(r.buffer);
  };

  try {
    let seq = 0;
    for await (const step of input.blocks(blockSize, stop.signal, () => buffers.take())) {
      if (stop.signal.aborted) break;
      if (step.kind === 'holes') {
        entries.setZero(seq, step.count);
        seq += step.count;
        bytesIn += step.bytes;
        progress.update(bytesIn);
        continue;
      }
      const block = step.buffer;
      const task: PackTask = { seq: seq++, buffer: block.buffer as ArrayBuffer, length: block.length };
      bytesIn += block.length;
      bytesRead += block.length;
      const p: Promise<void> = pool
        .run(task, [task.buffer])
        .then(handle)
        .catch((e) => {
          firstError ??= e;
          stop.abort(e);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      progress.update(bytesIn);
      if (inflight.size >= maxInflight) await Promise.race(inflight);
    }
  } catch (e) {
    if (!stop.signal.aborted) firstError ??= fsError(e, options.image);
  } finally {
    await Promise.allSettled(inflight);
    await pool.close();
    await input.close().catch(() => {});
    io.signal.removeEventListener('abort', onAbort);
  }
  if (io.signal.aborted && !firstError) {
    progress.finish();
    throw new InterruptedError(
      `interrupted after ${formatCount(entries.length)} blocks; ${newBlocks} new blocks are stored and will be reused: run the same command again to finish`,
    );
  }
  if (firstError) {
    progress.finish();
    if (firstError instanceof StoreFullError) {
      throw new StoreFullError(
        `store ${options.store} is full (no space left on device) after ${newBlocks} new blocks; they are kept: free space and run the same command again to resume`,
      );
    }
    throw fsError(firstError, options.store);
  }
  progress.finish();
  if (bytesIn === 0) throw new InputError(`${options.image}: the image is empty`);

  const header: IndexHeader = {
    version: FORMAT_VERSION,
    name,
    size: bytesIn,
    blockSize,
    hash,
    codec: formatCodecSpec(codec),
    created: created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    previous,
  };
  const index = entries.build(header);
  const unsigned = encodeIndex(header, index.entries());
  const indexBytes = key ? signIndex(unsigned, key.privateKey, key.publicKey) : unsigned;
  const indexPath = join(options.store, indexFileName(name));
  // NAME.idx (and NAME.idx.zst) through the version store: the version it replaces stays retained.
  const version = await new VersionStore(options.store).publish(name, indexBytes, io.signal);

  const counts = index.counts();
  const storedBytes = counts.storedBytes;
  const seconds = (performance.now() - started) / 1000;
  return {
    name,
    index: indexPath,
    digest: version.digest,
    version: join(options.store, VERSIONS_DIR, name, version.file),
    blocks: counts.blocks,
    zeroBlocks: counts.zero,
    uniqueBlocks: counts.unique,
    newBlocks,
    bytesIn,
    storedBytes,
    newBytes,
    indexBytes: indexBytes.length,
    ratio: storedBytes > 0 ? bytesIn / storedBytes : 0,
    seconds,
    mbPerSecond: bytesIn / 1e6 / seconds,
    signedBy: key?.keyId,
    inputFormat: input.format,
    bytesRead,
  };
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Seconds resolution in UTC; SOURCE_DATE_EPOCH makes the index bit-for-bit reproducible. */
export function createdFromEnv(env: Readonly<Record<string, string | undefined>>): Date {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined) {
    if (!/^\d+$/.test(epoch)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds, not "${epoch}"`);
    return new Date(Number(epoch) * 1000);
  }
  return new Date();
}

/** Refuses a directory, an empty file and an index given where an image belongs. */
async function checkImage(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw fsError(e, `image ${path}`);
  }
  if (st.isDirectory()) {
    throw new UsageError(`${path} is a directory; give a raw disk image file, a block device, or - for stdin`);
  }
  if (st.isFile()) {
    if (st.size === 0) throw new InputError(`${path}: the image is empty`);
    if (await looksLikeIndex(path)) {
      throw new UsageError(
        `${path} is a thfc index, not a disk image (to rebuild an image from it, use: thfc-pack unpack)`,
      );
    }
  }
}

async function prepareStore(store: string): Promise<void> {
  try {
    const st = await stat(store);
    if (!st.isDirectory()) {
      if (await looksLikeIndex(store)) {
        throw new UsageError(
          `${store} is an index file, not a store directory (--store takes the directory that holds NAME.idx and blocks/)`,
        );
      }
      throw new UsageError(`--store ${store} is not a directory`);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, store);
  }
  try {
    await mkdir(join(store, 'blocks'), { recursive: true });
  } catch (e) {
    throw fsError(await trueMkdirError(store, e), store);
  }
}

/**
 * Node's recursive mkdir reports ENOENT on a read-only file system (it
 * retries the parent, which exists); a plain mkdir of each level gives the
 * real reason (EROFS, EACCES).
 */
async function trueMkdirError(store: string, e: unknown): Promise<unknown> {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return e;
  const levels: string[] = [];
  for (let dir = resolve(store, 'blocks'); dirname(dir) !== dir; dir = dirname(dir)) levels.unshift(dir);
  for (const dir of levels) {
    try {
      await mkdir(dir);
    } catch (inner) {
      if ((inner as NodeJS.ErrnoException).code !== 'EEXIST') return inner;
    }
  }
  return e;
}
