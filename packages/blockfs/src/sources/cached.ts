import { BlockNotFoundError, type BlockRef, type BlockSink, type BlockSource, type SourceOptions } from '@thfc/format';

/** Counters a cached() source keeps for stats.json. */
export interface CacheCounters {
  /** Blocks served from the cache. */
  hits: number;
  /** Blocks fetched from the remote source because the cache lacked them. */
  fetched: number;
  /** Stored bytes fetched from the remote source. */
  bytesFetched: number;
  /** Called after a block lands in the cache (for the "fraction local" figure). */
  onStored?: (id: string) => void;
}

/**
 * Read-through cache: the cache first, then the remote source, whose answer is
 * put in the cache before it is returned. However many readers ask for a
 * block at once, it is fetched once: later callers join the first request.
 *
 * Only bytes the remote source returned are cached, so the remote must be
 * verified (wrap it with verified/failover) or the cache could be poisoned.
 * Passes on every error of the remote; a cache miss (BlockNotFoundError) is
 * absorbed; other cache errors are treated as misses too.
 */
export class CachedSource implements BlockSource {
  private readonly inflight = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly components: {
      cache: BlockSource & BlockSink;
      remote: BlockSource;
      counters?: CacheCounters;
    },
  ) {}

  get(ref: BlockRef, options?: SourceOptions): Promise<Uint8Array> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    // The shared fetch must not die with the first caller's signal while others wait on it,
    // so it runs without a signal of its own; each caller, first or joining, stops waiting on its own abort.
    let p = this.inflight.get(ref.id);
    if (!p) {
      p = this.load(ref, options?.priority).finally(() => this.inflight.delete(ref.id));
      this.inflight.set(ref.id, p);
    }
    return signal ? raceAbort(p, signal) : p;
  }

  private async load(ref: BlockRef, priority: SourceOptions['priority']): Promise<Uint8Array> {
    const { cache, remote, counters } = this.components;
    try {
      const hit = await cache.get(ref, { priority });
      if (counters) counters.hits++;
      return hit;
    } catch (e) {
      if (!(e instanceof BlockNotFoundError) && (e as Error)?.name === 'AbortError') throw e;
    }
    const stored = await remote.get(ref, { priority });
    if (counters) {
      counters.fetched++;
      counters.bytesFetched += stored.length;
    }
    await cache.put(ref, stored);
    counters?.onStored?.(ref.id);
    return stored;
  }

  async has(ref: BlockRef, options?: SourceOptions): Promise<boolean> {
    return (await this.components.cache.has(ref, options)) || this.components.remote.has(ref, options);
  }

  toString(): string {
    return `cached(${this.components.cache}, ${this.components.remote})`;
  }
}

export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
