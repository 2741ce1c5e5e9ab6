import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSource,
  blockPath,
  InvalidArgumentError,
  MirrorUnavailableError,
} from '@thfc/format';
import { type Dispatcher, Pool } from 'undici';
import { type Logger, SILENT_LOGGER } from '../logger.js';
import { HedgeLost } from './hedge-lost.js';
import { LowSpeedError } from './low-speed-error.js';
import {
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_BYTES_IN_FLIGHT,
  DEFAULT_MAX_WINDOW,
  type ExchangeOutcome,
  RequestWindow,
  type WindowSnapshot,
} from './request-window.js';
import { currentPriority, type FetchOptions } from './urgency.js';
import { type Answer, statusWhy, WireExchange, type WireLimits } from './wire-exchange.js';

/**
 * A backstop for one HTTP exchange, counted from when it gets a slot in the
 * window (time spent queued behind this client's own requests is not the
 * mirror's fault). Failover passes a tighter per-attempt deadline
 * (FetchOptions.timeoutMs); this one only keeps a hung mirror from holding a
 * slot forever when HttpSource is used alone. 30 s moves a 256 KiB block even
 * at ~70 kbit/s.
 */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

/**
 * The low-speed limit, as CernVM-FS has it (CVMFS_LOW_SPEED_LIMIT, 1 KiB/s by
 * default there too): an exchange that moves fewer than 1,024 bytes per
 * second, counted over the last DEFAULT_LOW_SPEED_TIME_MS, is abandoned as
 * the mirror's failure. A 256 KiB block at that rate would take four minutes,
 * so nothing a user would wait for is cut; a mirror that drips bytes (a
 * dying disk, an overloaded proxy) is left within seconds instead of holding
 * a slot until the attempt's deadline. Headers count: a mirror that sends
 * nothing at all for that long is as slow as one that drips.
 */
export const DEFAULT_LOW_SPEED_BPS = 1024;

/**
 * Two seconds: longer than any round trip a user has (a geostationary hop is
 * ~0.6 s) plus a 256 KiB block's transfer at ~1 Mbit/s, short next to the
 * 10 s per-attempt deadline it undercuts.
 */
export const DEFAULT_LOW_SPEED_TIME_MS = 2_000;

/** One HTTP exchange as seen by the wire, for whoever keeps per-mirror statistics. */
export interface HttpResult {
  /** The exchange returned what was asked: the block's bytes (GET) or an answer (HEAD). */
  readonly ok: boolean;
  /** From getting a slot in the window to the end of the body. */
  readonly ms: number;
  /** Body bytes accepted (0 unless ok). */
  readonly bytes: number;
  /** The HTTP status, when the server sent one. */
  readonly status?: number;
  /** Why it was not ok: one of the three seam errors. */
  readonly error?: Error;
}

export interface HttpSourceComponents {
  /** Logs one verbose line per exchange (the wire view; failover logs the block view). */
  readonly logger?: Logger;
  /** Replaces the per-mirror keep-alive Pool, e.g. an undici ProxyAgent. HttpSource never closes it. */
  readonly dispatcher?: Dispatcher;
  /** Called after every exchange except those the caller aborted (an abort says nothing about the mirror). */
  readonly onResult?: (result: HttpResult) => void;
  /** ms clock for the window (tests). */
  readonly now?: () => number;
}

export interface HttpSourceOptions {
  /** The directory that holds `blocks/`, e.g. `http://127.0.0.1:8080/store`. */
  readonly baseUrl: string;
  /** Pins the request window at this many requests (`--connections N`); adaptive when not given. */
  readonly connections?: number | undefined;
  /** Upper bound of the adaptive window (`--max-connections`). */
  readonly maxConnections?: number | undefined;
  /** Where the adaptive window starts. */
  readonly initialConnections?: number | undefined;
  /** Stored bytes in flight at most, whatever the window. */
  readonly maxBytesInFlight?: number | undefined;
  readonly timeoutMs?: number | undefined;
  /** The low-speed limit in bytes per second (0 turns it off), and over how long it is judged. */
  readonly lowSpeedBps?: number | undefined;
  readonly lowSpeedTimeMs?: number | undefined;
  /**
   * Offer HTTP/2 when the mirror is https (ALPN decides): every request of the
   * window becomes a stream of one connection instead of a connection each.
   */
  readonly http2?: boolean | undefined;
}

/**
 * One HTTP mirror: `GET <base>/blocks/ab/<id>`, read-only.
 *
 * Errors: 404 and 410 are BlockNotFoundError; a body longer or shorter than
 * the index's stored size is BlockCorruptError (the body is never read past
 * storedSize bytes); any other status, a connection error, a reset, the
 * deadline or the low-speed limit is MirrorUnavailableError naming this
 * mirror and the reason. It does not verify content: wrap it in verified().
 * The caller's abort rejects with the signal's reason.
 *
 * Scheduling is its RequestWindow's: demand first, background never in the
 * last slot, a raised background request moved up; the window's size adapts
 * to the link (or is pinned by `connections`), shrinks on timeouts, resets,
 * 5xx and 429, and pauses for a `Retry-After`. The deadline of an exchange
 * starts when it gets its slot.
 *
 * Bodies are read with undici's dispatch() straight into one buffer of the
 * stored size: no stream, no async iterator, no chunk list.
 */
export class HttpSource implements BlockSource {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly prefix: string;
  private readonly name: string;
  private readonly timeoutMs: number;
  /** The name and low-speed limit every exchange on the wire shares. */
  private readonly wire: WireLimits;
  private readonly logger: Logger;
  private readonly onResult: ((result: HttpResult) => void) | undefined;
  private readonly dispatcher: Dispatcher;
  private readonly ownPool: Pool | undefined;
  private readonly window: RequestWindow;
  private closing: Promise<void> | undefined;

  constructor(components: HttpSourceComponents, options: HttpSourceOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new InvalidArgumentError(`bad mirror URL "${options.baseUrl}"`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(`bad mirror URL "${options.baseUrl}": expected http: or https:`);
    }
    if (url.search || url.hash) {
      throw new InvalidArgumentError(`bad mirror URL "${options.baseUrl}": a mirror URL names a directory, no ? or #`);
    }
    this.origin = url.origin;
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = this.origin + this.prefix;
    this.name = `http(${this.baseUrl})`;

    const whole = (what: string, v: number | undefined) => {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
        throw new InvalidArgumentError(`${what} must be a whole number ≥ 1, not ${v}`);
      }
    };
    whole('connections', options.connections);
    whole('max connections', options.maxConnections);
    whole('initial connections', options.initialConnections);
    this.window = new RequestWindow(
      { now: components.now },
      {
        pinned: options.connections,
        max: options.maxConnections ?? DEFAULT_MAX_WINDOW,
        initial: options.initialConnections ?? DEFAULT_INITIAL_WINDOW,
        maxBytes: options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT,
      },
    );
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new InvalidArgumentError(`timeoutMs must be > 0, not ${this.timeoutMs}`);
    const lowSpeedBps = options.lowSpeedBps ?? DEFAULT_LOW_SPEED_BPS;
    const lowSpeedTimeMs = options.lowSpeedTimeMs ?? DEFAULT_LOW_SPEED_TIME_MS;
    if (!(lowSpeedBps >= 0) || !(lowSpeedTimeMs > 0)) {
      throw new InvalidArgumentError(`bad low-speed limit: ${lowSpeedBps} B/s over ${lowSpeedTimeMs} ms`);
    }
    this.wire = { name: this.name, lowSpeedBps, lowSpeedTimeMs };

    this.logger = components.logger ?? SILENT_LOGGER;
    this.onResult = components.onResult;
    if (components.dispatcher) {
      this.dispatcher = components.dispatcher;
    } else {
      const slots = options.connections ?? options.maxConnections ?? DEFAULT_MAX_WINDOW;
      // One connection per slot the window can ever grant: undici opens them as the window grows. With http2, one
      // connection carries every slot, as HTTP/2 streams (or, if the mirror only speaks HTTP/1.1, pipelined on it):
      // a pool would open more connections while the first is still in its TLS handshake.
      this.ownPool =
        options.http2 === true && url.protocol === 'https:'
          ? new Pool(this.origin, { connections: 1, allowH2: true, pipelining: slots })
          : new Pool(this.origin, { connections: slots });
      this.dispatcher = this.ownPool;
    }
  }

  async get(ref: BlockRef, options: FetchOptions = {}): Promise<Uint8Array> {
    const frame = { bytes: ref.storedSize, onSent: options.onSent, aborted: abortOutcome };
    return this.windowed('GET', ref, ref, options, frame, (answer, ms, weigh) => {
      if (answer.status === 200 && answer.body) {
        weigh({ kind: 'answer', bytes: answer.body.length, ms });
        return answer.body;
      }
      if (answer.status === 404 || answer.status === 410) {
        weigh({ kind: 'answer', bytes: 0, ms });
        throw new BlockNotFoundError(ref.id, this.name);
      }
      weigh(statusOutcome(answer));
      throw new MirrorUnavailableError(this.name, statusWhy(answer));
    });
  }

  /** HEAD: true on 200, false on 404/410, MirrorUnavailableError otherwise. */
  async has(ref: BlockRef, options: FetchOptions = {}): Promise<boolean> {
    const frame = { bytes: 0, onSent: undefined, aborted: (): ExchangeOutcome => ({ kind: 'neutral' }) };
    return this.windowed('HEAD', ref, undefined, options, frame, (answer, ms, weigh) => {
      if (answer.status === 200 || answer.status === 404 || answer.status === 410) {
        weigh({ kind: 'answer', bytes: 0, ms });
        return answer.status === 200;
      }
      weigh(statusOutcome(answer));
      throw new MirrorUnavailableError(this.name, statusWhy(answer));
    });
  }

  /**
   * One exchange about `ref`'s block in a slot of the request window, sized
   * `frame.bytes`; `frame.onSent` is told once the slot is granted. The slot
   * is given back with the exchange's outcome: what `judge` weighed the
   * answer as, else failureOutcome() of what was thrown, or, when the caller
   * aborted, `frame.aborted`.
   */
  private async windowed<R>(
    method: 'GET' | 'HEAD',
    ref: BlockRef,
    body: BlockRef | undefined,
    options: FetchOptions,
    frame: {
      bytes: number;
      onSent: (() => void) | undefined;
      aborted: (signal: AbortSignal) => ExchangeOutcome;
    },
    judge: (answer: Answer, ms: number, weigh: (outcome: ExchangeOutcome) => void) => R,
  ): Promise<R> {
    const path = `${this.prefix}/${blockPath(ref.id)}`;
    const slot = await this.window.acquire(currentPriority(options), frame.bytes, options.signal, options.urgency);
    frame.onSent?.();
    let outcome: ExchangeOutcome = { kind: 'neutral' };
    const weigh = (o: ExchangeOutcome) => {
      outcome = o;
    };
    try {
      return await this.exchange(method, path, body, options, (answer, ms) => judge(answer, ms, weigh));
    } catch (e) {
      if (outcome.kind === 'neutral') outcome = failureOutcome(e);
      throw e;
    } finally {
      slot.done(options.signal?.aborted ? frame.aborted(options.signal) : outcome);
    }
  }

  /** The request window's state, for stats. */
  windowSnapshot(): WindowSnapshot {
    return this.window.snapshot();
  }

  /**
   * Rejects queued requests, lets those in flight finish, and closes the pool
   * (never an injected dispatcher). Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.window.close(new MirrorUnavailableError(this.name, 'closed'));
      this.closing = this.ownPool?.close() ?? Promise.resolve();
    }
    return this.closing;
  }

  toString(): string {
    return this.name;
  }

  /**
   * One request under the deadline (from now: the slot is held), the
   * low-speed limit and the caller's signal. `judge` turns the answer into a
   * value or a seam error; anything else thrown (connection refused, reset,
   * timeout) becomes MirrorUnavailableError, except the caller's abort, which
   * rejects with the signal's reason.
   */
  private async exchange<R>(
    method: 'GET' | 'HEAD',
    path: string,
    ref: BlockRef | undefined,
    options: FetchOptions,
    judge: (answer: Answer, ms: number) => R,
  ): Promise<R> {
    const { signal } = options;
    signal?.throwIfAborted();
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const started = performance.now();
    let status: number | undefined;
    try {
      const answer = await new WireExchange(this.wire, method, ref, timeoutMs, options).run(
        this.dispatcher,
        this.origin,
        path,
      );
      status = answer.status;
      const ms = performance.now() - started;
      const value = judge(answer, ms);
      this.report(method, path, { ok: true, ms, bytes: answer.body?.length ?? 0, status });
      return value;
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      const error = this.seamError(e);
      this.report(method, path, { ok: false, ms: performance.now() - started, bytes: 0, status, error });
      throw error;
    }
  }

  private seamError(e: unknown): Error {
    if (e instanceof BlockNotFoundError || e instanceof BlockCorruptError || e instanceof MirrorUnavailableError) {
      return e;
    }
    return new MirrorUnavailableError(this.name, describeNetworkError(e), { cause: e });
  }

  private report(method: string, path: string, result: HttpResult): void {
    const ms = result.ms.toFixed(1);
    this.logger.verbose(
      result.ok
        ? `${method} ${this.origin}${path}: ${result.status}, ${result.bytes} bytes in ${ms} ms`
        : `${method} ${this.origin}${path}: ${result.error?.message} after ${ms} ms`,
    );
    this.onResult?.(result);
  }
}

/**
 * An exchange its caller aborted says nothing about load, unless it lost to
 * its hedge: then it was in the tail. A hedge that lost was merely second.
 */
function abortOutcome(signal: AbortSignal): ExchangeOutcome {
  const reason: unknown = signal.reason;
  return reason instanceof HedgeLost && !reason.wasHedge ? { kind: 'stalled' } : { kind: 'neutral' };
}

/** How the window weighs an exchange that threw `e`: a stall, congestion (any other unavailability), or nothing. */
function failureOutcome(e: unknown): ExchangeOutcome {
  if (e instanceof LowSpeedError) return { kind: 'stalled' };
  return e instanceof MirrorUnavailableError ? { kind: 'congestion' } : { kind: 'neutral' };
}

/** A status other than 200/404/410: 429 and 5xx are congestion (with any Retry-After); the rest say nothing about load. */
function statusOutcome(answer: Answer): ExchangeOutcome {
  if (answer.status === 429 || answer.status >= 500) {
    return { kind: 'congestion', retryAfterMs: retryAfterMs(answer.headers['retry-after']) };
  }
  return { kind: 'neutral' };
}

/** `Retry-After` as ms from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); undefined when absent or bad. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A connection failure as a short reason: the message, with the code when the
 * message lacks it. Node's happy-eyeballs connect failures are AggregateErrors
 * with an empty message, so their first inner error speaks for them.
 */
function describeNetworkError(e: unknown): string {
  const err = e instanceof AggregateError && !e.message && e.errors.length > 0 ? e.errors[0] : e;
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code ?? (e as NodeJS.ErrnoException)?.code;
  const message = err.message || code || err.name;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
