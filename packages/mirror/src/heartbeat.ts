import { InvalidArgumentError } from '@thfc/format';
import type { Logger } from '@thfc/store';
import type { MirrorRecord, Registry } from './registry/registry.js';

/**
 * A heartbeat every 2 s. DNS-Balance reads the registry every 0.5 s and
 * answers with a 5 s TTL, so load reports 2 s old are as fresh as anything a
 * client acts on; one small SET per mirror every 2 s is nothing to Redis even
 * for hundreds of mirrors.
 */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;

/**
 * The record lives 3 intervals (6 s). Two heartbeats in a row may be lost (a
 * Redis failover, a GC pause, a slow health check) before a live mirror
 * flickers out of DNS; a crashed mirror still leaves within 6 s, about one
 * client DNS TTL, after which clients re-resolve and stop asking it.
 */
export const DEFAULT_TTL_INTERVALS = 3;

/** unregister() on stop gets this long: a clean shutdown must not hang on a dead Redis. */
const UNREGISTER_TIMEOUT_MS = 2_000;

export interface HeartbeatComponents {
  readonly registry: Registry;
  readonly logger?: Pick<Logger, 'info' | 'fault'>;
  /** Clock for the record's `updated`, in ms since the epoch. */
  readonly now?: () => number;
}

export interface HeartbeatOptions {
  /** The mirror's current record (load and health are read at every beat). */
  readonly record: () => MirrorRecord;
  readonly intervalMs?: number;
  /** Defaults to DEFAULT_TTL_INTERVALS × intervalMs. */
  readonly ttlMs?: number;
}

/** The beat interval and the record's TTL, defaulted and checked: the TTL must outlast a beat. */
function heartbeatTimes(options: HeartbeatOptions): { intervalMs: number; ttlMs: number } {
  const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_INTERVALS * intervalMs;
  if (!Number.isInteger(intervalMs) || intervalMs < 1) {
    throw new InvalidArgumentError(`intervalMs must be a whole number > 0, not ${intervalMs}`);
  }
  if (!Number.isInteger(ttlMs) || ttlMs <= intervalMs) {
    throw new InvalidArgumentError(`ttlMs must be a whole number above intervalMs (${intervalMs}), not ${ttlMs}`);
  }
  return { intervalMs, ttlMs };
}

/**
 * Registers the mirror now and refreshes its record every interval with
 * current load and health (`updated` stamped with `now`). Resolves after the
 * first attempt, registered or not: a registry that is down is logged, and
 * retried at every beat, never fatal to the mirror serving.
 *
 * - `stop()`: stops refreshing, waits for a beat in flight, then removes the
 *   record so the mirror leaves DNS at the next refresh (clean shutdown).
 *   Safe to call more than once, and after abort.
 * - aborting `signal`: stops refreshing at once and leaves the record to
 *   expire within ttlMs, as a crash would.
 */
export async function startHeartbeat(
  components: HeartbeatComponents,
  options: HeartbeatOptions,
  signal: AbortSignal,
): Promise<{ stop(): Promise<void> }> {
  const { registry } = components;
  const now = components.now ?? Date.now;
  const { intervalMs, ttlMs } = heartbeatTimes(options);
  signal.throwIfAborted();

  const stopped = new AbortController();
  const loopSignal = AbortSignal.any([signal, stopped.signal]);
  let lastId: string | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const reporter = new BeatReporter(components, intervalMs);

  const beat = async () => {
    let record: MirrorRecord;
    try {
      record = { ...options.record(), updated: now() };
      lastId = record.id;
      // A beat may not outlive its interval: the next one carries fresher numbers anyway.
      await registry.register(record, ttlMs, AbortSignal.any([loopSignal, AbortSignal.timeout(intervalMs)]));
    } catch (e) {
      if (!loopSignal.aborted) reporter.failed(e as Error);
      return;
    }
    reporter.registered(record);
  };

  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (loopSignal.aborted) return;
    timer = setTimeout(() => {
      inFlight = beat().finally(schedule);
    }, intervalMs);
    // The heartbeat never keeps a process alive on its own: the server it reports on does.
    timer.unref();
  };
  loopSignal.addEventListener('abort', () => clearTimeout(timer), { once: true });

  inFlight = beat();
  await inFlight;
  schedule();

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        stopped.abort();
        clearTimeout(timer);
        await inFlight.catch(() => {});
        if (lastId !== undefined) await leave(components, lastId, ttlMs);
      })();
      return stopping;
    },
  };
}

/** Says what changed at a beat, once: the first registration, the first failure of a run, and the recovery. */
class BeatReporter {
  private failing = false;
  private registeredOnce = false;

  constructor(
    private readonly components: HeartbeatComponents,
    private readonly intervalMs: number,
  ) {}

  failed(e: Error): void {
    const { registry, logger } = this.components;
    if (!this.failing)
      logger?.fault(`heartbeat to ${registry} failed: ${e.message}; retrying every ${this.intervalMs} ms`);
    this.failing = true;
  }

  registered(record: MirrorRecord): void {
    const { registry, logger } = this.components;
    if (this.failing) logger?.info(`heartbeat to ${registry} works again: ${record.id} registered`);
    else if (!this.registeredOnce)
      logger?.info(`registered ${record.id} (${record.url}, region ${record.region}) in ${registry}`);
    this.failing = false;
    this.registeredOnce = true;
  }
}

/** Removes the mirror's record (bounded: a clean shutdown must not hang on a dead registry), or says when it expires. */
async function leave(components: HeartbeatComponents, id: string, ttlMs: number): Promise<void> {
  const { registry, logger } = components;
  try {
    await registry.unregister(id, AbortSignal.timeout(UNREGISTER_TIMEOUT_MS));
    logger?.info(`unregistered ${id} from ${registry}`);
  } catch (e) {
    logger?.fault(
      `could not unregister ${id} from ${registry}: ${(e as Error).message}; it expires within ${ttlMs} ms`,
    );
  }
}
