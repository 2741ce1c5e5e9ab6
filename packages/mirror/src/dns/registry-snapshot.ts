import type { Logger } from '@thfc/store';
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_TTL_INTERVALS } from '../heartbeat.js';
import type { MirrorRecord, Registry } from '../registry/registry.js';

/**
 * Twice a second: a mirror that unregisters or expires leaves DNS answers
 * within 0.5 s of leaving the registry, for two small Redis calls a second.
 * Queries never wait on the registry: they read the last snapshot.
 */
export const DEFAULT_REGISTRY_REFRESH_MS = 500;

/**
 * After the registry failed, or was reconnected (it may have restarted
 * empty), the mirrors it held are still answered for one heartbeat TTL (6 s)
 * beside those it lists: within it every live mirror has beaten again (its
 * heartbeat retries every 2 s), and a mirror that died meanwhile leaves when
 * it ends, as its record would have expired. Without it a Redis restart
 * answered "0 live mirrors" until the heartbeats came back (about 1.6 s).
 */
export const DEFAULT_RECOVERY_GRACE_MS = DEFAULT_TTL_INTERVALS * DEFAULT_HEARTBEAT_INTERVAL_MS;

/**
 * The live mirror records as last read from the registry, refreshed on a
 * timer, so answering a DNS query is pure work over memory whatever the
 * registry's latency. When a refresh fails the last good list is kept (a
 * Redis restart must not empty the pool; clients fail over from a dead
 * mirror on their own) and the failure is logged once, with a line again
 * when it recovers; and for DEFAULT_RECOVERY_GRACE_MS after a failure or a
 * reconnection, mirrors missing from the new list are kept (see there).
 */
export class RegistrySnapshot {
  private current: readonly MirrorRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private readonly stopped = new AbortController();
  private inFlight: Promise<void> = Promise.resolve();
  private running: AbortSignal = this.stopped.signal;
  private epoch: number | undefined;
  /** The list before the registry failed or reconnected, kept beside new lists until `holdUntil`. */
  private held: readonly MirrorRecord[] = [];
  private holdUntil = 0;
  /** When the list was last read successfully (ms, the `now` clock). */
  refreshedAt = 0;

  constructor(
    private readonly components: {
      registry: Registry;
      logger?: Pick<Logger, 'info' | 'fault'>;
      now?: () => number;
    },
    private readonly options: { refreshMs?: number; recoveryGraceMs?: number } = {},
  ) {}

  /** The live records; the same array until the registry's answer changes (a record or the order). */
  get records(): readonly MirrorRecord[] {
    return this.current;
  }

  /** Reads the registry once (throwing if that fails), then keeps refreshing until stop() or abort. */
  async start(signal: AbortSignal): Promise<void> {
    const all = AbortSignal.any([signal, this.stopped.signal]);
    this.running = all;
    this.current = await this.components.registry.list(all);
    this.epoch = this.components.registry.epoch;
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
      const now = (this.components.now ?? Date.now)();
      if (this.failing || registry.epoch !== this.epoch) {
        if (now >= this.holdUntil) this.held = this.current;
        this.holdUntil = now + (this.options.recoveryGraceMs ?? DEFAULT_RECOVERY_GRACE_MS);
      }
      this.epoch = registry.epoch;
      const next = now < this.holdUntil ? withHeld(records, this.held) : records;
      // The same records in the same order stay the same array: what queries worked out from it stays valid.
      if (!sameRecords(next, this.current)) this.current = next;
      this.refreshedAt = now;
      if (this.failing) {
        const kept = this.current.length - records.length;
        logger?.info(
          `${registry} answers again: ${records.length} live mirror(s)${kept ? `; ${kept} more kept from before until their heartbeats return` : ''}`,
        );
      }
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

/** The new list, then the held mirrors it does not have (yet), each the same object as before. */
function withHeld(records: readonly MirrorRecord[], held: readonly MirrorRecord[]): readonly MirrorRecord[] {
  const listed = new Set(records.map((r) => r.id));
  const missing = held.filter((r) => !listed.has(r.id));
  return missing.length ? [...records, ...missing] : records;
}

/** The same record objects in the same order (a registry hands back an unchanged record as the same object). */
function sameRecords(a: readonly MirrorRecord[], b: readonly MirrorRecord[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
