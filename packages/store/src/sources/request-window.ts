import { MirrorUnavailableError } from '@thfc/format';
import { type GateWaiter, PriorityGate } from './priority-gate.js';
import type { Priority, Urgency } from './urgency.js';

/**
 * Requests in flight when a mirror is new: half the default maximum, as
 * TCP's initial window went from about 3 segments to 10 (RFC 6928) once
 * slow start from a few was shown to cost short transfers whole round trips.
 * It was 4, the 2008 original's MAXCONNECTION: at 50 ms, slow start then
 * spent three round trips reaching 32, and a cold `nbdcopy` of 128 MiB at
 * 50 ms / 1 Gbit/s took ~60 ms longer (1.04-1.11 s against 0.99-1.01 s for
 * the copy, four rounds each). A mirror that cannot take 16 at once says so
 * (timeouts, 503, 429) and the window halves.
 */
export const DEFAULT_INITIAL_WINDOW = 16;

/**
 * The most requests one client keeps in flight to one mirror. 32 covers the
 * bandwidth-delay product of the links users have with 256 KiB blocks (about
 * 88 KiB stored on average): 1 Gbit/s at 20 ms is ~28 blocks, 100 Mbit/s at
 * 50 ms ~7, while a CPU-bound client never gets near it. It is also what a
 * public mirror can live with: nginx's default worker_connections is 512 per
 * worker, and a few dozen clients booting at once at 32 each stay within one
 * worker. A client that needs more should use a second mirror, not a wider pipe.
 */
export const DEFAULT_MAX_WINDOW = 32;

/**
 * Stored bytes in flight per mirror, whatever the window says: 16 MiB is 64
 * blocks of the largest stored size at 256 KiB blocks, twice what the
 * default window could have out, so it only binds for images with bigger
 * blocks, where it keeps the daemon inside its 200 MB budget.
 */
export const DEFAULT_MAX_BYTES_IN_FLIGHT = 16 * 1024 * 1024;

/**
 * Slow start doubles the window each round while goodput grows by at least a
 * quarter (the bar BBR's startup uses), and ends after three rounds without
 * such growth (one flat round can be noise on a shared machine), settling on
 * the window that gave the best round.
 */
const STARTUP_GROWTH = 1.25;
const STARTUP_FLAT_ROUNDS = 3;

/**
 * After slow start the window is tuned by probing: every PROBE_EVERY rounds
 * it tries a quarter more for PROBE_ROUNDS rounds and keeps it if goodput
 * rose by PROBE_GAIN; if not (or at the maximum, where it cannot), it
 * tries a quarter less and keeps that if goodput held within PROBE_HOLD. So
 * a link that got faster is found, and requests in flight that buy nothing
 * (the client's CPU is the limit, as on loopback) are given back. The goodput a window gives is measured, not
 * predicted: a bandwidth-delay product from the shortest round trip misses
 * the client's own processing time, which on a fast link is most of it.
 */
const PROBE_EVERY = 8;
const PROBE_ROUNDS = 3;
const PROBE_GAIN = 1.1;
const PROBE_HOLD = 0.95;

/**
 * Probing never takes the window below the bytes in flight that twice the
 * bandwidth-delay product (best recent goodput × shortest round trip) needs,
 * in requests of the mean size answered: BBR's cwnd gain of 2 (the round
 * trip here is the shortest ever seen, see shortestEver). One BDP fills
 * the link only if answers come back evenly; on a real link they come in
 * bursts, and the window's own rounds are noisy, so each down-probe that
 * "held within 5 %" could cost a little more. Measured at 50 ms / 100 Mbit/s:
 * down-probes walked the window from 16 to 9 (about one BDP of 88 KiB
 * blocks), and the link went from full to 70-80 % busy. Where the client's
 * CPU is the limit (loopback) the BDP is a few blocks and the floor is
 * nothing: the window still gives back what buys nothing.
 */
const BDP_GAIN = 2;
/** Weight of each answer in the mean answer size (an exponential moving average). */
const ANSWER_BYTES_WEIGHT = 1 / 16;

/** Goodput shown in stats: the best round of the last ten (a windowed maximum, as BBR keeps it). */
const BANDWIDTH_ROUNDS = 10;

/**
 * The round-trip estimate is the shortest exchange seen in the last 10 s: the
 * shortest is the one that queued least, and a route that changes is noticed
 * within 10 s.
 */
const MIN_RTT_WINDOW_MS = 10_000;

/**
 * A round lasts at least one window's worth of answers, one round trip, and
 * 50 ms: on loopback a round of a few ms measures a burst, not a rate. After
 * slow start it also lasts MIN_ROUND_ANSWERS: a round of a handful of
 * answers differs from the next by a whole answer's share (a tenth of 10),
 * which probing would take for a change in the link. Slow start does not
 * wait for them: it only asks whether doubling the window bought a quarter
 * more. This matters only below a window of 16 (an initial window or a
 * maximum set lower): from 4, 16 answers were four round trips, and slow
 * start took 7 round trips to reach 32 instead of 3.
 */
const MIN_ROUND_MS = 50;
const MIN_ROUND_ANSWERS = 16;

/**
 * A congestion signal (timeout, reset, 5xx, 429, a transfer too slow) halves
 * the window, at most once per this long: the requests that were in flight
 * when the link choked fail together, and that is one signal, not thirty.
 */
const BACKOFF_HOLD_MS = 1_000;

/**
 * The longest `Retry-After` honoured. A mirror asking for more is treated as
 * down for this long (failover ranks it last meanwhile); an hour-long pause
 * would otherwise stall every read queued on it.
 */
export const MAX_RETRY_AFTER_MS = 30_000;

export interface RequestWindowOptions {
  /** Fixed window (`--connections N`): no adaptation at all, as the original. */
  readonly pinned?: number | undefined;
  readonly initial?: number | undefined;
  /** Upper bound of an adaptive window (`--max-connections`). */
  readonly max?: number | undefined;
  readonly maxBytes?: number | undefined;
}

export interface RequestWindowComponents {
  /** ms clock (performance.now by default); tests move it. */
  readonly now?: (() => number) | undefined;
}

/** How an exchange ended, as the window weighs it. */
export type ExchangeOutcome =
  /** The mirror answered (a block, or "not here"): a sample of round trip and goodput. */
  | { readonly kind: 'answer'; readonly bytes: number; readonly ms: number }
  /** Timeout, reset, 5xx, 429: the mirror or the path is overloaded. */
  | { readonly kind: 'congestion'; readonly retryAfterMs?: number | undefined }
  /**
   * One transfer below the low-speed limit, or a first request beaten by
   * its hedge (a hedge that lost is 'neutral'). Congestion only if it was
   * out at least as long as the shortest exchange ever seen, others were out
   * too, and none of them answered while it was (the whole path stalled);
   * otherwise it is that one response (a slow mirror's
   * tail, issue 13 §3), and halving the window for it would slow every other
   * request: at 3 % of responses dripped, the window fell to 1 and a dripped
   * block then held the only slot, hedge included, for the whole low-speed
   * time. Either way the round it ended in measured the stall, not the link,
   * and does not count (unless it was out too briefly to have stalled
   * anything): otherwise probing finds that fewer requests "hold" the same
   * stalled goodput and ratchets the window down.
   */
  | { readonly kind: 'stalled' }
  /** Anything that says nothing about load: the caller's abort, bad bytes, a redirect. */
  | { readonly kind: 'neutral' };

/** One slot, held from grant to done(). */
export interface WindowSlot {
  /** The priority the slot was granted at (a raised request is demand). */
  readonly priority: Priority;
  /** Frees the slot and feeds the estimates. Only the first call counts. */
  done(outcome: ExchangeOutcome): void;
}

export interface WindowSnapshot {
  readonly mode: 'pinned' | 'startup' | 'steady' | 'paused';
  /** Requests allowed in flight now. */
  readonly limit: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly bytesInFlight: number;
  /** Shortest exchange of the last 10 s, ms; null before the first. */
  readonly rttMs: number | null;
  /** Best round of the last ten, stored bytes per second; null before the first round. */
  readonly goodputBps: number | null;
}

interface Waiter extends GateWaiter {
  readonly bytes: number;
}

/**
 * How many requests one mirror gets at once, and in what order: a pure
 * scheduler with a clock, no I/O (HttpSource holds one per mirror).
 *
 * Order (its PriorityGate's): demand requests first-come; background
 * requests (read-ahead, boot profile replay, --fill) only when no demand
 * request waits, and never in the last slot (backgroundLimit()), so a reader
 * waits for at most the exchanges already on the wire. A queued background
 * request whose Urgency is raised moves to the back of the demand queue.
 *
 * Size: `--connections N` pins it. Otherwise it starts at
 * DEFAULT_INITIAL_WINDOW, doubles per round in the manner of slow start while
 * goodput grows, then is tuned by probing a quarter up and down (PROBE_EVERY),
 * within [1, max] and the byte budget. Only rounds in which somebody waited
 * for a slot count (a reader that asks for little says nothing about the
 * link). A congestion signal halves it, and `Retry-After` pauses new grants
 * until then.
 */
export class RequestWindow {
  private readonly now: () => number;
  private readonly max: number;
  private readonly maxBytes: number;
  private readonly pinned: boolean;
  /** The queues and the slots; its capacity is the window's limit. */
  private readonly gate: PriorityGate<Waiter>;

  private bytesOut = 0;
  private closedWith: Error | undefined;

  private startup = true;
  private flatRounds = 0;
  /** Slow start's best round, and the window it had. */
  private best = { goodput: 0, limit: 0 };
  /** Probing after slow start: rounds at this window so far, their mean goodput, and the probe under way. */
  private level = { rounds: 0, goodput: 0 };
  private probe: { phase: 'up' | 'down'; base: number; baseGoodput: number } | undefined;
  /** [time, ms] samples for the windowed minimum; kept short (one per 1/8 of the window). */
  private rttSamples: { at: number; ms: number }[] = [];
  private goodputRounds: number[] = [];
  /** Mean stored bytes per answer (0 before the first): turns the BDP in bytes into requests. */
  private answerBytes = 0;
  /**
   * Shortest exchange since the window was made, for bdpFloor(). Not the 10 s
   * minimum: with the window full for good, every exchange queues behind the
   * others, the 10 s minimum grows with the window, and a floor made of it
   * would grow the window it measures. A stale, shorter one only lowers the
   * floor: the safe side.
   */
  private shortestEver = Number.POSITIVE_INFINITY;
  private round = { start: 0, bytes: 0, answers: 0, limited: false, stalled: false, open: false };
  private backoffAt = Number.NEGATIVE_INFINITY;
  /** When an exchange last answered (a 'stalled' one judges by it). */
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(components: RequestWindowComponents = {}, options: RequestWindowOptions = {}) {
    this.now = components.now ?? (() => performance.now());
    const whole = (name: string, v: number) => {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a whole number ≥ 1, not ${v}`);
      return v;
    };
    this.pinned = options.pinned !== undefined;
    this.max = whole('max', options.pinned ?? options.max ?? DEFAULT_MAX_WINDOW);
    const limit = this.pinned
      ? this.max
      : Math.min(this.max, whole('initial', options.initial ?? DEFAULT_INITIAL_WINDOW));
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES_IN_FLIGHT;
    if (!(this.maxBytes > 0)) throw new RangeError(`maxBytes must be > 0, not ${this.maxBytes}`);
    this.gate = new PriorityGate<Waiter>(
      {
        open: () => this.open(),
        admits: (next, inFlight) => this.fitsBytes(next.bytes, inFlight),
        backgroundLimit,
        waiting: () => this.noteWaiting(),
      },
      { capacity: limit },
    );
  }

  get limit(): number {
    return this.gate.capacity;
  }

  /**
   * A slot for a request of about `bytes` stored bytes. Rejects with the
   * signal's reason on abort (taking nothing), or MirrorUnavailableError once
   * closed.
   */
  acquire(priority: Priority, bytes: number, signal?: AbortSignal, urgency?: Urgency): Promise<WindowSlot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (!this.isPaused() && this.fitsBytes(bytes, this.gate.inFlight) && this.gate.tryTake(priority))
      return Promise.resolve(this.start(priority, bytes));
    this.noteWaiting();
    return new Promise<WindowSlot>((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        bytes,
        grant: () => resolve(this.start(waiter.priority, bytes)),
        fail: reject,
      };
      this.gate.wait(waiter, signal, urgency);
    });
  }

  /** Fails every queued request and every later acquire with `error`. Slots already granted finish normally. */
  close(error: Error = new MirrorUnavailableError('window', 'closed')): void {
    this.closedWith ??= error;
    clearTimeout(this.pauseTimer);
    this.gate.failAll(this.closedWith);
  }

  snapshot(): WindowSnapshot {
    const rtt = this.minRtt();
    const bw = this.goodput();
    return {
      mode: this.pinned ? 'pinned' : this.isPaused() ? 'paused' : this.startup ? 'startup' : 'steady',
      limit: this.gate.capacity,
      inFlight: this.gate.inFlight,
      queued: this.gate.queued,
      bytesInFlight: this.bytesOut,
      rttMs: rtt === undefined ? null : Math.round(rtt * 10) / 10,
      goodputBps: bw === undefined ? null : Math.round(bw),
    };
  }

  toString(): string {
    return this.pinned ? `window(${this.gate.capacity})` : `window(≤${this.max})`;
  }

  private isPaused(): boolean {
    return this.pausedUntil > this.now();
  }

  /** The byte budget binds only with something in flight: one request of any size always goes. */
  private fitsBytes(bytes: number, inFlight: number): boolean {
    return inFlight === 0 || this.bytesOut + bytes <= this.maxBytes;
  }

  /** Grants may go out unless a mirror's Retry-After pauses them; the timer pumps when the pause ends. */
  private open(): boolean {
    if (!this.isPaused()) return true;
    this.wakeAfterPause();
    return false;
  }

  /** Bytes and the round for a slot the gate granted (and counted). */
  private start(priority: Priority, bytes: number): WindowSlot {
    this.bytesOut += bytes;
    if (!this.round.open) this.openRound();
    let finished = false;
    const grantedAt = this.now();
    return {
      priority,
      done: (outcome) => {
        if (finished) return;
        finished = true;
        this.gate.release(priority);
        this.bytesOut -= bytes;
        if (outcome.kind === 'stalled') {
          const long = this.outLong(grantedAt);
          if (long) this.round.stalled = true;
          const pathStalled = long && this.lastAnswerAt <= grantedAt && this.gate.inFlight > 0;
          this.learn(pathStalled ? { kind: 'congestion' } : { kind: 'neutral' });
        } else this.learn(outcome);
        this.gate.pump();
      },
    };
  }

  /**
   * Out at least as long as the shortest exchange ever seen: only then could
   * another have answered meanwhile, and none answering says the path
   * stalled. A request that lost to its hedge moments after its grant says
   * nothing, neither about the path nor about its round.
   */
  private outLong(grantedAt: number): boolean {
    return this.now() - grantedAt >= (Number.isFinite(this.shortestEver) ? this.shortestEver : 0);
  }

  /** Somebody waits for a slot: this round measures the link, not the reader. */
  private noteWaiting(): void {
    if (this.round.open) this.round.limited = true;
  }

  private openRound(): void {
    this.round = { start: this.now(), bytes: 0, answers: 0, limited: false, stalled: false, open: true };
  }

  private learn(outcome: ExchangeOutcome): void {
    if (this.pinned) return;
    const now = this.now();
    if (outcome.kind === 'congestion') {
      this.congestion(now, outcome.retryAfterMs);
      return;
    }
    if (outcome.kind !== 'answer') return;
    this.lastAnswerAt = now;
    this.addRtt(now, outcome.ms);
    this.shortestEver = Math.min(this.shortestEver, outcome.ms);
    if (outcome.bytes > 0)
      this.answerBytes = this.answerBytes
        ? this.answerBytes + (outcome.bytes - this.answerBytes) * ANSWER_BYTES_WEIGHT
        : outcome.bytes;
    const r = this.round;
    r.bytes += outcome.bytes;
    r.answers++;
    const elapsed = now - r.start;
    const rtt = this.minRtt() ?? 0;
    const answers = this.startup ? this.gate.capacity : Math.max(this.gate.capacity, MIN_ROUND_ANSWERS);
    if (r.answers < answers || elapsed < Math.max(MIN_ROUND_MS, rtt)) return;
    // A round is over: one window's worth of answers, and at least one round trip.
    if (r.limited && !r.stalled) this.endRound(r.bytes / (elapsed / 1000), now);
    if (this.gate.inFlight > 0) this.openRound();
    else r.open = false;
  }

  private endRound(goodput: number, now: number): void {
    this.goodputRounds.push(goodput);
    if (this.goodputRounds.length > BANDWIDTH_ROUNDS) this.goodputRounds.shift();
    if (this.startup) {
      if (goodput >= this.best.goodput * STARTUP_GROWTH) {
        this.flatRounds = 0;
        if (goodput > this.best.goodput) this.best = { goodput, limit: this.gate.capacity };
        if (this.gate.capacity < this.max) {
          this.setLimit(this.gate.capacity * 2);
          return;
        }
      } else if (goodput > this.best.goodput) this.best = { goodput, limit: this.gate.capacity };
      if (this.gate.capacity < this.max && ++this.flatRounds < STARTUP_FLAT_ROUNDS) return;
      this.startup = false;
      this.setLimit(Math.max(this.best.limit, this.bdpFloor()));
      return;
    }
    // Within a second of a backoff the window only waits: growth after a congestion signal is not probed yet.
    if (now - this.backoffAt < BACKOFF_HOLD_MS) return;
    const level = this.level;
    level.goodput = (level.goodput * level.rounds + goodput) / (level.rounds + 1);
    level.rounds++;
    const probe = this.probe;
    if (!probe) {
      if (level.rounds >= PROBE_EVERY) this.startProbe('up', this.gate.capacity, level.goodput);
      return;
    }
    if (level.rounds < PROBE_ROUNDS) return;
    if (probe.phase === 'up') {
      if (level.goodput >= probe.baseGoodput * PROBE_GAIN)
        this.settle(); // more in flight paid: keep it
      else this.startProbe('down', probe.base, probe.baseGoodput);
      return;
    }
    if (level.goodput >= probe.baseGoodput * PROBE_HOLD)
      this.settle(); // as much with fewer: keep fewer
    else this.settle(probe.base);
  }

  /** Tries a quarter more (or less, not below bdpFloor()) than `base` for PROBE_ROUNDS rounds. */
  private startProbe(phase: 'up' | 'down', base: number, baseGoodput: number): void {
    const step = Math.max(1, Math.floor(base / 4));
    const next = phase === 'up' ? Math.min(this.max, base + step) : Math.max(1, this.bdpFloor(), base - step);
    if (phase === 'up' && next === base) {
      this.startProbe('down', base, baseGoodput); // at the maximum: a quarter more cannot be tried, fewer can
      return;
    }
    if (phase === 'down' && next >= base) {
      this.settle(); // at the floor (or at 1): fewer would leave the link idle
      return;
    }
    this.probe = { phase, base, baseGoodput };
    this.setLimit(next);
    this.level = { rounds: 0, goodput: 0 };
  }

  /** Ends a probe at `limit` (the window it is at now, by default). */
  private settle(limit = this.gate.capacity): void {
    this.probe = undefined;
    this.setLimit(limit);
    this.level = { rounds: 0, goodput: 0 };
  }

  private congestion(now: number, retryAfterMs: number | undefined): void {
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      this.pausedUntil = Math.max(this.pausedUntil, now + Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
      this.wakeAfterPause();
    }
    this.startup = false;
    if (now - this.backoffAt < BACKOFF_HOLD_MS) return;
    this.backoffAt = now;
    // Halved from where it was before any probe: a probe's extra requests were not the link's.
    this.settle(Math.floor((this.probe?.base ?? this.gate.capacity) / 2));
  }

  /**
   * (Re)arms the one timer that pumps when the pause ends. A timer can fire a
   * little before the window's clock says the pause is over (timers count
   * whole ms of the loop's clock): pump() then arms it again, or with nothing
   * in flight to call pump() the queue would wait forever.
   */
  private wakeAfterPause(): void {
    if (this.closedWith) return;
    clearTimeout(this.pauseTimer);
    this.pauseTimer = setTimeout(() => this.gate.pump(), Math.max(1, Math.ceil(this.pausedUntil - this.now())));
    this.pauseTimer.unref?.();
  }

  private setLimit(n: number): void {
    this.gate.capacity = Math.max(1, Math.min(this.max, Math.round(n)));
  }

  private addRtt(now: number, ms: number): void {
    const samples = this.rttSamples;
    while (samples.length > 0 && (samples[0] as { at: number }).at < now - MIN_RTT_WINDOW_MS) samples.shift();
    // A monotonic deque: a sample is dropped once a later one is at most as long, so the head is the minimum.
    while (samples.length > 0 && (samples[samples.length - 1] as { ms: number }).ms >= ms) samples.pop();
    samples.push({ at: now, ms });
  }

  private minRtt(): number | undefined {
    return this.rttSamples[0]?.ms;
  }

  /** Requests that hold BDP_GAIN × the bandwidth-delay product (1 before there is an estimate). */
  bdpFloor(): number {
    const bw = this.goodput();
    if (!Number.isFinite(this.shortestEver) || bw === undefined || !(this.answerBytes > 0)) return 1;
    const bdpBytes = bw * (this.shortestEver / 1000);
    return Math.max(1, Math.min(this.max, Math.ceil((BDP_GAIN * bdpBytes) / this.answerBytes)));
  }

  private goodput(): number | undefined {
    return this.goodputRounds.length ? Math.max(...this.goodputRounds) : undefined;
  }
}

/** Slots background work may hold: all but one eighth of the window (at least one kept for demand). */
function backgroundLimit(limit: number): number {
  return limit <= 1 ? 1 : limit - Math.max(1, Math.floor(limit / 8));
}
