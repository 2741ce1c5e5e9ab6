import type { BlockRef, ImageIndex } from '@thfc/format';
import type { FetchOptions } from '@thfc/store';
import { type Logger, SILENT_LOGGER } from '@thfc/store';
import { countFailure, type FailureMemory, noteSuccess } from './readahead-errors.js';
import type { BlockReader } from './sources/block-reader.js';
import type { ReadsNow } from './sources/hot-blocks.js';

export interface ImageReaderOptions {
  /** The most blocks read ahead of a sequential stream (see DEFAULT_READAHEAD_BYTES); 0 turns read-ahead off. */
  readonly readaheadBlocks?: number | undefined;
  /** Upper bound on one read; past it the reader gets EIO. Callers set it above the mirror bound. */
  readonly readTimeoutMs?: number | undefined;
}

/**
 * Read-ahead starts at 4 blocks (1 MiB at 256 KiB blocks): what a stream
 * two reads long has earned. It doubles each time the stream has read half
 * of what is ahead of it, as the kernel's on-demand read-ahead ramps, so a
 * long sequential read soon keeps a mirror's whole request window busy, while
 * a short run of reads (a boot's file reads) asks for little it will not use.
 */
export const READAHEAD_START_BLOCKS = 4;

/**
 * The ramp stops at 16 MiB ahead of the reader (64 blocks of 256 KiB): the
 * widest request window (32) with as much again queued behind it, so the
 * window is never starved by the ramp, and no more than the write-behind's
 * 32 MiB budget could hold if the disk fell behind. The blocks are requested
 * at background priority: each mirror's window decides how many go on the wire
 * at once, always serving a reader's own requests first.
 */
export const DEFAULT_READAHEAD_BYTES = 16 * 1024 * 1024;

/**
 * How a stream is detected: two reads in a row that each start within one
 * block of where the stream had got to (the block before, the same block, or
 * the next), and each bring a step of new bytes. One such read could be
 * chance. A block is read in two 128 KiB FUSE requests, and the kernel keeps
 * two requests of one reader in flight at once (measured), so consecutive
 * requests may arrive out of order by one block: that is still the stream.
 * Random 4 KiB reads over an image of thousands of blocks land that close to
 * each other rarely, and then only start read-ahead for a moment.
 */
const SEQUENTIAL_STREAK = 2;

/**
 * The new bytes one read must bring to count as a step of the stream: what
 * one FUSE request carries (the kernel's 128 KiB), or half a block of a
 * smaller image. An NBD client asks for what its guest asks for, down to
 * 4 KiB, and asks again for bytes it has already had: counted per request,
 * a guest reading a few pages of one block looked like a stream and started
 * read-ahead FUSE never would (the kernel's page cache merges such reads into
 * one 128 KiB request, and answers re-reads itself). Counted in new bytes, the
 * same reads over NBD and over FUSE feed the detector alike.
 */
export const STREAM_STEP_BYTES = 128 * 1024;

/** Per open file: where the last read ended, to tell a sequential stream from random reads. */
export interface ReadStream {
  /** Opened with O_DIRECT: no kernel read-ahead, every failure is a reader's (readahead-errors.ts). */
  direct: boolean;
  lastBlock: number;
  streak: number;
  /** The furthest byte the stream has read up to (exclusive). */
  end: number;
  /** Bytes skipped when a read jumped ahead of `end` (a request that may yet arrive late): [gapStart, gapEnd). */
  gapStart: number;
  gapEnd: number;
  /** New bytes read since the streak last grew by a step. */
  fresh: number;
  /** Next block index read-ahead has not requested yet. */
  aheadNext: number;
  /** Blocks read ahead now: READAHEAD_START_BLOCKS, doubling up to the maximum as the stream goes on. */
  aheadSize: number;
  /** Where the stream was when aheadSize last grew. */
  grewAt: number;
}

export function newReadStream(options: { direct?: boolean } = {}): ReadStream {
  return {
    direct: !!options.direct,
    lastBlock: -2,
    streak: 0,
    end: 0,
    gapStart: 0,
    gapEnd: 0,
    fresh: 0,
    aheadNext: 0,
    aheadSize: 0,
    grewAt: 0,
  };
}

/** Sees each demand use of a block: `i` is the block number, `ref` its entry. Must not throw or block. */
export type BlockObserver = (i: number, ref: BlockRef) => void;

export interface ReadCounters {
  reads: number;
  bytesRead: number;
  /** Failed requests a reader saw (EIO), as far as can be told; without a ReadStream, every failure. */
  readErrors: number;
  /** Failed requests that only the kernel's read-ahead made, and no reader saw (readahead-errors.ts). */
  readaheadErrors: number;
  readaheadIssued: number;
}

/**
 * Maps byte ranges of one image to its blocks: zero blocks are filled in
 * without any I/O; the others are copied straight into the caller's buffer by
 * the block reader (`memory(cached(checked(disk), remote))`), which hands out
 * verified bytes only. Any failure rejects, and the FUSE layer turns that into
 * EIO. read() settles only once every write into the buffer is over, even
 * when one block fails early: FUSE frees the buffer as soon as it is answered.
 */
export class ImageReader {
  readonly counters: ReadCounters = { reads: 0, bytesRead: 0, readErrors: 0, readaheadErrors: 0, readaheadIssued: 0 };
  private aheadInflight = 0;
  /** Recent failed requests, to tell the kernel's read-ahead errors from a reader's. */
  private readonly failures: FailureMemory = { failed: [] };

  constructor(
    private readonly components: {
      index: ImageIndex;
      /** The read path; with readNow (ImageSource: its hot index), readNow() can answer without waiting. */
      blocks: BlockReader & Partial<ReadsNow>;
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
    const span = this.span(position, length);
    if (!span) return 0;
    const { end, first, last } = span;
    this.counters.reads++;
    const timeout = this.options.readTimeoutMs;
    // The deadline's timer is armed only if a layer looks at the signal, i.e. only for a read that waits on a
    // fetch: a read answered from RAM or the disk cache (nearly every one) pays for no timer.
    let waitSignal: AbortSignal | undefined;
    const blockOptions: FetchOptions = {
      priority: 'demand',
      get signal() {
        waitSignal ??= timeout ? anySignal(signal, AbortSignal.timeout(timeout)) : signal;
        return waitSignal;
      },
    };
    try {
      const parts: Promise<unknown>[] = [];
      for (let i = first; i <= last; i++) {
        const { dst, from, n } = this.slice(i, position, end);
        const ref = index.ref(i);
        if (!ref) {
          buf.fill(0, dst, dst + n);
          continue;
        }
        for (const observe of this.components.observers ?? []) observe(i, ref);
        parts.push(this.components.blocks.read(ref, buf, dst, from, n, blockOptions));
      }
      if (stream) this.readAhead(stream, position, end, first, last);
      if (parts.length === 1) await parts[0];
      else if (parts.length > 1) await allSettledOrThrow(parts);
    } catch (e) {
      if (stream) countFailure(this.failures, stream.direct, position, end, this.counters);
      else this.counters.readErrors++;
      const why = (e as Error)?.name === 'TimeoutError' ? `no answer within ${timeout} ms` : (e as Error)?.message;
      (this.components.logger ?? SILENT_LOGGER).fault(`read ${this.name} [${position}, +${length}) failed: ${why}`);
      throw e;
    }
    noteSuccess(this.failures, position, end);
    this.counters.bytesRead += end - position;
    return end - position;
  }

  /**
   * read(), done now when every block of the range can be copied without
   * waiting (HotBlocks.readNow: in RAM, behind, or cached, checked and open);
   * undefined when one cannot, and the caller uses read(), which starts over.
   * The reader's counters and observers see nothing unless the whole range
   * was copied, so a fallback counts once here; the layers' hit counters do
   * count the blocks copied before a fallback, which read() then counts again
   * (only for a request that spans two blocks, one of them not ready). On the benchmark machine this is what a warm
   * sequential read is made of: a FUSE request answered within its callback,
   * with no promise or microtask in between, shortens every round trip with
   * the kernel, and only two requests of a reader are in flight at once.
   */
  readNow(buf: Uint8Array, length: number, position: number, stream?: ReadStream): number | undefined {
    const { index, blocks } = this.components;
    if (!blocks.readNow) return undefined;
    const span = this.span(position, length);
    if (!span) return 0;
    const { end, first, last } = span;
    for (let i = first; i <= last; i++) {
      const { dst, from, n } = this.slice(i, position, end);
      const ref = index.ref(i);
      if (!ref) buf.fill(0, dst, dst + n);
      else if (!blocks.readNow(ref, buf, dst, from, n)) return undefined;
    }
    this.counters.reads++;
    const observers = this.components.observers;
    if (observers?.length) {
      for (let i = first; i <= last; i++) {
        const ref = index.ref(i);
        if (ref) for (const observe of observers) observe(i, ref);
      }
    }
    if (stream) this.readAhead(stream, position, end, first, last);
    noteSuccess(this.failures, position, end);
    this.counters.bytesRead += end - position;
    return end - position;
  }

  /** The blocks [first, last] that `length` bytes at `position` touch, and where the read ends; undefined for none. */
  private span(position: number, length: number): { end: number; first: number; last: number } | undefined {
    const { size, blockSize } = this.components.index.header;
    if (position >= size || length <= 0) return undefined;
    const end = Math.min(size, position + length);
    return { end, first: Math.floor(position / blockSize), last: Math.floor((end - 1) / blockSize) };
  }

  /** Block i's part of the read [position, end): where it goes in the buffer, where it starts in the block, how long. */
  private slice(i: number, position: number, end: number): { dst: number; from: number; n: number } {
    const bs = this.components.index.header.blockSize;
    const blockStart = i * bs;
    const from = Math.max(position, blockStart);
    return { dst: from - position, from: from - blockStart, n: Math.min(end, blockStart + bs) - from };
  }

  /** The most blocks ahead: --readahead, or DEFAULT_READAHEAD_BYTES of this image's blocks. */
  private maxReadahead(): number {
    return (
      this.options.readaheadBlocks ??
      Math.max(READAHEAD_START_BLOCKS, Math.floor(DEFAULT_READAHEAD_BYTES / this.components.index.header.blockSize))
    );
  }

  private readAhead(stream: ReadStream, position: number, end: number, first: number, last: number): void {
    const sequential = first >= stream.lastBlock - 1 && first <= stream.lastBlock + 1;
    if (sequential) {
      stream.fresh += newBytes(stream, position, end);
      // A read that brings a step of new bytes is the stream's progress; a smaller one adds to the next step.
      const step = Math.min(STREAM_STEP_BYTES, Math.max(1, Math.floor(this.components.index.header.blockSize / 2)));
      if (stream.fresh >= step) {
        stream.streak++;
        stream.fresh = 0;
      }
    } else {
      // A new stream (a seek) may start behind blocks an earlier one already asked for: read ahead from it afresh.
      stream.streak = 0;
      stream.aheadNext = 0;
      stream.end = end;
      stream.gapStart = stream.gapEnd = 0;
      stream.fresh = 0;
    }
    // A request that arrived a block late does not pull the stream back.
    stream.lastBlock = sequential ? Math.max(stream.lastBlock, last) : last;
    const max = this.maxReadahead();
    if (stream.streak < SEQUENTIAL_STREAK || max <= 0) {
      stream.aheadSize = 0;
      return;
    }
    if (stream.aheadSize === 0) {
      stream.aheadSize = Math.min(max, READAHEAD_START_BLOCKS);
      stream.grewAt = stream.lastBlock;
    } else if (stream.lastBlock - stream.grewAt >= stream.aheadSize / 2 && stream.aheadSize < max) {
      stream.aheadSize = Math.min(max, stream.aheadSize * 2);
      stream.grewAt = stream.lastBlock;
    }
    const n = stream.aheadSize;
    const index = this.components.index;
    // Ahead of the furthest block the stream has read, not of this request (which may be the late one).
    const until = Math.min(index.blockCount - 1, stream.lastBlock + n);
    let next = Math.max(stream.aheadNext, stream.lastBlock + 1);
    for (; next <= until && this.aheadInflight < n; next++) {
      const ref = index.ref(next);
      if (!ref) continue;
      const at = next;
      this.aheadInflight++;
      this.counters.readaheadIssued++;
      this.components.blocks
        .load(ref, { priority: 'background' })
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

/**
 * The bytes of [position, end) the stream had not read: those past its end,
 * and those in the gap the last jump ahead left (the late request of a pair in
 * flight). Moves the end and narrows the gap. Re-reads bring nothing.
 */
function newBytes(stream: ReadStream, position: number, end: number): number {
  let n = 0;
  const gapFrom = Math.max(position, stream.gapStart);
  const gapTo = Math.min(end, stream.gapEnd);
  if (gapTo > gapFrom) {
    n += gapTo - gapFrom;
    // Narrow the gap from the side the read covered; a read in its middle leaves only the part before it.
    if (gapFrom === stream.gapStart) stream.gapStart = gapTo;
    else stream.gapEnd = gapFrom;
  }
  if (end > stream.end) {
    if (position > stream.end) {
      stream.gapStart = stream.end;
      stream.gapEnd = position;
    }
    n += end - Math.max(position, stream.end);
    stream.end = end;
  }
  return n;
}

/** Waits for every part (so no write into the buffer outlives the read), then rejects with the first failure. */
async function allSettledOrThrow(parts: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(parts);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
