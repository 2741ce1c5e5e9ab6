/**
 * Encoded DNS responses kept for reuse. A response is a pure function of the
 * query's bytes after its ID, the client's address and transport, and the
 * zone's state (the registry snapshot, the second the SOA serial counts);
 * so while that state stays the same (`epoch`, compared with ===), the same
 * query from the same client gets the same bytes with only its ID changed.
 * A hit costs a Map lookup and a copy, where a miss decodes the query,
 * ranks the fleet and encodes ~1 KB of records (~40 µs of CPU at 1,000
 * mirrors): resolvers ask the same few names again and again.
 *
 * The key holds the query's bytes whole, so two queries share an entry only
 * when they are byte for byte the same after the ID: nothing about the
 * query has to be parsed to look it up. A new epoch empties the cache; at
 * `maxEntries` the oldest entry goes.
 */
export class AnswerCache {
  private readonly entries = new Map<string, CachedAnswer>();
  private epoch: unknown;

  /** `maxEntries`: see DEFAULT_ANSWER_CACHE_ENTRIES. */
  constructor(private readonly maxEntries = DEFAULT_ANSWER_CACHE_ENTRIES) {}

  /** The key of a query from a client; `query` is the whole message, its ID (first 2 bytes) left out. */
  static key(query: Buffer, transport: string, address: string): string {
    return `${transport} ${address} ${query.toString('latin1', 2)}`;
  }

  /** A copy of the cached response to `key` with `id` in it, or undefined; `epoch` is the zone's state now. */
  get(key: string, id: number, epoch: unknown): { response: Buffer; truncated: boolean } | undefined {
    if (epoch !== this.epoch) {
      this.entries.clear();
      this.epoch = epoch;
      return undefined;
    }
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    const response = Buffer.allocUnsafe(hit.response.length);
    hit.response.copy(response);
    response.writeUInt16BE(id, 0);
    return { response, truncated: hit.truncated };
  }

  /** Keeps `response` (not copied: the caller must not change it) as the answer to `key` in `epoch`. */
  set(key: string, response: Buffer, truncated: boolean, epoch: unknown): void {
    if (epoch !== this.epoch) {
      this.entries.clear();
      this.epoch = epoch;
    }
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { response, truncated });
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * 4096 entries, each a query of at most MAX_CACHED_QUERY_BYTES and a reply of
 * at most MAX_CACHED_REPLY_BYTES: ~20 MB at the very most, ~4 MB for real
 * resolvers, and every resolver and question a pool of this size sees within
 * one epoch (half a second to a second) many times over.
 */
export const DEFAULT_ANSWER_CACHE_ENTRIES = 4096;

/**
 * Larger queries (EDNS padding, extra records) and replies (a big TCP answer)
 * are answered afresh, never kept: a client cannot fill the cache with 64 KiB
 * messages.
 */
export const MAX_CACHED_QUERY_BYTES = 512;
export const MAX_CACHED_REPLY_BYTES = 4096;

interface CachedAnswer {
  readonly response: Buffer;
  readonly truncated: boolean;
}
