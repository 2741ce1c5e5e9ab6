import { type BlockRef, type BlockSource, decodeVerified, type ImageIndex } from '@thfc/format';
import { type Logger, SILENT_LOGGER } from './logger.js';
import { raceAbort } from './sources/cached.js';

export interface ImageReaderOptions {
  /**
   * Blocks to read ahead of a sequential stream. 8 × 256 KiB = 2 MiB keeps
   * 4 connections busy across one round trip at loopback-to-LAN latencies
   * without fetching much a random reader never uses.
   */
  readonly readaheadBlocks?: number | undefined;
  /** Upper bound on one read; past it the reader gets EIO. Callers set it above the mirror bound. */
  readonly readTimeoutMs?: number | undefined;
}

export const DEFAULT_READAHEAD_BLOCKS = 8;
/** Two block reads in a row that continue each other make a stream; one could be chance. */
const SEQUENTIAL_STREAK = 2;

/** Per open file: where the last read ended, to tell a sequential stream from random reads. */
export interface ReadStream {
  lastBlock: number;
  streak: number;
  /** Next block index read-ahead has not requested yet. */
  aheadNext: number;
}

export function newReadStream(): ReadStream {
  return { lastBlock: -2, streak: 0, aheadNext: 0 };
}

/** Sees each demand use of a block: `i` is the block number, `ref` its entry. Must not throw or block. */
export type BlockObserver = (i: number, ref: BlockRef) => void;

export interface ReadCounters {
  reads: number;
  bytesRead: number;
  readErrors: number;
  readaheadIssued: number;
}

/**
 * Maps byte ranges of one image to its blocks: zero blocks are filled in
 * without any I/O, others come from the source and are verified (a memo makes
 * that free when a lower layer already did it). Wrong bytes are never copied
 * out: any failure rejects, and the FUSE layer turns that into EIO.
 */
export class ImageReader {
  readonly counters: ReadCounters = { reads: 0, bytesRead: 0, readErrors: 0, readaheadIssued: 0 };
  private aheadInflight = 0;

  constructor(
    private readonly components: {
      index: ImageIndex;
      source: BlockSource;
      logger?: Logger;
      /** Told of every non-zero block a reader asks for, before it is fetched (profile recording, prefetch stats, measurement). */
      observers?: readonly BlockObserver[];
    },
    private readonly options: ImageReaderOptions = {},
  ) {}

  get size(): number {
    return this.components.index.header.size;
  }

  get name(): string {
    return this.components.index.header.name;
  }

  /** Reads into buf[0, length) from `position`; resolves to the byte count (0 at or past the end). */
  async read(
    buf: Uint8Array,
    length: number,
    position: number,
    stream?: ReadStream,
    signal?: AbortSignal,
  ): Promise<number> {
    const { index } = this.components;
    const size = index.header.size;
    if (position >= size || length <= 0) return 0;
    const end = Math.min(size, position + length);
    const bs = index.header.blockSize;
    const first = Math.floor(position / bs);
    const last = Math.floor((end - 1) / bs);
    this.counters.reads++;
    const timeout = this.options.readTimeoutMs;
    const waitSignal = timeout ? anySignal(signal, AbortSignal.timeout(timeout)) : signal;
    try {
      const parts: Promise<void>[] = [];
      for (let i = first; i <= last; i++) {
        const blockStart = i * bs;
        const from = Math.max(position, blockStart);
        const to = Math.min(end, blockStart + bs);
        const dst = from - position;
        const ref = index.ref(i);
        if (!ref) {
          buf.fill(0, dst, dst + (to - from));
          continue;
        }
        for (const observe of this.components.observers ?? []) observe(i, ref);
        parts.push(
          this.block(i, waitSignal).then((data) => {
            buf.set(data.subarray(from - blockStart, to - blockStart), dst);
          }),
        );
      }
      if (stream) this.readAhead(stream, first, last);
      await Promise.all(parts);
    } catch (e) {
      this.counters.readErrors++;
      const why = (e as Error)?.name === 'TimeoutError' ? `no answer within ${timeout} ms` : (e as Error)?.message;
      (this.components.logger ?? SILENT_LOGGER).fault(`read ${this.name} [${position}, +${length}) failed: ${why}`);
      throw e;
    }
    this.counters.bytesRead += end - position;
    return end - position;
  }

  private async block(i: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const ref = this.components.index.ref(i);
    if (!ref) throw new RangeError(`block ${i} is a zero block`);
    const source = this.components.source;
    const p = source.get(ref, { signal, priority: 'demand' });
    const stored = signal ? await raceAbort(p, signal) : await p;
    return decodeVerified(ref, stored, source.toString());
  }

  private readAhead(stream: ReadStream, first: number, last: number): void {
    const sequential = first === stream.lastBlock || first === stream.lastBlock + 1;
    stream.streak = sequential ? stream.streak + 1 : 0;
    // A new stream (a seek) may start behind blocks an earlier one already asked for: read ahead from it afresh.
    if (!sequential) stream.aheadNext = 0;
    stream.lastBlock = last;
    const n = this.options.readaheadBlocks ?? DEFAULT_READAHEAD_BLOCKS;
    if (stream.streak < SEQUENTIAL_STREAK || n <= 0) return;
    const index = this.components.index;
    const until = Math.min(index.blockCount - 1, last + n);
    let next = Math.max(stream.aheadNext, last + 1);
    for (; next <= until && this.aheadInflight < n; next++) {
      const ref = index.ref(next);
      if (!ref) continue;
      const at = next;
      this.aheadInflight++;
      this.counters.readaheadIssued++;
      this.components.source
        .get(ref, { priority: 'background' })
        .then((stored) => decodeVerified(ref, stored, 'read-ahead'))
        .catch((e) =>
          (this.components.logger ?? SILENT_LOGGER).verbose(
            `read-ahead of block ${at} gave up: ${(e as Error).message}`,
          ),
        )
        .finally(() => this.aheadInflight--);
    }
    stream.aheadNext = next;
  }
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
