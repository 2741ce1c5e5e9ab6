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
interface Inflight {
  readonly promise: Promise<Uint8Array>;
  readonly priority: 'demand' | 'background';
  /** Cancels this load; used when a demand load overtakes a background one. */
  readonly cancel: AbortController;
}

export class CachedSource implements BlockSource {
  private readonly inflight = new Map<string, Inflight>();

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
    const priority = options?.priority ?? 'demand';
    // The shared fetch must not die with the first caller's signal while others wait on it,
    // so it runs without a caller's signal; each caller, first or joining, stops waiting on its own abort.
    let entry = this.inflight.get(ref.id);
    if (!entry) entry = this.start(ref, priority);
    else if (priority === 'demand' && entry.priority === 'background') entry = this.overtake(ref, entry);
    return signal ? raceAbort(entry.promise, signal) : entry.promise;
  }

  private start(ref: BlockRef, priority: 'demand' | 'background'): Inflight {
    const cancel = new AbortController();
    const promise = this.load(ref, priority, cancel.signal);
    const entry: Inflight = { promise, priority, cancel };
    this.track(ref.id, entry);
    return entry;
  }

  /**
   * A reader now waits on a block that read-ahead or prefetch asked for, and
   * that request may sit in a mirror's background queue. Start a demand load
   * beside it; the first to succeed serves every waiter, and a winning demand
   * load cancels the background one. A reader never waits at background priority.
   */
  private overtake(ref: BlockRef, background: Inflight): Inflight {
    const cancel = new AbortController();
    const demand = this.load(ref, 'demand', cancel.signal);
    demand.then(
      () => background.cancel.abort(new Error('overtaken by a demand read')),
      () => {},
    );
    const entry: Inflight = { promise: firstSuccess(demand, background.promise), priority: 'demand', cancel };
    this.track(ref.id, entry);
    return entry;
  }

  private track(id: string, entry: Inflight): void {
    this.inflight.set(id, entry);
    entry.promise
      .finally(() => {
        if (this.inflight.get(id) === entry) this.inflight.delete(id);
      })
      .catch(() => {});
  }

  private async load(ref: BlockRef, priority: 'demand' | 'background', signal: AbortSignal): Promise<Uint8Array> {
    const { cache, remote, counters } = this.components;
    try {
      const hit = await cache.get(ref, { priority });
      if (counters) counters.hits++;
      return hit;
    } catch (e) {
      if (!(e instanceof BlockNotFoundError) && (e as Error)?.name === 'AbortError') throw e;
    }
    const stored = await remote.get(ref, { priority, signal });
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

/** Resolves with the first of two promises to succeed; rejects with the first one's error if both fail. */
function firstSuccess<T>(first: Promise<T>, second: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let failures = 0;
    let firstError: unknown;
    const fail = (which: 0 | 1) => (e: unknown) => {
      if (which === 0) firstError = e;
      if (++failures === 2) reject(firstError ?? e);
    };
    first.then(resolve, fail(0));
    second.then(resolve, fail(1));
  });
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
