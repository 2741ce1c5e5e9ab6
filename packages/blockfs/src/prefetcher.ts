import type { BlockRef } from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '@thfc/store';
import { abortableSleep } from './abortable-sleep.js';
import type { BlockReader } from './sources/block-reader.js';

export interface PrefetchOptions {
  /**
   * Fetches asked for at once. They go out at background priority, so each
   * mirror's request window decides how many are on the wire and serves a
   * guest's reads first; mount.ts asks for enough to fill the widest window.
   */
  readonly parallel?: number | undefined;
  /** Bytes per second across all prefetch fetches; undefined = as fast as the mirrors allow. */
  readonly bytesPerSecond?: number | undefined;
}

export const DEFAULT_PREFETCH_PARALLEL = 4;

export interface PrefetchStatus {
  readonly blocks: number;
  readonly fetched: number;
  /** Profile blocks a reader asked for after (or while) prefetch fetched them. */
  readonly hit: number;
  /** Profile blocks prefetched that no reader has asked for (yet). */
  readonly wasted: number;
  /** Profile blocks not fetched yet. */
  readonly pending: number;
  readonly failed: number;
  readonly done: boolean;
}

/**
 * Fetches a list of blocks at background priority, in order, with bounded
 * parallelism and an optional bandwidth cap: boot-profile replay, and the
 * `--fill` pass over the rest of the image. A read a guest is waiting on never
 * queues behind it: requests go out as `background`, which the HTTP source
 * serves after every waiting demand request (and a block a reader starts
 * waiting on is raised to demand). Each block ends up local and verified.
 */
export class Prefetcher {
  private readonly state = new Map<string, 'pending' | 'inflight' | 'done' | 'failed'>();
  private readonly used = new Set<string>();
  private hits = 0;
  private finished = false;

  constructor(
    private readonly components: { blocks: BlockReader; logger?: Logger; now?: () => number },
    private readonly refs: readonly BlockRef[],
    private readonly options: PrefetchOptions = {},
  ) {
    for (const r of refs) this.state.set(r.id, 'pending');
  }

  /** Attach to the image reader: counts hits. */
  readonly observe = (_i: number, ref: BlockRef): void => {
    const s = this.state.get(ref.id);
    if (s === undefined || this.used.has(ref.id)) return;
    this.used.add(ref.id);
    if (s === 'done' || s === 'inflight') this.hits++;
  };

  async run(signal: AbortSignal): Promise<void> {
    const parallel = Math.max(1, this.options.parallel ?? DEFAULT_PREFETCH_PARALLEL);
    const now = this.components.now ?? (() => performance.now());
    const rate = this.options.bytesPerSecond;
    const start = now();
    let sent = 0;
    let next = 0;
    const worker = async () => {
      while (next < this.refs.length && !signal.aborted) {
        const ref = this.refs[next++] as BlockRef;
        if (this.used.has(ref.id)) {
          this.state.set(ref.id, 'done'); // a reader already fetched it: nothing to gain
          continue;
        }
        if (rate) {
          // Token bucket with no burst: the n-th byte may leave at start + n / rate.
          const due = start + (sent / rate) * 1000;
          sent += ref.storedSize;
          const wait = due - now();
          if (wait > 0) await abortableSleep(wait, signal);
        }
        this.state.set(ref.id, 'inflight');
        try {
          await this.components.blocks.load(ref, { signal, priority: 'background' });
          this.state.set(ref.id, 'done');
        } catch (e) {
          if (signal.aborted) return;
          this.state.set(ref.id, 'failed');
          (this.components.logger ?? SILENT_LOGGER).verbose(`prefetch of ${ref.id} gave up: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    this.finished = !signal.aborted;
  }

  status(): PrefetchStatus {
    let fetched = 0;
    let pending = 0;
    let failed = 0;
    let wasted = 0;
    for (const [id, s] of this.state) {
      if (s === 'done') {
        fetched++;
        if (!this.used.has(id)) wasted++;
      } else if (s === 'failed') failed++;
      else pending++;
    }
    return { blocks: this.refs.length, fetched, hit: this.hits, wasted, pending, failed, done: this.finished };
  }
}
