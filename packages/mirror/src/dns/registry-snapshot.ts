import type { MirrorRecord, Registry } from '../registry/registry.js';

/**
 * Twice a second: a mirror that unregisters or expires leaves DNS answers
 * within 0.5 s of leaving the registry, for two small Redis calls a second.
 * Queries never wait on the registry: they read the last snapshot.
 */
export const DEFAULT_REGISTRY_REFRESH_MS = 500;

/**
 * The live mirror records as last read from the registry, refreshed on a
 * timer, so answering a DNS query is pure work over memory whatever the
 * registry's latency. When a refresh fails the last good list is kept (a
 * Redis restart must not empty the pool; clients fail over from a dead
 * mirror on their own) and the failure is logged once, with a line again
 * when it recovers.
 */
export class RegistrySnapshot {
  private current: readonly MirrorRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private readonly stopped = new AbortController();
  private inFlight: Promise<void> = Promise.resolve();
  private running: AbortSignal = this.stopped.signal;
  /** When the list was last read successfully (ms, the `now` clock). */
  refreshedAt = 0;

  constructor(
    private readonly components: {
      registry: Registry;
      logger?: { info(m: string): void; fault(m: string): void };
      now?: () => number;
    },
    private readonly options: { refreshMs?: number } = {},
  ) {}

  get records(): readonly MirrorRecord[] {
    return this.current;
  }

  /** Reads the registry once (throwing if that fails), then keeps refreshing until stop() or abort. */
  async start(signal: AbortSignal): Promise<void> {
    const all = AbortSignal.any([signal, this.stopped.signal]);
    this.running = all;
    this.current = await this.components.registry.list(all);
    this.refreshedAt = (this.components.now ?? Date.now)();
    const every = this.options.refreshMs ?? DEFAULT_REGISTRY_REFRESH_MS;
    const tick = () => {
      if (all.aborted) return;
      this.timer = setTimeout(() => {
        this.inFlight = this.refresh(AbortSignal.any([all, AbortSignal.timeout(every * 4)])).finally(tick);
      }, every);
    };
    all.addEventListener('abort', () => clearTimeout(this.timer), { once: true });
    tick();
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    clearTimeout(this.timer);
    await this.inFlight.catch(() => {});
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const { registry, logger } = this.components;
    try {
      const records = await registry.list(signal);
      this.current = records;
      this.refreshedAt = (this.components.now ?? Date.now)();
      if (this.failing) logger?.info(`${registry} answers again: ${records.length} live mirror(s)`);
      this.failing = false;
    } catch (e) {
      if (this.running.aborted) return;
      if (!this.failing) {
        logger?.fault(`reading ${registry} failed: ${(e as Error).message}; answering from the last list`);
      }
      this.failing = true;
    }
  }
}
