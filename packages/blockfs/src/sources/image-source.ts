import type { Failover, FailoverMirror, MirrorSnapshot, VerifiedBlockSource } from '@thfc/store';
import type { BlockReader } from './block-reader.js';
import type { CacheCounters, CachedReader } from './cached-reader.js';
import type { CheckedReader } from './checked-reader.js';
import { HotBlocks, type ReadsNow } from './hot-blocks.js';
import type { MemoryReader } from './memory-reader.js';

/** What one image's read path did since start, for stats.json (ImageStatus). */
export interface SourceStats {
  /** Blocks fetched from the mirrors, and their stored bytes. */
  readonly blocksFetched: number;
  readonly bytesDownloaded: number;
  /** Block reads answered by the disk cache, and by the memory cache. */
  readonly cacheHits: number;
  readonly memoryHits: number;
  /** The tree, as toString() prints it. */
  readonly sources: string;
  /** Each mirror's record in starting order; none offline. */
  readonly mirrors: readonly MirrorSnapshot[];
  /** Hedged requests sent (failover.ts), and how many of them answered first. */
  readonly hedges: number;
  readonly hedgesWon: number;
}

/**
 * One image's read path as SourceBuilder.build() made it: the top of the
 * tree (memory(cached(…))) as one BlockReader, with what the daemon asks of
 * it besides blocks: its stats, and new mirrors when a pool re-resolves.
 */
export class ImageSource implements BlockReader, ReadsNow {
  /*
   * The top's own methods, bound: a read goes straight into the tree, through
   * no frame of this class (the warm path is a handful of calls; this adds none).
   */
  readonly read: BlockReader['read'];
  /** The tree's hot index (HotBlocks) answers this. */
  readonly readNow: ReadsNow['readNow'];
  readonly load: BlockReader['load'];

  constructor(
    private readonly parts: {
      readonly top: MemoryReader;
      /** The nodes under it whose state HotBlocks reads; no checked() with --nocache. */
      readonly cached: CachedReader;
      readonly checked: CheckedReader | undefined;
      readonly counters: CacheCounters;
      /** Undefined offline. */
      readonly failover: Failover<VerifiedBlockSource> | undefined;
      /** The mirrors for these bases, reusing each known one and its record (SourceBuilder's). */
      readonly mirrorsFor: (bases: readonly string[]) => readonly FailoverMirror<VerifiedBlockSource>[];
    },
  ) {
    const { top, cached, checked } = parts;
    const hot = new HotBlocks({ memory: top, cached, checked });
    this.read = top.read.bind(top);
    this.readNow = hot.readNow.bind(hot);
    this.load = top.load.bind(top);
  }

  stats(): SourceStats {
    const { counters, top, failover } = this.parts;
    return {
      blocksFetched: counters.fetched,
      bytesDownloaded: counters.bytesFetched,
      cacheHits: counters.hits,
      memoryHits: top.hits,
      sources: this.toString(),
      mirrors: failover?.mirrorSnapshots() ?? [],
      hedges: failover?.hedges ?? 0,
      hedgesWon: failover?.hedgesWon ?? 0,
    };
  }

  /** Points the image at new bases (a re-resolved pool); nothing to do offline. */
  retarget(bases: readonly string[]): void {
    this.parts.failover?.setMirrors(this.parts.mirrorsFor(bases));
  }

  toString(): string {
    return String(this.parts.top);
  }
}
