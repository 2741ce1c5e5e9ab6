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
/**
 * One block being loaded for any number of waiters. It settles with the
 * first load to succeed, or with the first error once every load has failed.
 */
class Inflight {
  readonly promise: Promise<Uint8Array>;
  priority: 'demand' | 'background';
  private resolve!: (v: Uint8Array) => void;
  private reject!: (e: unknown) => void;
  private running = 0;
  private firstError: unknown;
  private readonly cancels: AbortController[] = [];

  constructor(priority: 'demand' | 'background') {
    this.priority = priority;
    this.promise = new Promise<Uint8Array>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
  }

  /** Adds a load; on success it serves every waiter and cancels the other loads. */
  add(load: (signal: AbortSignal) => Promise<Uint8Array>): void {
    const cancel = new AbortController();
    this.cancels.push(cancel);
    this.running++;
    load(cancel.signal).then(
      (v) => {
        this.resolve(v);
        for (const c of this.cancels) if (c !== cancel) c.abort(new Error('overtaken by another load of the block'));
      },
      (e) => {
        this.firstError ??= e;
        if (--this.running === 0) this.reject(this.firstError);
      },
    );
  }
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
    // The shared load must not die with the first caller's signal while others wait on it,
    // so it runs without a caller's signal; each caller, first or joining, stops waiting on its own abort.
    let entry = this.inflight.get(ref.id);
    if (!entry) {
      const fresh = new Inflight(priority);
      entry = fresh;
      this.inflight.set(ref.id, fresh);
      fresh.promise
        .finally(() => {
          if (this.inflight.get(ref.id) === fresh) this.inflight.delete(ref.id);
        })
        .catch(() => {});
      fresh.add((s) => this.load(ref, priority, s));
    } else if (priority === 'demand' && entry.priority === 'background') {
      // A reader now waits on a block that read-ahead or prefetch asked for, and that request may sit in a
      // mirror's background queue. Load it again at demand priority beside it: whichever succeeds first serves
      // every waiter and cancels the other. A reader never waits at background priority.
      entry.priority = 'demand';
      entry.add((s) => this.load(ref, 'demand', s));
    }
    return signal ? raceAbort(entry.promise, signal) : entry.promise;
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
