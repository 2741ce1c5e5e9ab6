import type { BlockSource } from '@thfc/format';
import { DirStore } from '@thfc/packer';
import type { Dispatcher } from 'undici';
import type { Logger } from './logger.js';
import { MirrorStats } from './mirrors/mirror-stats.js';
import { type CacheCounters, CachedSource } from './sources/cached.js';
import { CheckedSource } from './sources/checked.js';
import type { DiskCache } from './sources/disk-cache.js';
import { Failover } from './sources/failover.js';
import { HttpSource } from './sources/http-source.js';
import { MemoryCache } from './sources/memory-cache.js';
import { NullCache } from './sources/null-cache.js';
import { OfflineSource } from './sources/offline-source.js';
import { VerifiedSource } from './sources/verified.js';

/**
 * The one place that turns mount options into a tree of block sources:
 *
 *   memory( cached( checked(disk), failover( verified(http(a)), verified(http(b)) ) ) )
 *
 * Mirror connections and their reliability records are shared by every image
 * of the mount (a mirror is one server however many images it serves).
 */
export interface SourceOptions {
  readonly nocache?: boolean | undefined;
  readonly offline?: boolean | undefined;
  readonly paranoid?: boolean | undefined;
  readonly memoryBytes?: number | undefined;
  readonly connections?: number | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retries?: number | undefined;
}

export class SourceBuilder {
  private readonly mirrors = new Map<
    string,
    { source: BlockSource; stats: MirrorStats; close?: () => Promise<void> }
  >();
  private readonly checkedDisk: CheckedSource | undefined;

  constructor(
    private readonly components: { disk?: DiskCache | undefined; dispatcher?: Dispatcher | undefined; logger: Logger },
    private readonly options: SourceOptions,
  ) {
    const disk = components.disk;
    this.checkedDisk =
      disk && !options.nocache
        ? new CheckedSource({ cache: disk, logger: components.logger }, { paranoid: options.paranoid })
        : undefined;
  }

  /** One mirror (an http(s) base URL or a local store directory), created once per mount. */
  private mirror(base: string) {
    let m = this.mirrors.get(base);
    if (!m) {
      const isHttp = /^https?:\/\//.test(base);
      const stats = new MirrorStats(base);
      if (isHttp) {
        const http = new HttpSource(
          { dispatcher: this.components.dispatcher },
          { baseUrl: base, connections: this.options.connections, timeoutMs: this.options.timeoutMs },
        );
        m = { source: new VerifiedSource({ source: http }), stats, close: () => http.close() };
      } else {
        m = { source: new VerifiedSource({ source: new DirStore(base) }), stats };
      }
      this.mirrors.set(base, m);
    }
    return m;
  }

  /** The source tree for one image whose blocks live at `bases` (in preference order). */
  build(
    bases: readonly string[],
    counters: CacheCounters,
  ): { source: BlockSource; failover: Failover | undefined; memory: MemoryCache } {
    let remote: BlockSource;
    let failover: Failover | undefined;
    if (this.options.offline) remote = new OfflineSource();
    else {
      failover = new Failover(
        { mirrors: bases.map((b) => this.mirror(b)), logger: this.components.logger },
        { timeoutMs: this.options.timeoutMs, retries: this.options.retries },
      );
      remote = failover;
    }
    const cache = this.checkedDisk && this.components.disk ? this.checkedCache() : new NullCache();
    const cached = new CachedSource({ cache, remote, counters });
    const memory = new MemoryCache({ inner: cached }, { maxBytes: this.options.memoryBytes });
    return { source: memory, failover, memory };
  }

  /** Points a failover built here at new bases (a re-resolved pool), reusing each known mirror and its stats. */
  retarget(failover: Failover, bases: readonly string[]): void {
    failover.setMirrors(bases.map((b) => this.mirror(b)));
  }

  /** checked(disk) for reads, with puts going straight to the disk cache. */
  private checkedCache() {
    const checked = this.checkedDisk as CheckedSource;
    const disk = this.components.disk as DiskCache;
    return {
      get: checked.get.bind(checked),
      has: checked.has.bind(checked),
      put: disk.put.bind(disk),
      toString: () => checked.toString(),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.mirrors.values()].map((m) => m.close?.()));
  }
}
