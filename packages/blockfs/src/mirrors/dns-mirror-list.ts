import { type Logger, SILENT_LOGGER } from '@thfc/store';
import { type DiscoveredMirrors, type DiscoverOptions, discoverMirrors, MIN_TTL_SECONDS } from './discover.js';

/**
 * After a failed re-resolution, try again in 5 s: soon enough that a DNS
 * server restart costs little, rare enough not to hammer a dead one. The
 * mirror list in use is kept meanwhile.
 */
export const DEFAULT_RETRY_MS = 5_000;

export interface DnsMirrorListOptions {
  readonly pool: string;
  /** HOST:PORT of the DNS server; default: the system's resolvers. */
  readonly dns?: string | undefined;
  readonly retryMs?: number | undefined;
  readonly timeoutMs?: number | undefined;
}

/**
 * A pool's mirror list that stays current: resolved at start, then again
 * whenever the answer's TTL runs out. Each new order (membership or
 * sequence changed) goes to the listeners, which hand it to the failover as
 * its new starting order; from there the failover's own measurements
 * (latency, failures) rank the mirrors. A failed or empty re-resolution
 * keeps the current list (failover copes with a dead mirror; an empty list
 * would stop all reads).
 */
export class DnsMirrorList {
  private current: readonly string[] = [];
  private readonly listeners: ((urls: readonly string[]) => void)[] = [];
  private readonly stopped = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private firstTtlMs = 0;
  private readonly discover: (pool: string, options: DiscoverOptions) => Promise<DiscoveredMirrors>;
  private readonly logger: Logger;
  /** Resolutions so far, successful or not; for stats and tests. */
  resolutions = 0;

  constructor(
    components: {
      logger?: Logger;
      discover?: (pool: string, options: DiscoverOptions) => Promise<DiscoveredMirrors>;
    },
    private readonly options: DnsMirrorListOptions,
  ) {
    this.logger = components.logger ?? SILENT_LOGGER;
    this.discover = components.discover ?? discoverMirrors;
  }

  get urls(): readonly string[] {
    return this.current;
  }

  /** Called with every new order after the first. */
  onChange(listener: (urls: readonly string[]) => void): void {
    this.listeners.push(listener);
  }

  /**
   * The first resolution; its failure is the caller's (a mount cannot start
   * without mirrors). Starts no timer: follow() does, once the caller is up.
   */
  async start(signal?: AbortSignal): Promise<readonly string[]> {
    const found = await this.resolve(signal ? AbortSignal.any([signal, this.stopped.signal]) : this.stopped.signal);
    this.current = found.urls;
    this.firstTtlMs = found.ttlSeconds * 1000;
    this.logger.info(`pool ${this.options.pool}: ${found.urls.join(' ')} (by ${found.via}, TTL ${found.ttlSeconds} s)`);
    return this.current;
  }

  /** Re-resolves each time the TTL runs out, until close() or abort. */
  follow(signal?: AbortSignal): void {
    const all = signal ? AbortSignal.any([signal, this.stopped.signal]) : this.stopped.signal;
    all.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
    this.schedule(this.firstTtlMs, all);
  }

  close(): void {
    this.stopped.abort();
    clearTimeout(this.timer);
  }

  private schedule(ms: number, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.timer = setTimeout(() => void this.refresh(signal), Math.max(ms, MIN_TTL_SECONDS * 1000));
    // The mount keeps the process alive; a pending re-resolution must not.
    this.timer.unref();
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    let next = this.options.retryMs ?? DEFAULT_RETRY_MS;
    try {
      const found = await this.resolve(signal);
      next = found.ttlSeconds * 1000;
      if (!sameOrder(found.urls, this.current)) {
        this.logger.info(
          `pool ${this.options.pool}: mirrors now ${found.urls.join(' ')} (were ${this.current.join(' ')})`,
        );
        this.current = found.urls;
        for (const l of this.listeners) l(this.current);
      }
    } catch (e) {
      if (signal.aborted) return;
      this.logger.fault(
        `pool ${this.options.pool}: re-resolving failed: ${(e as Error).message}; keeping ${this.current.length} mirror(s), retrying in ${next} ms`,
      );
    }
    this.schedule(next, signal);
  }

  private resolve(signal: AbortSignal): Promise<DiscoveredMirrors> {
    this.resolutions++;
    return this.discover(this.options.pool, { dns: this.options.dns, signal, timeoutMs: this.options.timeoutMs });
  }
}

function sameOrder(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
