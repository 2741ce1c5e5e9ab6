import { setTimeout as sleep } from 'node:timers/promises';
import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSource,
  InvalidArgumentError,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { type Logger, SILENT_LOGGER } from '../logger.js';
import type { MirrorSnapshot, MirrorStats } from '../mirrors/mirror-stats.js';
import { selectMirrors } from '../mirrors/select-mirrors.js';
import type { FetchOptions } from './urgency.js';

/**
 * Per-attempt deadline. A stored block averages ~88 KiB and is at most a
 * little over the block size (256 KiB by default): 10 s still moves one at
 * ~200 kbit/s and outlasts two TCP SYN retransmits (1 s, 3 s), while a dead
 * mirror costs a waiting reader at most 10 s before the next one is asked.
 */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;

/**
 * Rounds over all mirrors. Two: the second round rides out a blip (a mirror
 * restarting, a dropped keep-alive connection) and a dead fleet still fails
 * in bounded time.
 */
export const DEFAULT_ROUNDS = 2;

/**
 * Attempts every block gets by default, however few mirrors: with one mirror
 * two rounds are only two attempts, and a link that fails 2 % of requests
 * (the WAN bench's fault runs: 1 % errors + 1 % resets) then fails a block
 * both times once in 2,500 fetches, an EIO in a few per cent of boots that
 * fetch ~150 blocks (seen in the bench). Three attempts make it one in
 * 125,000 fetches.
 */
export const MIN_ATTEMPTS = 3;

/** Default rounds for `mirrors` mirrors: DEFAULT_ROUNDS, or more so that a block gets MIN_ATTEMPTS. */
export function defaultRounds(mirrors: number): number {
  return Math.max(DEFAULT_ROUNDS, Math.ceil(MIN_ATTEMPTS / Math.max(1, mirrors)));
}

/**
 * Pause before round 2, doubling per round up to 1 s: long enough for a
 * restarting server to accept again, short next to a reader's patience, and
 * the cap keeps many rounds from turning into minutes.
 */
const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 1_000;

export interface FailoverMirror {
  /** Typically verified(http(...)), so bad bytes count against the mirror that sent them. */
  readonly source: BlockSource;
  readonly stats: MirrorStats;
}

export interface FailoverComponents {
  /** In their starting order: the command line's, or DNS's. */
  readonly mirrors: readonly FailoverMirror[];
  readonly logger?: Logger;
  /** Clock for latency samples and cool-offs, in ms. */
  readonly now?: () => number;
}

export interface FailoverOptions {
  readonly timeoutMs?: number;
  /** Rounds over all mirrors (1 = try each mirror once); defaultRounds(mirrors) if not given. */
  readonly retries?: number;
}

/**
 * Asks mirrors one at a time, best-ranked first (select-mirrors.ts), until one
 * returns the block, recording every outcome in the mirror's stats and
 * logging every fault as one line.
 *
 * Errors:
 * - BlockNotFoundError from a mirror: recorded, the next mirror is asked, and
 *   that mirror is not asked again for this block (a 404 is an answer, not a
 *   blip). Passed on only when every mirror answered not-found.
 * - BlockCorruptError, MirrorUnavailableError, or the attempt's deadline:
 *   absorbed: the mirror is demoted and the next one asked. When all rounds
 *   fail, one MirrorUnavailableError names each mirror's last failure.
 * - The caller's abort rejects at once with the signal's reason.
 * - Anything else (a bug, a bad block name) is passed on untouched.
 *
 * Time bound for one get: at most timeoutMs × retries × mirrors, plus the
 * pauses between rounds (≤ (retries − 1) × 1 s). With the defaults and two
 * mirrors: 10 s × 2 × 2 + 0.1 s = 40.1 s; with one: 10 s × 3 + 0.3 s.
 */
export class Failover implements BlockSource {
  private mirrors: readonly FailoverMirror[];
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly retries: number | undefined;

  constructor(components: FailoverComponents, options: FailoverOptions = {}) {
    if (components.mirrors.length === 0) throw new InvalidArgumentError('failover needs at least one mirror');
    this.mirrors = [...components.mirrors];
    this.logger = components.logger ?? SILENT_LOGGER;
    this.now = components.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    this.retries = options.retries;
    if (!(this.timeoutMs > 0)) throw new InvalidArgumentError(`timeoutMs must be > 0, not ${this.timeoutMs}`);
    if (this.retries !== undefined && (!Number.isInteger(this.retries) || this.retries < 1)) {
      throw new InvalidArgumentError(`retries must be a whole number ≥ 1, not ${this.retries}`);
    }
  }

  async get(ref: BlockRef, options: FetchOptions = {}): Promise<Uint8Array> {
    const { signal } = options;
    signal?.throwIfAborted();
    const answeredNotFound = new Set<FailoverMirror>();
    const lastFailure = new Map<FailoverMirror, Error>();

    const rounds = this.rounds;
    for (let round = 1; round <= rounds; round++) {
      const order = selectMirrors(this.mirrors, this.now()).filter((m) => !answeredNotFound.has(m));
      if (order.length === 0) break;
      if (round > 1) await this.pause(backoffBefore(round), signal);

      for (const [i, mirror] of order.entries()) {
        const deadline = AbortSignal.timeout(this.timeoutMs);
        const attempt = signal ? AbortSignal.any([signal, deadline]) : deadline;
        const started = this.now();
        let error: Error;
        // The urgency rides along so a mirror's queue can move this request up if a reader starts waiting on it.
        const attemptOptions: FetchOptions = { signal: attempt, priority: options.priority, urgency: options.urgency };
        try {
          const stored = await mirror.source.get(ref, attemptOptions);
          // A wall clock can step backwards; a negative sample would drag the EWMA below the truth.
          const ms = Math.max(0, this.now() - started);
          mirror.stats.success(ms, stored.length);
          this.logger.verbose(`block ${ref.id} from ${mirror.stats.url}: ${stored.length} bytes in ${ms} ms`);
          return stored;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          error = this.classify(e, mirror, deadline);
        }

        if (error instanceof BlockNotFoundError) {
          mirror.stats.notFound();
          answeredNotFound.add(mirror);
          lastFailure.delete(mirror);
        } else {
          mirror.stats.failure(error, this.now());
          lastFailure.set(mirror, error);
        }
        const next = order[i + 1];
        const then = next
          ? `trying ${next.stats.url}`
          : round < rounds && answeredNotFound.size < this.mirrors.length
            ? `retrying in ${backoffBefore(round + 1)} ms`
            : 'giving up';
        this.logger.fault(`mirror ${mirror.stats.url} failed block ${ref.id}: ${error.message}; ${then}`);
      }
    }

    if (lastFailure.size === 0) throw new BlockNotFoundError(ref.id, this.toString());
    const failures = [...lastFailure.values()];
    throw new MirrorUnavailableError(
      this.toString(),
      `block ${ref.id}: ${failures.length} of ${this.mirrors.length} mirrors failed after ${rounds} round(s): ${failures.map((e) => e.message).join('; ')}`,
      { cause: new AggregateError(failures) },
    );
  }

  /**
   * Asks mirrors in rank order: true as soon as one holds the block, false
   * when all answered they do not. When none holds it and some could not
   * answer, MirrorUnavailableError. Nothing is recorded in the stats: a HEAD
   * is not a fetch, and its latency would skew the ranking.
   */
  async has(ref: BlockRef, options: SourceOptions = {}): Promise<boolean> {
    const { signal } = options;
    signal?.throwIfAborted();
    const failures: Error[] = [];
    for (const mirror of selectMirrors(this.mirrors, this.now())) {
      const deadline = AbortSignal.timeout(this.timeoutMs);
      const attempt = signal ? AbortSignal.any([signal, deadline]) : deadline;
      try {
        if (await mirror.source.has(ref, { signal: attempt, priority: options.priority })) return true;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        failures.push(this.classify(e, mirror, deadline));
      }
    }
    if (failures.length === 0) return false;
    throw new MirrorUnavailableError(this.toString(), `has ${ref.id}: ${failures.map((e) => e.message).join('; ')}`, {
      cause: new AggregateError(failures),
    });
  }

  /** Rounds for the mirrors in place now (a pool may be retargeted to more or fewer). */
  private get rounds(): number {
    return this.retries ?? defaultRounds(this.mirrors.length);
  }

  /**
   * A new starting order (a pool re-resolved by DNS): the caller passes the
   * same FailoverMirror objects for mirrors it already had, so their stats
   * keep ranking them. Each round of a get() in flight reads the list anew.
   */
  setMirrors(mirrors: readonly FailoverMirror[]): void {
    if (mirrors.length === 0) throw new InvalidArgumentError('failover needs at least one mirror');
    this.mirrors = [...mirrors];
  }

  /** Every mirror's record in starting order, for stats.json. */
  mirrorSnapshots(): MirrorSnapshot[] {
    const now = this.now();
    return this.mirrors.map((m) => m.stats.snapshot(now));
  }

  toString(): string {
    return `failover(${this.mirrors.map((m) => m.source.toString()).join(', ')})`;
  }

  /** A seam error as is; our deadline as MirrorUnavailableError; anything else is not ours to absorb. */
  private classify(e: unknown, mirror: FailoverMirror, deadline: AbortSignal): Error {
    if (e instanceof BlockNotFoundError || e instanceof BlockCorruptError || e instanceof MirrorUnavailableError) {
      return e;
    }
    if (deadline.aborted) {
      return new MirrorUnavailableError(mirror.source.toString(), `timeout after ${this.timeoutMs} ms`, { cause: e });
    }
    throw e;
  }

  private async pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await sleep(ms, undefined, { signal });
    } catch (e) {
      // timers/promises rejects with its own AbortError; the caller expects its signal's reason.
      throw signal?.aborted ? signal.reason : e;
    }
  }
}

/** The pause before round `round` (≥ 2): 100 ms, 200 ms, 400 ms… capped at 1 s. */
function backoffBefore(round: number): number {
  return Math.min(BACKOFF_START_MS * 2 ** Math.min(round - 2, 30), BACKOFF_MAX_MS);
}
