import { InvalidArgumentError } from '@thfc/format';
import { validateMirrorRecord } from './mirror-record.js';
import type { MirrorRecord, Registry } from './registry.js';

/**
 * A registry in one process's memory: a Map of records with their expiry
 * times. For tests, for one process that both serves and answers DNS, and as
 * the heartbeat overlay of the file registry. Expiry is judged at list()
 * time against `now`, so tests can move the clock.
 */
export class MemoryRegistry implements Registry {
  private readonly records = new Map<string, { record: MirrorRecord; expires: number }>();
  private readonly now: () => number;
  private closed = false;

  constructor(components: { now?: () => number } = {}) {
    this.now = components.now ?? Date.now;
  }

  async register(record: MirrorRecord, ttlMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.checkOpen();
    if (!(ttlMs > 0)) throw new InvalidArgumentError(`ttlMs must be > 0, not ${ttlMs}`);
    const valid = validateMirrorRecord(record);
    this.records.set(valid.id, { record: valid, expires: this.now() + ttlMs });
  }

  async unregister(id: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.checkOpen();
    this.records.delete(id);
  }

  async list(signal?: AbortSignal): Promise<MirrorRecord[]> {
    signal?.throwIfAborted();
    this.checkOpen();
    const now = this.now();
    const live: MirrorRecord[] = [];
    for (const [id, { record, expires }] of this.records) {
      if (expires > now) live.push(record);
      else this.records.delete(id);
    }
    return live;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.records.clear();
  }

  toString(): string {
    return 'memory-registry';
  }

  private checkOpen(): void {
    if (this.closed) throw new InvalidArgumentError('the registry is closed');
  }
}
