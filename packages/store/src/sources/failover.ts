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
import type { Decoded } from './block-decoder.js';
import { HedgeLost } from './hedge-lost.js';
import { MirrorRounds } from './mirror-rounds.js';
import { currentPriority, type FetchOptions } from './urgency.js';
import type { VerifiedBlockSource } from './verified.js';

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
 * Extra rounds a block may get, one per attempt that ended in a stall (a
 * transfer the low-speed limit abandoned: the mirror answered, too slowly).
 * A stall is a slow mirror's tail, not a dead path: with 10 % of responses
 * dripped, three attempts all dripped for one block in a thousand, an EIO in
 * most full reads of a 2,000-block image (seen in the bench). Four more
 * make it one in ten million, and still bound the loop.
 */
export const MAX_STALL_ROUNDS = 4;

/**
 * Pause before round 2, doubling per round up to 1 s: long enough for a
 * restarting server to accept again, short next to a reader's patience, and
 * the cap keeps many rounds from turning into minutes.
 */
const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 1_000;

/**
 * Hedged requests (after Dean and Barroso, "The Tail at Scale"): a fetch a
 * reader waits on that has taken HEDGE_FACTOR times its mirror's typical
 * latency, and at least HEDGE_MIN_MS, gets a second request, to the next
 * mirror in order, or to the same one on another connection when it is the
 * only one; the first answer that verifies wins and the other is aborted.
 * Four times the typical latency is rare for a healthy mirror (a request
 * that slow is in the tail, not the body, of the distribution), and 100 ms
 * keeps loopback and LAN mirrors, whose typical latency is a few ms, from
 * hedging on every hiccup of a busy machine (the hedge budget below bounds
 * the rest). It was 200 ms; at 20 ms RTT a sequential reader's read-ahead
 * is ~150 ms ahead, so a dripped read-ahead block was not yet due when the
 * reader reached it, and each drip cost the reader the difference: the
 * bench's 3 % and 10 % drip reads took 2.45× and 6.37× the fault-free one
 * (then 1.49× and 4.39× at 100 ms; docs/PERFORMANCE.md).
 */
export const HEDGE_FACTOR = 4;
export const HEDGE_MIN_MS = 100;

/*
 * Stalling hedges. A response whose body drips (FetchOptions.onStalling: its
 * source saw it move far below the low-speed limit right after its headers)
 * is hedged at once, whether a reader waits on it yet or not, and needs no
 * typical latency to judge by: a read-ahead block is then fetched again
 * before the reader gets to it, and a dripped block costs a reader at most
 * the check plus one round trip. Waiting for the reader (the rule above) cost each
 * dripped block ~0.16 s at 20 ms, and the first window's blocks, sent before
 * any latency was known, the whole low-speed time (issue 13 §3). When the
 * hedge drips too, the next attempt is hedged as well, while budget lasts.
 */

/**
 * Hedges are bounded to one for every five first attempts (hedges earn no
 * budget), with a burst of ten: a
 * mirror that is slow for everyone must not see its load grow by more than a
 * fifth because of it, and ten covers the few slow blocks of one stalled
 * read. One in five is twice the drip rate of the bench's worst drip run
 * (10 %, where one in ten, exactly the hedges needed, ran dry now and then
 * and left a block to the low-speed limit: 2 s).
 */
const HEDGE_BURST = 10;
const HEDGE_PER_ATTEMPT = 0.2;

export interface FailoverMirror<S extends BlockSource = BlockSource> {
  /** Typically verified(http(...)), so bad bytes count against the mirror that sent them. */
  readonly source: S;
  readonly stats: MirrorStats;
  /**
   * The source applies FetchOptions.timeoutMs itself, from when the request
   * leaves its queue (an HTTP mirror's request window). Failover then arms no
   * deadline of its own, so time spent queued behind this client's other
   * requests (deep read-ahead, prefetch) is never counted as the mirror's.
   * Such a source must call FetchOptions.onSent when the request leaves its
   * queue: until then its attempt is never hedged on the same mirror.
   */
  readonly timesItself?: boolean | undefined;
}

export interface FailoverComponents<S extends BlockSource = BlockSource> {
  /** In their starting order: the command line's, or DNS's. */
  readonly mirrors: readonly FailoverMirror<S>[];
  readonly logger?: Logger;
  /** Clock for latency samples and cool-offs, in ms. */
  readonly now?: () => number;
}

export interface FailoverOptions {
  readonly timeoutMs?: number;
  /** Rounds over all mirrors (1 = try each mirror once); defaultRounds(mirrors) if not given. */
  readonly retries?: number;
  /** Send hedged requests for slow demand fetches (default true). */
  readonly hedge?: boolean;
}

/** What an attempt brings: the stored bytes (get), or them with the decoded block (getVerified). */
interface Got {
  readonly stored: Uint8Array;
}

/** One attempt on the wire. */
interface Attempt<G extends Got = Got> {
  readonly mirror: FailoverMirror;
  readonly controller: AbortController;
  readonly started: number;
  /** When it left the source's queue (FetchOptions.onSent); `started` for a source that times itself not. */
  sentAt: number | undefined;
  /** Started early, beside a slow one. */
  readonly hedge: boolean;
  /** Its source said its body drips (FetchOptions.onStalling). */
  stalling: boolean;
  /** When its answer's headers or last body bytes arrived (FetchOptions.onProgress); undefined before the headers. */
  progressAt: number | undefined;
  /** Its whole body has arrived: it is being checked, not slow on the wire. */
  received: boolean;
  readonly outcome: Promise<{ attempt: Attempt<G>; got?: G; error?: unknown }>;
  /** Set when our own deadline (not the source's) ended it. */
  timedOut: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Asks mirrors one at a time, best-ranked first (select-mirrors.ts), until one
 * returns the block, recording every outcome in the mirror's stats and
 * logging every fault as one line. A demand fetch that is slow gets one
 * hedged request beside it (HEDGE_FACTOR); hedges take their turn from the
 * same sequence of attempts, so they never add attempts, only start one early.
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
 * pauses between rounds (≤ (retries − 1) × 1 s), plus, for a mirror that
 * times itself, the time its requests queue in its window. With the defaults
 * and two mirrors: 10 s × 2 × 2 + 0.1 s = 40.1 s; with one: 10 s × 3 + 0.3 s.
 *
 * Over verified mirrors (`S` a VerifiedBlockSource) it is a VerifiedRemote
 * too: getVerified() asks them the same way and passes on the decoded block
 * of the attempt that won.
 */
export class Failover<S extends BlockSource = BlockSource> implements BlockSource {
  private mirrors: readonly FailoverMirror<S>[];
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly retries: number | undefined;
  private readonly hedging: boolean;
  private hedgeTokens = HEDGE_BURST;
  /** Hedged requests sent, and how many of them answered first. */
  hedges = 0;
  hedgesWon = 0;

  constructor(components: FailoverComponents<S>, options: FailoverOptions = {}) {
    if (components.mirrors.length === 0) throw new InvalidArgumentError('failover needs at least one mirror');
    this.mirrors = [...components.mirrors];
    this.logger = components.logger ?? SILENT_LOGGER;
    this.now = components.now ?? Date.now;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    this.retries = options.retries;
    this.hedging = options.hedge ?? true;
    if (!(this.timeoutMs > 0)) throw new InvalidArgumentError(`timeoutMs must be > 0, not ${this.timeoutMs}`);
    if (this.retries !== undefined && (!Number.isInteger(this.retries) || this.retries < 1)) {
      throw new InvalidArgumentError(`retries must be a whole number ≥ 1, not ${this.retries}`);
    }
  }

  async get(ref: BlockRef, options: FetchOptions = {}): Promise<Uint8Array> {
    const got = await this.fetch(ref, options, (source, attemptOptions) =>
      source.get(ref, attemptOptions).then((stored) => ({ stored })),
    );
    return got.stored;
  }

  /** get() over verified mirrors, with the decoded block the winning mirror's check gave (VerifiedRemote). */
  getVerified(this: Failover<VerifiedBlockSource>, ref: BlockRef, options: FetchOptions = {}): Promise<Decoded> {
    return this.fetch(ref, options, (source, attemptOptions) => source.getVerified(ref, attemptOptions));
  }

  /**
   * The failover loop of get() and getVerified(): `ask` is one attempt on one mirror's source.
   * Long: the attempts running, the round, the hedge clock and the raise listener are one fetch's state, shared
   * by `launch` and `wake`; the hedge and an attempt's end are their own methods.
   */
  private async fetch<G extends Got>(
    ref: BlockRef,
    options: FetchOptions,
    ask: (source: S, options: FetchOptions) => Promise<G>,
  ): Promise<G> {
    const { signal } = options;
    signal?.throwIfAborted();
    const mirrors = new MirrorRounds(
      this.rounds,
      () => selectMirrors(this.mirrors, this.now()),
      () => this.mirrors.length,
      MAX_STALL_ROUNDS,
    );

    const running: Attempt<G>[] = [];
    let launchedRound = 0;
    const launch = (mirror: FailoverMirror<S>, inRound: number, hedge: boolean, urgent = false): void => {
      launchedRound = inRound;
      // Leaving its mirror's queue starts an attempt's hedge clock (hedgeDelay): a reader waiting is told to re-judge.
      const onSent = () => {
        if (demandSince !== undefined) wake?.();
      };
      running.push(this.startAttempt(mirror, options, ask, { hedge, urgent, onStalling: () => wake?.(), onSent }));
      // Only first requests earn budget: hedges are at most a fifth of them.
      if (!hedge) this.hedgeTokens = Math.min(HEDGE_BURST, this.hedgeTokens + HEDGE_PER_ATTEMPT);
    };

    // Raised from background to demand while waiting: the hedge clock starts then.
    let demandSince = currentPriority(options) === 'demand' ? this.now() : undefined;
    /** Re-judges the hedge now: the fetch was raised to demand, or an attempt drips. */
    let wake: (() => void) | undefined;
    const stopListening = options.urgency?.onRaise(() => {
      demandSince ??= this.now();
      wake?.();
    });

    try {
      for (;;) {
        if (running.length === 0) {
          const next = mirrors.next();
          if (!next) break;
          // A new round after a failed one waits its backoff first (a hedge never does: nothing failed yet).
          if (next.round > 1 && next.round > launchedRound) await this.pause(backoffBefore(next.round), signal);
          launch(next.mirror, next.round, false);
        }
        const hedgeIn = this.hedgeDelay(running, demandSince, mirrors);
        // The body's progress when the hedge was timed: bytes since then move the hedge on (see hedgeDelay).
        const progressMark = running[0]?.progressAt;
        const event = await nextEvent(running, hedgeIn, signal, (w) => {
          wake = w;
        });
        if (signal?.aborted) throw signal.reason;
        if (event === 'woken') continue;
        if (event === 'hedge') {
          this.hedgeNow(ref, running, progressMark, mirrors, launch);
          continue;
        }
        const got = this.settle(ref, event as Awaited<Attempt<G>['outcome']>, running, mirrors);
        if (got) return got;
      }
    } finally {
      stopListening?.();
      stopLosers(running);
    }

    throw this.noMirrorHad(ref, mirrors);
  }

  /** An attempt ended: recorded in its mirror's stats; the block, with the others stopped, if it brought it. */
  private settle<G extends Got>(
    ref: BlockRef,
    { attempt, got, error }: Awaited<Attempt<G>['outcome']>,
    running: Attempt<G>[],
    mirrors: MirrorRounds<FailoverMirror<S>>,
  ): G | undefined {
    running.splice(running.indexOf(attempt), 1);
    clearTimeout(attempt.timer);
    if (got) {
      this.recordSuccess(ref, attempt, got.stored);
      stopLosers(running);
      return got;
    }
    this.recordFailure(ref, attempt, error, mirrors, running[0]);
    return undefined;
  }

  /**
   * The hedge timer fired: a request to the next mirror beside the ones
   * running, unless bytes arrived while the clock hedge's timer ran (the body
   * has not stalled, so it is timed again from them; a drip hedge fires
   * whatever trickles in) or other fetches spent the budget since it was set.
   */
  private hedgeNow<G extends Got>(
    ref: BlockRef,
    running: readonly Attempt<G>[],
    progressMark: number | undefined,
    mirrors: MirrorRounds<FailoverMirror<S>>,
    launch: (mirror: FailoverMirror<S>, inRound: number, hedge: boolean, urgent: boolean) => void,
  ): void {
    if (running.length === 1 && !running[0]?.stalling && running[0]?.progressAt !== progressMark) return;
    const next = this.hedgeTokens >= 1 ? mirrors.next() : undefined;
    if (!next) return;
    this.hedgeTokens -= 1;
    this.hedges++;
    const first = running[0] as Attempt<G>;
    const dripping = running.every((a) => a.stalling);
    this.logger.verbose(
      `block ${ref.id}: ${dripping ? 'dripping' : 'no'} answer from ${first.mirror.stats.url} in ${Math.round(this.now() - first.started)} ms; hedging on ${next.mirror.stats.url}`,
    );
    launch(next.mirror, next.round, true, dripping);
  }

  /** Records the attempt that brought the block in its mirror's stats, and logs it. */
  private recordSuccess(ref: BlockRef, attempt: Attempt, stored: Uint8Array): void {
    const { mirror } = attempt;
    // A wall clock can step backwards; a negative sample would drag the EWMA below the truth.
    const ms = Math.max(0, this.now() - attempt.started);
    mirror.stats.success(ms, stored.length);
    if (attempt.hedge) this.hedgesWon++;
    this.logger.verbose(`block ${ref.id} from ${mirror.stats.url}: ${stored.length} bytes in ${ms} ms`);
  }

  /** The error of a get() that ran out of mirrors: not found when every one said so, else unavailable. */
  private noMirrorHad(ref: BlockRef, mirrors: MirrorRounds): Error {
    if (mirrors.lastFailure.size === 0) return new BlockNotFoundError(ref.id, this.toString());
    const failures = [...mirrors.lastFailure.values()];
    return new MirrorUnavailableError(
      this.toString(),
      `block ${ref.id}: ${failures.length} of ${this.mirrors.length} mirrors failed after ${mirrors.rounds} round(s): ${failures.map((e) => e.message).join('; ')}`,
      { cause: new AggregateError(failures) },
    );
  }

  /** Records a failed attempt in its mirror's stats and in `mirrors`, and logs it with what happens next. */
  private recordFailure(
    ref: BlockRef,
    attempt: Attempt,
    error: unknown,
    mirrors: MirrorRounds,
    waiting: Attempt | undefined,
  ): void {
    const { mirror } = attempt;
    const failure = this.classify(error, mirror, attempt.timedOut);
    if (failure instanceof BlockNotFoundError) mirror.stats.notFound();
    else mirror.stats.failure(failure, this.now());
    mirrors.failed(mirror, failure);
    const upcoming = mirrors.upcoming();
    const then = waiting
      ? `waiting on ${waiting.mirror.stats.url}`
      : upcoming
        ? `trying ${upcoming.stats.url}`
        : mirrors.canRetry()
          ? `retrying in ${backoffBefore(mirrors.round + 1)} ms`
          : 'giving up';
    this.logger.fault(`mirror ${mirror.stats.url} failed block ${ref.id}: ${failure.message}; ${then}`);
  }

  /**
   * Starts one attempt on `mirror`, under our own deadline unless the mirror times itself. `urgent`: a hedge of a
   * dripping block, asked for at demand priority; `onStalling` is called when its body drips.
   */
  private startAttempt<G extends Got>(
    mirror: FailoverMirror<S>,
    options: FetchOptions,
    ask: (source: S, options: FetchOptions) => Promise<G>,
    how: { hedge: boolean; urgent: boolean; onStalling: () => void; onSent: () => void },
  ): Attempt<G> {
    const { signal } = options;
    const controller = new AbortController();
    const attemptSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const attempt: Attempt<G> = {
      mirror,
      controller,
      started: this.now(),
      sentAt: undefined,
      hedge: how.hedge,
      stalling: false,
      progressAt: undefined,
      received: false,
      timedOut: false,
      timer: undefined,
      outcome: undefined as unknown as Attempt<G>['outcome'],
    };
    if (!mirror.timesItself) {
      attempt.sentAt = attempt.started;
      attempt.timer = setTimeout(() => {
        attempt.timedOut = true;
        controller.abort(new MirrorUnavailableError(mirror.source.toString(), `timeout after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    }
    // The urgency rides along so a mirror's queue can move this request up if a reader starts waiting on it.
    // A dripping block's hedge goes ahead of read-ahead queued after it: its block is the one due first.
    const attemptOptions: FetchOptions = {
      signal: attemptSignal,
      priority: how.urgent ? 'demand' : options.priority,
      urgency: how.urgent ? undefined : options.urgency,
      timeoutMs: this.timeoutMs,
      onSent: () => {
        if (attempt.sentAt !== undefined) return;
        attempt.sentAt = this.now();
        how.onSent();
      },
      onStalling: () => {
        attempt.stalling = true;
        how.onStalling();
      },
      onProgress: (received, total) => {
        attempt.progressAt = this.now();
        if (total !== undefined && received >= total) attempt.received = true;
      },
    };
    (attempt as { outcome: Attempt<G>['outcome'] }).outcome = ask(mirror.source, attemptOptions).then(
      (got) => ({ attempt, got }),
      (error: unknown) => ({ attempt, error }),
    );
    return attempt;
  }

  /**
   * ms until the running attempts should be hedged, or undefined. At once
   * when every one of them drips ("Stalling hedges" above), with an attempt
   * and budget left. Otherwise only a fetch a reader waits on, only once,
   * only with a mirror left to ask, a latency to judge by, and budget left.
   * The clock starts when the reader began to wait, or earlier when the
   * request was already on the wire then: a read-ahead dripping since long
   * before the reader got to it is hedged as soon as the reader does (issue 13 §3: otherwise every dripped block costs
   * the reader a whole hedge delay in turn). A request still queued in this
   * client's own window is timed from the wait when its hedge would go to
   * another mirror, which may answer sooner; a hedge to the same mirror (the
   * only one, or the next round's first) would queue behind the same window,
   * so such a request is timed from when it was sent. Timed from the wait,
   * a deep queue (an NBD client asks for 64 blocks at once) hedged every
   * block in it: the hedges took slots of their own, lost, and their
   * aborts halved the window they were queued in.
   *
   * Once the answer has begun, the clock runs from its last bytes instead:
   * the delay is how long a body may stall, not how long it may take. A
   * response arriving at a steady pace, however long it takes as a whole
   * (a starved machine, a big block on a slow link), is not hedged: its
   * hedge would most often lose and its bytes be wasted (issue 12, T6: a
   * cold read fetches exactly the store's bytes). A body wholly received
   * and being checked is not hedged either.
   */
  private hedgeDelay(
    running: readonly Attempt[],
    demandSince: number | undefined,
    mirrors: MirrorRounds<FailoverMirror<S>>,
  ): number | undefined {
    if (!this.hedging || running.length === 0 || !mirrors.hasNext() || this.hedgeTokens < 1) return undefined;
    if (running.every((a) => a.stalling && !a.received)) return 0;
    if (running.length !== 1 || demandSince === undefined) return undefined;
    const first = running[0] as Attempt;
    const typical = first.mirror.stats.latencyMs;
    if (typical === undefined || first.received) return undefined;
    const upcoming = mirrors.upcoming();
    const elsewhere = upcoming !== undefined && upcoming !== first.mirror;
    if (first.sentAt === undefined && !elsewhere) return undefined; // launch()'s onSent wakes the loop once it is sent
    const asked = elsewhere
      ? Math.min(Math.max(first.started, demandSince), first.sentAt ?? Number.POSITIVE_INFINITY)
      : (first.sentAt as number);
    const since = Math.max(asked, first.progressAt ?? Number.NEGATIVE_INFINITY);
    const due = since + Math.max(HEDGE_MIN_MS, HEDGE_FACTOR * typical);
    return Math.max(0, due - this.now());
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
        const hasOptions: FetchOptions = { signal: attempt, priority: options.priority, timeoutMs: this.timeoutMs };
        if (await mirror.source.has(ref, hasOptions)) return true;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        failures.push(this.classify(e, mirror, deadline.aborted));
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
  setMirrors(mirrors: readonly FailoverMirror<S>[]): void {
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
  private classify(e: unknown, mirror: FailoverMirror, timedOut: boolean): Error {
    if (e instanceof BlockNotFoundError || e instanceof BlockCorruptError || e instanceof MirrorUnavailableError) {
      return e;
    }
    if (timedOut) {
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

/** A promise that rejects never and resolves on abort, and a way to stop listening. */
function abortPromise(signal: AbortSignal): { promise: Promise<'aborted'>; dispose(): void } {
  let onAbort = () => {};
  const promise = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** The pause before round `round` (≥ 2): 100 ms, 200 ms, 400 ms… capped at 1 s. */
function backoffBefore(round: number): number {
  return Math.min(BACKOFF_START_MS * 2 ** Math.min(round - 2, 30), BACKOFF_MAX_MS);
}

/**
 * Aborts the attempts still running with HedgeLost (made only when there are
 * any): they lost to the one that answered, or the fetch ended otherwise
 * (every mirror failed, the caller aborted) and nothing waits for them.
 */
function stopLosers(running: Attempt[]): void {
  if (running.length === 0) return;
  const reasons: [HedgeLost | undefined, HedgeLost | undefined] = [undefined, undefined]; // [first, hedge]
  for (const a of running.splice(0)) {
    clearTimeout(a.timer);
    const i = a.hedge ? 1 : 0;
    const reason = reasons[i] ?? new HedgeLost(a.hedge);
    reasons[i] = reason;
    a.controller.abort(reason);
  }
}

/**
 * Waits for the first of: an attempt's outcome, the hedge timer (`hedgeIn` ms, if given), a wake-up (the
 * function handed to `setWake`, withdrawn after), or the abort of `signal` ('aborted').
 */
async function nextEvent<G extends Got>(
  running: readonly Attempt<G>[],
  hedgeIn: number | undefined,
  signal: AbortSignal | undefined,
  setWake: (wake: (() => void) | undefined) => void,
): Promise<Awaited<Attempt<G>['outcome']> | 'hedge' | 'woken' | 'aborted'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const woken = new Promise<'hedge' | 'woken'>((resolve) => {
    setWake(() => resolve('woken'));
    if (hedgeIn !== undefined) timer = setTimeout(() => resolve('hedge'), hedgeIn);
  });
  const abortedP = signal ? abortPromise(signal) : undefined;
  try {
    return await Promise.race(
      [...running.map((a) => a.outcome), woken, abortedP?.promise].filter((p) => p !== undefined),
    );
  } finally {
    clearTimeout(timer);
    abortedP?.dispose();
    setWake(undefined);
  }
}
