import { BlockCorruptError } from '@thfc/format';
import type { WindowSnapshot } from '../sources/request-window.js';

/**
 * A failed mirror sits out 30 s before it is tried first again. Long enough
 * that a mirror restarting or shedding load is not hit by every demand read
 * (each of which would first pay a timeout), short enough that a blip costs
 * at most half a minute of a worse ranking.
 */
export const DEFAULT_COOL_OFF_MS = 30_000;

/**
 * Repeated failures double the cool-off up to 5 min: a dead mirror is
 * re-probed a handful of times an hour instead of on every read, and a
 * repaired one is back in rotation within 5 min without anyone restarting
 * the daemon.
 */
export const DEFAULT_MAX_COOL_OFF_MS = 300_000;

/**
 * Bad bytes count as four ordinary failures: in the failure-rate EWMA the
 * update is applied four times, and the cool-off is multiplied by four (the
 * first corrupt block sits a mirror out for 2 min). A timeout is often the
 * network and passes; bad bytes are a property of the mirror's store (a broken
 * sync, a failing disk, tampering) that does not heal in seconds, and each one
 * already cost a whole transfer and decode before it was caught.
 */
export const CORRUPT_WEIGHT = 4;

/**
 * Weight of the newest sample in both EWMAs. 0.2 makes the last ~10 requests
 * dominate: one slow block barely moves the latency, a mirror that got slow
 * is noticed within a few dozen reads, and one failure decays below 1 % after
 * ~14 successes.
 */
const EWMA_WEIGHT = 0.2;

export interface MirrorStatsOptions {
  readonly coolOffMs?: number;
  readonly maxCoolOffMs?: number;
}

/** One mirror's line in stats.json: plain JSON, no functions or undefined. */
export interface MirrorSnapshot {
  readonly url: string;
  readonly state: 'ok' | 'demoted';
  /** EWMA of successful fetch times, null before the first success. */
  readonly latencyMs: number | null;
  readonly requests: number;
  /** Failures of any kind (timeouts, 5xx, connection errors, short or bad bodies); 404s are not errors. */
  readonly errors: number;
  readonly notFound: number;
  readonly bytes: number;
  readonly lastError: string | null;
  /** The request window of an HTTP mirror: size, shortest round trip, goodput (null for a local store). */
  readonly window: WindowSnapshot | null;
}

/**
 * The reliability record of one mirror, written only through success(),
 * failure() and notFound(), read by the ranking (select-mirrors.ts) and by
 * stats.json. It keeps no clock: callers pass `now` (ms, any monotonic-enough
 * epoch), so tests can move time.
 */
export class MirrorStats {
  /** Every recorded outcome: successes + failures + notFoundCount. */
  requests = 0;
  /** Fetches that returned the block's bytes. The ranking trusts latency only after a few of these. */
  successes = 0;
  /** Fetches that could not answer or answered bad bytes. */
  failures = 0;
  /** Fetches answered "not here" (404/410). The mirror works but is incomplete; the ranking ignores these. */
  notFoundCount = 0;
  /** Stored bytes received in successful fetches. */
  bytes = 0;
  /** EWMA of successful fetch times in ms; undefined until the first success. */
  latencyMs: number | undefined = undefined;
  /** EWMA of "this request failed" (0 or 1, bad bytes weighted by CORRUPT_WEIGHT), from 0 (never fails) to 1. */
  failureRate = 0;
  /** Failures since the last success; each one doubles the next cool-off. */
  consecutiveFailures = 0;
  /** When the current cool-off ends (same clock as `now`); the mirror ranks last until then. 0: not demoted. */
  demotedUntil = 0;
  /** The last failure's message, for stats.json and logs. */
  lastError: string | undefined = undefined;
  /** Exchanges timed on the wire (exchange()); once there are any, latency comes from them alone. */
  wireSamples = 0;
  private window: (() => WindowSnapshot) | undefined;

  private readonly coolOffMs: number;
  private readonly maxCoolOffMs: number;

  constructor(
    readonly url: string,
    options: MirrorStatsOptions = {},
  ) {
    this.coolOffMs = options.coolOffMs ?? DEFAULT_COOL_OFF_MS;
    this.maxCoolOffMs = options.maxCoolOffMs ?? DEFAULT_MAX_COOL_OFF_MS;
  }

  /**
   * A fetch returned the block. A success also ends any cool-off early: the
   * mirror has just proved it answers, and when it was tried as a last resort
   * it may be the only one that does.
   */
  success(ms: number, bytes: number): void {
    this.requests++;
    this.successes++;
    this.bytes += bytes;
    if (this.wireSamples === 0) this.sample(ms);
    this.failureRate *= 1 - EWMA_WEIGHT;
    this.consecutiveFailures = 0;
    this.demotedUntil = 0;
  }

  /**
   * A fetch failed: the mirror could not answer, or answered bad bytes
   * (BlockCorruptError, weighted by CORRUPT_WEIGHT). Demotes the mirror until
   * `now` + cool-off, the cool-off doubling with each consecutive failure.
   */
  failure(error: Error, now: number): void {
    const weight = error instanceof BlockCorruptError ? CORRUPT_WEIGHT : 1;
    this.requests++;
    this.failures++;
    this.consecutiveFailures++;
    this.failureRate = 1 - (1 - this.failureRate) * (1 - EWMA_WEIGHT) ** weight;
    this.lastError = error.message;
    // 2 ** 30 already exceeds any sane cap; clamping the exponent keeps the product finite.
    const doublings = Math.min(this.consecutiveFailures - 1, 30);
    const coolOff = Math.min(this.maxCoolOffMs, this.coolOffMs * 2 ** doublings * weight);
    this.demotedUntil = Math.max(this.demotedUntil, now + coolOff);
  }

  /**
   * One exchange timed on the wire, from its slot in the mirror's request
   * window to the end of its body (HttpSource's onResult). A failover's own
   * timing also holds the time a request queued behind this client's other
   * requests, which grows with read-ahead and says nothing about the mirror;
   * so once a mirror reports wire times, its latency is made of them alone.
   */
  exchange(ok: boolean, ms: number): void {
    if (!ok) return;
    this.wireSamples++;
    this.sample(ms);
  }

  /** Shows this mirror's request window in snapshots. */
  attachWindow(window: () => WindowSnapshot): void {
    this.window = window;
  }

  private sample(ms: number): void {
    this.latencyMs = this.latencyMs === undefined ? ms : this.latencyMs + EWMA_WEIGHT * (ms - this.latencyMs);
  }

  /** The mirror answered that it does not hold the block. Counted, but neither a failure nor a latency sample. */
  notFound(): void {
    this.requests++;
    this.notFoundCount++;
  }

  isDemoted(now: number): boolean {
    return this.demotedUntil > now;
  }

  snapshot(now: number): MirrorSnapshot {
    return {
      url: this.url,
      state: this.isDemoted(now) ? 'demoted' : 'ok',
      latencyMs: this.latencyMs === undefined ? null : Math.round(this.latencyMs * 10) / 10,
      requests: this.requests,
      errors: this.failures,
      notFound: this.notFoundCount,
      bytes: this.bytes,
      lastError: this.lastError ?? null,
      window: this.window?.() ?? null,
    };
  }
}
