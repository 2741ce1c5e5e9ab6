import {
  type BlockDecoder,
  DirStore,
  Failover,
  HttpSource,
  InlineDecoder,
  type Logger,
  MirrorStats,
  type VerifiedBlockSource,
  VerifiedSource,
} from '@thfc/store';
import type { Dispatcher } from 'undici';
import { CacheSealer } from './cache/cache-sealer.js';
import type { BlockReader, LocalBlocks } from './sources/block-reader.js';
import { type CacheCounters, CachedSource } from './sources/cached.js';
import { type CheckCounts, CheckedSource } from './sources/checked.js';
import type { DiskCache } from './sources/disk-cache.js';
import { type FileVerifier, InlineVerifier } from './sources/file-verifier.js';
import { MemoryCache } from './sources/memory-cache.js';
import { NullCache } from './sources/null-cache.js';
import { OfflineSource } from './sources/offline-source.js';
import { WriteBehind } from './sources/write-behind.js';

/**
 * The one place that turns mount options into a tree of block sources:
 *
 *   memory( cached( checked(behind(disk)), failover( verified(http(a)), verified(http(b)) ) ) )
 *
 * Above cached() blocks are decoded and read a slice at a time (BlockReader);
 * below it they are stored bytes (BlockSource), verified per mirror. The disk
 * cache holds decoded blocks. The disk cache, its write-behind and checks, and
 * the mirror connections with their reliability records are shared by every
 * image of the mount (a mirror is one server however many images it serves).
 */
export interface SourceOptions {
  readonly nocache?: boolean | undefined;
  readonly offline?: boolean | undefined;
  readonly paranoid?: boolean | undefined;
  readonly memoryBytes?: number | undefined;
  /** Pins every mirror's request window (`--connections`); adaptive up to maxConnections otherwise. */
  readonly connections?: number | undefined;
  readonly maxConnections?: number | undefined;
  readonly lowSpeedBps?: number | undefined;
  readonly lowSpeedTimeMs?: number | undefined;
  /** Offer HTTP/2 to https mirrors. */
  readonly http2?: boolean | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
}

/**
 * Decodes and verifies fetched blocks, and checks cached block files on their
 * first use: BlockWorkers does both on its threads.
 */
export type BlockCheckers = BlockDecoder & FileVerifier;

export class SourceBuilder {
  private readonly mirrors = new Map<
    string,
    { source: VerifiedBlockSource; stats: MirrorStats; timesItself?: boolean; close?: () => Promise<void> }
  >();
  private readonly local: { checked: CheckedSource; writer: WriteBehind; sealer: CacheSealer } | undefined;
  private readonly decoder: BlockDecoder;
  private readonly verifier: FileVerifier;

  constructor(
    private readonly components: {
      disk?: DiskCache | undefined;
      dispatcher?: Dispatcher | undefined;
      logger: Logger;
      /** Decoding and file checks; both inline (this thread) if not given. Closed once by close(). */
      workers?: BlockCheckers | undefined;
    },
    private readonly options: SourceOptions,
  ) {
    const { disk, logger, workers } = components;
    this.decoder = workers ?? new InlineDecoder();
    this.verifier = workers ?? new InlineVerifier();
    if (disk && !options.nocache) {
      // Written blocks go back to the decoder's pool (CheckedSource.keep says why no one else holds them).
      const decoder = this.decoder;
      const writer = new WriteBehind({ sink: disk, logger, release: (data) => decoder.recycle?.(data) });
      const checked = new CheckedSource(
        { disk, writer, verifier: this.verifier, logger },
        { paranoid: options.paranoid, offline: options.offline },
      );
      this.local = { checked, writer, sealer: new CacheSealer({ logger }, { dir: disk.dir }) };
    }
  }

  /**
   * Before the mount serves: registers this daemon with the disk cache and
   * trusts the entries its seal vouches for (CacheSealer.open); close()
   * seals it again.
   */
  async openCache(signal?: AbortSignal): Promise<void> {
    if (!this.local) return;
    this.local.checked.adopt(await this.local.sealer.open(signal));
  }

  /** What the disk cache's checks did since start (stats.json); undefined without a disk cache. */
  get checks(): CheckCounts | undefined {
    return this.local?.checked.counts;
  }

  /** One mirror (an http(s) base URL or a local store directory), created once per mount. */
  private mirror(base: string) {
    let m = this.mirrors.get(base);
    if (!m) {
      const isHttp = /^https?:\/\//.test(base);
      const stats = new MirrorStats(base);
      if (isHttp) {
        const http = new HttpSource(
          { dispatcher: this.components.dispatcher, onResult: (r) => stats.exchange(r.ok, r.ms) },
          {
            baseUrl: base,
            connections: this.options.connections,
            maxConnections: this.options.maxConnections,
            timeoutMs: this.options.timeoutMs,
            lowSpeedBps: this.options.lowSpeedBps,
            lowSpeedTimeMs: this.options.lowSpeedTimeMs,
            http2: this.options.http2,
          },
        );
        stats.attachWindow(() => http.windowSnapshot());
        m = {
          source: new VerifiedSource({ source: http, decoder: this.decoder }),
          stats,
          timesItself: true,
          close: () => http.close(),
        };
      } else {
        m = { source: new VerifiedSource({ source: new DirStore(base), decoder: this.decoder }), stats };
      }
      this.mirrors.set(base, m);
    }
    return m;
  }

  /** The read path for one image whose blocks live at `bases` (in preference order). */
  build(
    bases: readonly string[],
    counters: CacheCounters,
  ): { blocks: BlockReader; failover: Failover<VerifiedBlockSource> | undefined; memory: MemoryCache } {
    let remote: VerifiedBlockSource;
    let failover: Failover<VerifiedBlockSource> | undefined;
    if (this.options.offline) remote = new OfflineSource();
    else {
      failover = new Failover(
        { mirrors: bases.map((b) => this.mirror(b)), logger: this.components.logger },
        { timeoutMs: this.options.timeoutMs, retries: this.options.retries },
      );
      remote = failover;
    }
    const local: LocalBlocks = this.local?.checked ?? new NullCache();
    const cached = new CachedSource({ local, remote, counters });
    const memory = new MemoryCache({ inner: cached }, { maxBytes: this.options.memoryBytes });
    return { blocks: memory, failover, memory };
  }

  /** Points a failover built here at new bases (a re-resolved pool), reusing each known mirror and its stats. */
  retarget(failover: Failover<VerifiedBlockSource>, bases: readonly string[]): void {
    failover.setMirrors(bases.map((b) => this.mirror(b)));
  }

  /**
   * Finishes the writes still behind (so what was fetched stays cached),
   * closes mirrors and files, then seals the disk cache with every entry
   * verified (a clean stop: see CacheSealer).
   */
  async close(): Promise<void> {
    await this.local?.writer.idle();
    await this.components.workers?.close();
    this.components.disk?.close();
    await Promise.all([...this.mirrors.values()].map((m) => m.close?.()));
    if (this.local) {
      const { checked, sealer } = this.local;
      await sealer.seal(checked.trusted()).then(
        (n) => this.components.logger.info(`cache ${this.components.disk?.dir}: sealed ${n} entries`),
        (e: unknown) =>
          this.components.logger.fault(`cache ${this.components.disk?.dir}: not sealed: ${(e as Error).message}`),
      );
    }
  }
}
