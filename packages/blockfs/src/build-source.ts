import {
  type BlockDecoder,
  DEFAULT_ATTEMPT_TIMEOUT_MS,
  DirStore,
  defaultRounds,
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
import type { DiskCache } from './io/disk-cache.js';
import { type FileVerifier, InlineVerifier } from './io/file-verifier.js';
import { WriteBehind } from './io/write-behind.js';
import type { LocalBlocks } from './sources/block-reader.js';
import { type CacheCounters, CachedReader } from './sources/cached-reader.js';
import { type CheckCounts, CheckedReader } from './sources/checked-reader.js';
import { ImageSource } from './sources/image-source.js';
import { MemoryReader } from './sources/memory-reader.js';
import { NoCacheReader } from './sources/no-cache-reader.js';
import { OfflineSource } from './sources/offline-source.js';

/**
 * Beyond the slowest fetch failover can make (every attempt of every round
 * timing out), a read waits this much more before it gives EIO: the time a
 * block may queue behind this mount's other requests.
 */
const READ_TIMEOUT_SLACK_MS = 5_000;

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
 * The builder owns what it is given: it opens the disk cache (open()) and
 * closes it, the workers and the mirrors (close()), and it answers how long a
 * read may take with its timeouts (readTimeoutMs()).
 */
export interface ReadPathOptions {
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
  private readonly local: { checked: CheckedReader; writer: WriteBehind; sealer: CacheSealer } | undefined;
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
    private readonly options: ReadPathOptions,
  ) {
    const { disk, logger, workers } = components;
    this.decoder = workers ?? new InlineDecoder();
    this.verifier = workers ?? new InlineVerifier();
    if (disk && !options.nocache) {
      // Written blocks go back to the decoder's pool (CheckedReader.keep says why no one else holds them).
      const decoder = this.decoder;
      const writer = new WriteBehind({ sink: disk, logger, release: (data) => decoder.recycle?.(data) });
      const checked = new CheckedReader(
        { disk, writer, verifier: this.verifier, logger },
        { paranoid: options.paranoid, offline: options.offline },
      );
      this.local = { checked, writer, sealer: new CacheSealer({ logger }, { dir: disk.dir }) };
    }
  }

  /**
   * Before the mount serves: opens the disk cache, registers this daemon with
   * it and trusts the entries its seal vouches for (CacheSealer.open); close()
   * seals it again. If it rejects (only an abort of `signal` makes it: an
   * unreadable cache is an empty one, and the sealer's other failures are
   * logged), everything the builder owns is released (the workers' threads,
   * open files, mirrors, the registration) and the seal is left as it was:
   * this daemon never got the cache's trust, and sealing now could write over
   * what another daemon sealed meanwhile with entries no one checked. The
   * builder is then unusable; the rejection is the abort's, whatever the
   * release runs into.
   */
  async open(signal?: AbortSignal): Promise<void> {
    try {
      await this.components.disk?.open(signal);
      if (!this.local) return;
      this.local.checked.adopt(await this.local.sealer.open(signal));
    } catch (e) {
      try {
        await this.release();
      } catch {
        // The abort is what the caller is told; the rest is let go as far as it goes.
      } finally {
        await this.local?.sealer.leave().catch(() => {});
      }
      throw e;
    }
  }

  /**
   * How long one block read may take over `mirrors` mirrors before it is an
   * EIO: every attempt of failover's rounds timing out, plus one, plus slack.
   */
  readTimeoutMs(mirrors: number): number {
    const n = Math.max(1, mirrors);
    const rounds = this.options.retries ?? defaultRounds(n);
    return (this.options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS) * (rounds * n + 1) + READ_TIMEOUT_SLACK_MS;
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

  /**
   * The read path for one image whose blocks live at `bases` (in preference
   * order). `onStored` is told of each fetched block once it is in the disk cache.
   */
  build(bases: readonly string[], observe: { onStored?: ((id: string) => void) | undefined } = {}): ImageSource {
    const mirrorsFor = (list: readonly string[]) => list.map((b) => this.mirror(b));
    let remote: VerifiedBlockSource;
    let failover: Failover<VerifiedBlockSource> | undefined;
    if (this.options.offline) remote = new OfflineSource();
    else {
      failover = new Failover(
        { mirrors: mirrorsFor(bases), logger: this.components.logger },
        { timeoutMs: this.options.timeoutMs, retries: this.options.retries },
      );
      remote = failover;
    }
    const counters: CacheCounters = { hits: 0, fetched: 0, bytesFetched: 0, onStored: observe.onStored };
    const local: LocalBlocks = this.local?.checked ?? new NoCacheReader();
    const cached = new CachedReader({ local, remote, counters });
    const top = new MemoryReader({ inner: cached }, { maxBytes: this.options.memoryBytes });
    return new ImageSource({ top, cached, checked: this.local?.checked, counters, failover, mirrorsFor });
  }

  /**
   * Finishes the writes still behind (so what was fetched stays cached),
   * closes mirrors and files, then seals the disk cache with every entry
   * verified (a clean stop: see CacheSealer).
   */
  async close(): Promise<void> {
    await this.local?.writer.idle();
    await this.release();
    if (this.local) {
      const { checked, sealer } = this.local;
      await sealer.seal(checked.trusted()).then(
        (n) => this.components.logger.info(`cache ${this.components.disk?.dir}: sealed ${n} entries`),
        (e: unknown) =>
          this.components.logger.fault(`cache ${this.components.disk?.dir}: not sealed: ${(e as Error).message}`),
      );
    }
  }

  /** Closes the workers, the disk cache's files and the mirrors: what close() does before it seals. */
  private async release(): Promise<void> {
    await this.components.workers?.close();
    this.components.disk?.close();
    await Promise.all([...this.mirrors.values()].map((m) => m.close?.()));
  }
}
