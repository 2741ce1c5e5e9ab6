import { mkdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { CommandIo } from '@thfc/cli';
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
  type IndexBuilder,
  type IndexHeader,
  indexFileName,
  signIndex,
  VERSIONS_DIR,
} from '@thfc/format';
import { DirStore, looksLikeIndex, readIndexFile, readKeyFile, type SigningKey, VersionStore } from '@thfc/store';
import { fsError, InputError, InterruptedError, UsageError } from './errors.js';
import { type InputFormat, openImageInput } from './image-input.js';
import { type PackedBlocks, packBlocks } from './pack-blocks.js';

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
  const packed = await packBlocks(
    input,
    store,
    { image: options.image, store: options.store, name, blockSize, hash, codec, workers },
    io,
  );
  const header: IndexHeader = {
    version: FORMAT_VERSION,
    name,
    size: packed.bytesIn,
    blockSize,
    hash,
    codec: formatCodecSpec(codec),
    created: created.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    previous,
  };
  const written = await writeIndex(options.store, header, packed.entries, key, io.signal);
  return summary(packed, written, {
    name,
    seconds: (performance.now() - started) / 1000,
    signedBy: key?.keyId,
    inputFormat: input.format,
  });
}

interface WrittenIndex {
  readonly counts: ReturnType<ReturnType<IndexBuilder['build']>['counts']>;
  readonly bytes: number;
  /** STORE/NAME.idx. */
  readonly path: string;
  readonly digest: string;
  /** STORE/versions/NAME/<created>-<digest12>.idx. */
  readonly version: string;
}

/** Encodes (and signs) the index and publishes it as NAME.idx, last: the version it replaces stays retained. */
async function writeIndex(
  store: string,
  header: IndexHeader,
  entries: IndexBuilder,
  key: SigningKey | undefined,
  signal: AbortSignal,
): Promise<WrittenIndex> {
  const index = entries.build(header);
  const unsigned = encodeIndex(header, index.entries());
  const indexBytes = key ? signIndex(unsigned, key.privateKey, key.publicKey) : unsigned;
  // NAME.idx (and NAME.idx.zst) through the version store.
  const version = await new VersionStore(store).publish(header.name, indexBytes, signal);
  return {
    counts: index.counts(),
    bytes: indexBytes.length,
    path: join(store, indexFileName(header.name)),
    digest: version.digest,
    version: join(store, VERSIONS_DIR, header.name, version.file),
  };
}

/** What `thfc-pack pack` prints: what was read, what the store holds for this image, and what this run added. */
function summary(
  packed: PackedBlocks,
  index: WrittenIndex,
  run: { name: string; seconds: number; signedBy: string | undefined; inputFormat: string },
): PackSummary {
  const { counts } = index;
  const { bytesIn } = packed;
  return {
    name: run.name,
    index: index.path,
    digest: index.digest,
    version: index.version,
    blocks: counts.blocks,
    zeroBlocks: counts.zero,
    uniqueBlocks: counts.unique,
    newBlocks: packed.newBlocks,
    bytesIn,
    storedBytes: counts.storedBytes,
    newBytes: packed.newBytes,
    indexBytes: index.bytes,
    ratio: counts.storedBytes > 0 ? bytesIn / counts.storedBytes : 0,
    seconds: run.seconds,
    mbPerSecond: bytesIn / 1e6 / run.seconds,
    signedBy: run.signedBy,
    inputFormat: run.inputFormat,
    bytesRead: packed.bytesRead,
  };
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
