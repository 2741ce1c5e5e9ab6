/**
 * The mirror registry: where mirrors announce themselves and where
 * DNS-Balance reads who is alive. Two implementations: Redis (a fleet) and a
 * static mirrors file (one machine, no Redis needed).
 */
export interface MirrorRecord {
  /** Stable id, e.g. `host:port`; the registry key. */
  readonly id: string;
  /** Base URL clients fetch from: the directory holding NAME.idx and blocks/. */
  readonly url: string;
  /** Region name matched against the networks file (`jp`, `us`, `eu`…). */
  readonly region: string;
  /** Requests the mirror accepts at once before answering 503. */
  readonly capacity: number;
  /** Requests in flight at the last heartbeat. */
  readonly load: number;
  /** `ok`, or `degraded` when the mirror's own checks fail (e.g. the store is unreadable). */
  readonly health: 'ok' | 'degraded';
  /** When the record was written (ms since the epoch). */
  readonly updated: number;
}

export interface Registry {
  /** Writes or refreshes a record; it expires after `ttlMs` unless refreshed. */
  register(record: MirrorRecord, ttlMs: number, signal?: AbortSignal): Promise<void>;
  /** Removes a record (clean shutdown). */
  unregister(id: string, signal?: AbortSignal): Promise<void>;
  /** Every live (unexpired) record. */
  list(signal?: AbortSignal): Promise<MirrorRecord[]>;
  /**
   * Changes each time the registry may have lost what it held, such as a new
   * connection to a Redis that may have restarted empty; absent where
   * nothing is ever lost (a file, memory).
   */
  readonly epoch?: number;
  close(): Promise<void>;
}
