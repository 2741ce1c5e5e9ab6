import { BlockNotFoundError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import { currentPriority, type FetchOptions, type Urgency, type VerifiedRemote } from '@thfc/store';
import { SingleFlight } from '../io/single-flight.js';
import type { BlockReader, LocalBlocks } from './block-reader.js';

/** Counters a cached() source keeps for stats.json. */
export interface CacheCounters {
  /** Block reads answered by the local cache (a FUSE request within one block is one read). */
  hits: number;
  /** Blocks fetched from the remote source because the local cache lacked them. */
  fetched: number;
  /** Stored bytes fetched from the remote source. */
  bytesFetched: number;
  /** Called after a fetched block lands in the local cache (for the "fraction local" figure). */
  onStored?: ((id: string) => void) | undefined;
}

/**
 * Read-through cache over the read path: the local cache first, then the
 * remote source. A fetched block arrives verified and decoded (VerifiedRemote:
 * verified() below decoded it once to check it), is served from memory, and is
 * handed to the local cache to write behind.
 *
 * However many readers ask for a block at once, it is fetched once
 * (SingleFlight): later callers join the first request. A reader that joins a
 * fetch started at background priority (read-ahead, prefetch, fill) raises its
 * Urgency, so a mirror queue still holding the request moves it up; nothing is
 * downloaded twice. The shared fetch runs without any caller's signal; each
 * caller stops waiting on its own abort.
 *
 * Only bytes the remote returned and that verified are kept, so the local
 * cache cannot be poisoned. Passes on every error of the remote; a local miss
 * (BlockNotFoundError) or a local cache that cannot answer
 * (MirrorUnavailableError) becomes a fetch.
 */
export class CachedReader implements BlockReader {
  private readonly inflight = new SingleFlight<Uint8Array>();
  /** @internal The blocks being fetched, which HotBlocks does not serve locally (read() joins the fetch). */
  readonly fetching: ReadonlyMap<string, unknown> = this.inflight.running;

  constructor(
    private readonly components: {
      local: LocalBlocks;
      remote: VerifiedRemote;
      counters?: CacheCounters | undefined;
    },
  ) {}

  async read(
    ref: BlockRef,
    dst: Uint8Array,
    at: number,
    from: number,
    length: number,
    options?: FetchOptions,
  ): Promise<Uint8Array | undefined> {
    const { local, counters } = this.components;
    if (!this.inflight.running.has(ref.id) && local.holds(ref)) {
      try {
        const whole = await local.read(ref, dst, at, from, length, options);
        if (counters) counters.hits++;
        return whole;
      } catch (e) {
        if (!(e instanceof BlockNotFoundError || e instanceof MirrorUnavailableError)) throw e;
        // Not there after all (evicted, deleted by another daemon, corrupt and dropped): fetch it.
      }
    }
    const data = await this.fetch(ref, options);
    dst.set(data.subarray(from, from + length), at);
    return this.handUp(ref, data);
  }

  /**
   * The fetched block for a cache above to keep, unless the local cache has it
   * in hand (its write-behind serves it until it is on disk, then a pread
   * does): one copy of each block in RAM, and its buffer freed once written.
   */
  private handUp(ref: BlockRef, data: Uint8Array): Uint8Array | undefined {
    return this.components.local.holds(ref) ? undefined : data;
  }

  /**
   * Local and verified, for background work: a fetched block is waited on
   * until the local cache has written it, so read-ahead, prefetch and fill
   * advance no faster than the disk takes their blocks.
   */
  async load(ref: BlockRef, options?: FetchOptions): Promise<Uint8Array | undefined> {
    const { local } = this.components;
    if (!this.inflight.running.has(ref.id) && local.holds(ref)) {
      try {
        return await local.load(ref, options);
      } catch (e) {
        if (!(e instanceof BlockNotFoundError || e instanceof MirrorUnavailableError)) throw e;
      }
    }
    const data = await this.fetch(ref, options);
    if (!local.holds(ref)) return data;
    await local.load(ref, options).catch(() => {});
    return undefined;
  }

  /** The block from the remote, joining a fetch in flight (and raising it for a reader). */
  private fetch(ref: BlockRef, options: FetchOptions | undefined): Promise<Uint8Array> {
    const priority = currentPriority(options);
    return this.inflight.run(ref.id, priority, (urgency) => this.download(ref, urgency), options?.signal);
  }

  private async download(ref: BlockRef, urgency: Urgency): Promise<Uint8Array> {
    const { local, remote, counters } = this.components;
    const options: FetchOptions = { priority: urgency.priority, urgency };
    const { stored, data } = await remote.getVerified(ref, options);
    if (counters) {
      counters.fetched++;
      counters.bytesFetched += stored.length;
    }
    void local.keep(ref, data).then((kept) => {
      if (kept) counters?.onStored?.(ref.id);
    });
    return data;
  }

  /** @internal The counters given, which HotBlocks counts its local hits in. */
  get counters(): CacheCounters | undefined {
    return this.components.counters;
  }

  toString(): string {
    return `cached(${this.components.local}, ${this.components.remote})`;
  }
}
