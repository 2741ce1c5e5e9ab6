import {
  BlockCorruptError,
  BlockNotFoundError,
  type BlockRef,
  type BlockSource,
  blockPath,
  InvalidArgumentError,
  MirrorUnavailableError,
  type SourceOptions,
} from '@thfc/format';
import { type Dispatcher, Pool } from 'undici';
import { type Logger, SILENT_LOGGER } from '../logger.js';
import { currentPriority, type FetchOptions, type Priority, type Urgency } from './urgency.js';

/**
 * Requests in flight per mirror: the original's MAXCONNECTION. On the
 * measured machine 4–8 concurrent requests give ~1.6× the block rate of one
 * (limits.md: e2e 1066 → ~1700 blocks/s) and more buys nothing; a public
 * mirror should not see one client open dozens of connections.
 */
export const DEFAULT_CONNECTIONS = 4;

/**
 * A backstop for one HTTP exchange, counted from when it gets a connection
 * slot (time spent queued behind this client's own requests is not the
 * mirror's fault). Failover sets a tighter per-attempt deadline; this one only
 * keeps a hung mirror from holding a slot forever when HttpSource is used
 * alone. 30 s moves a 256 KiB block even at ~70 kbit/s.
 */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

/** One HTTP exchange as seen by the wire, for whoever keeps per-mirror statistics. */
export interface HttpResult {
  /** The exchange returned what was asked: the block's bytes (GET) or an answer (HEAD). */
  readonly ok: boolean;
  /** From getting a connection slot to the end of the body. */
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
}

export interface HttpSourceOptions {
  /** The directory that holds `blocks/`, e.g. `http://127.0.0.1:8080/store`. */
  readonly baseUrl: string;
  readonly connections?: number;
  readonly timeoutMs?: number;
}

interface Waiter {
  /** Rises to demand when a background request's Urgency is raised while it waits. */
  priority: Priority;
  grant(): void;
  fail(error: unknown): void;
}

/**
 * One HTTP mirror: `GET <base>/blocks/ab/<id>`, read-only.
 *
 * Errors: 404 and 410 are BlockNotFoundError; a body longer or shorter than
 * the index's stored size is BlockCorruptError (the body is never read past
 * storedSize + 1 bytes); any other status, a connection error, a reset or the
 * timeout is MirrorUnavailableError naming this mirror and the reason. It does
 * not verify content: wrap it in verified(). The caller's abort rejects with
 * the signal's reason.
 *
 * Scheduling: at most `connections` exchanges in flight. Demand requests are
 * served first-come; background requests (read-ahead, prefetch) start only
 * when no demand request is queued and never hold more than connections − 1
 * slots, so a demand read waits for at most the exchanges already in flight,
 * never behind queued read-ahead. (With connections = 1 background may take
 * the one slot, since it would otherwise never run.) A queued background
 * request whose Urgency is raised (a reader now waits on that block) moves to
 * the back of the demand queue; one already on the wire just runs on.
 */
export class HttpSource implements BlockSource {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly prefix: string;
  private readonly name: string;
  private readonly connections: number;
  private readonly backgroundSlots: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly onResult: ((result: HttpResult) => void) | undefined;
  private readonly dispatcher: Dispatcher;
  private readonly ownPool: Pool | undefined;

  private inFlight = 0;
  private backgroundInFlight = 0;
  private readonly demandQueue: Waiter[] = [];
  private readonly backgroundQueue: Waiter[] = [];
  private closed = false;
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

    this.connections = options.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isInteger(this.connections) || this.connections < 1) {
      throw new InvalidArgumentError(`connections must be a whole number ≥ 1, not ${this.connections}`);
    }
    this.backgroundSlots = Math.max(1, this.connections - 1);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
    if (!(this.timeoutMs > 0)) throw new InvalidArgumentError(`timeoutMs must be > 0, not ${this.timeoutMs}`);

    this.logger = components.logger ?? SILENT_LOGGER;
    this.onResult = components.onResult;
    if (components.dispatcher) {
      this.dispatcher = components.dispatcher;
    } else {
      this.ownPool = new Pool(this.origin, { connections: this.connections });
      this.dispatcher = this.ownPool;
    }
  }

  async get(ref: BlockRef, options: FetchOptions = {}): Promise<Uint8Array> {
    const path = `${this.prefix}/${blockPath(ref.id)}`;
    const priority = await this.acquire(currentPriority(options), options.signal, options.urgency);
    try {
      return await this.exchange('GET', path, options.signal, async (res, accepted) => {
        if (res.statusCode !== 200) {
          await res.body.dump();
          if (res.statusCode === 404 || res.statusCode === 410) throw new BlockNotFoundError(ref.id, this.name);
          throw new MirrorUnavailableError(this.name, statusWhy(res));
        }
        const stored = await this.readBody(ref, res);
        accepted(stored.length);
        return stored;
      });
    } finally {
      this.release(priority);
    }
  }

  /** HEAD: true on 200, false on 404/410, MirrorUnavailableError otherwise. */
  async has(ref: BlockRef, options: SourceOptions = {}): Promise<boolean> {
    const path = `${this.prefix}/${blockPath(ref.id)}`;
    const priority = await this.acquire(options.priority ?? 'demand', options.signal);
    try {
      return await this.exchange('HEAD', path, options.signal, async (res, accepted) => {
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 404 || res.statusCode === 410) {
          accepted(0);
          return res.statusCode === 200;
        }
        throw new MirrorUnavailableError(this.name, statusWhy(res));
      });
    } finally {
      this.release(priority);
    }
  }

  /**
   * Rejects queued requests, lets those in flight finish, and closes the pool
   * (never an injected dispatcher). Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      for (const waiter of this.demandQueue.splice(0).concat(this.backgroundQueue.splice(0))) {
        waiter.fail(new MirrorUnavailableError(this.name, 'closed'));
      }
      this.closing = this.ownPool?.close() ?? Promise.resolve();
    }
    return this.closing;
  }

  toString(): string {
    return this.name;
  }

  /**
   * Reads exactly storedSize bytes into one buffer of its own. A
   * Content-Length that disagrees fails before reading; without one, reading
   * stops as soon as the body passes storedSize.
   */
  private async readBody(ref: BlockRef, res: Dispatcher.ResponseData): Promise<Uint8Array> {
    const declared = res.headers['content-length'];
    if (typeof declared === 'string' && Number(declared) !== ref.storedSize) {
      discard(res.body);
      const which = Number(declared) > ref.storedSize ? 'long' : 'short';
      throw new BlockCorruptError(
        ref.id,
        this.name,
        `${which} body: Content-Length ${declared}, the index says ${ref.storedSize}`,
      );
    }
    // Not from Buffer's shared slab: a cached small block would otherwise pin 8 KiB of unrelated bytes.
    const out = Buffer.allocUnsafeSlow(ref.storedSize);
    let n = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (n + chunk.length > ref.storedSize) {
        // Leaving the loop destroys the body, which aborts the rest of the transfer.
        throw new BlockCorruptError(ref.id, this.name, `long body: more than ${ref.storedSize} bytes`);
      }
      chunk.copy(out, n);
      n += chunk.length;
    }
    if (n !== ref.storedSize) {
      throw new BlockCorruptError(ref.id, this.name, `short body: ${n} bytes, the index says ${ref.storedSize}`);
    }
    return out;
  }

  /**
   * One request under this mirror's deadline and the caller's signal. `read`
   * turns the response into a value or a seam error; anything else thrown
   * (connection refused, reset, timeout) becomes MirrorUnavailableError,
   * except the caller's abort, which rejects with the signal's reason.
   */
  private async exchange<R>(
    method: 'GET' | 'HEAD',
    path: string,
    signal: AbortSignal | undefined,
    read: (res: Dispatcher.ResponseData, accepted: (bytes: number) => void) => Promise<R>,
  ): Promise<R> {
    signal?.throwIfAborted();
    const deadline = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      deadline.abort(new MirrorUnavailableError(this.name, `timeout after ${this.timeoutMs} ms`));
    }, this.timeoutMs);
    const onAbort = () => deadline.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const started = performance.now();
    let status: number | undefined;
    let bytes = 0;
    try {
      const res = await this.dispatcher.request({ origin: this.origin, path, method, signal: deadline.signal });
      status = res.statusCode;
      const value = await read(res, (n) => {
        bytes = n;
      });
      this.report(method, path, { ok: true, ms: performance.now() - started, bytes, status });
      return value;
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      const error = this.seamError(e, timedOut);
      this.report(method, path, { ok: false, ms: performance.now() - started, bytes: 0, status, error });
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  private seamError(e: unknown, timedOut: boolean): Error {
    if (e instanceof BlockNotFoundError || e instanceof BlockCorruptError) return e;
    if (timedOut) return new MirrorUnavailableError(this.name, `timeout after ${this.timeoutMs} ms`, { cause: e });
    if (e instanceof MirrorUnavailableError) return e;
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

  /** Waits for a slot; resolves to the priority the slot was taken at (a raised request's is demand). */
  private acquire(priority: Priority, signal: AbortSignal | undefined, urgency?: Urgency): Promise<Priority> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.closed) return Promise.reject(new MirrorUnavailableError(this.name, 'closed'));
    if (this.mayStart(priority)) {
      this.start(priority);
      return Promise.resolve(priority);
    }
    return new Promise<Priority>((resolve, reject) => {
      const queueOf = (w: Waiter) => (w.priority === 'demand' ? this.demandQueue : this.backgroundQueue);
      let stopListening = () => {};
      const leave = () => {
        signal?.removeEventListener('abort', onAbort);
        stopListening();
      };
      const onAbort = () => {
        const queue = queueOf(waiter);
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        leave();
        reject(signal?.reason);
        this.pump();
      };
      const waiter: Waiter = {
        priority,
        grant: () => {
          leave();
          resolve(waiter.priority);
        },
        fail: (error) => {
          leave();
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queueOf(waiter).push(waiter);
      if (priority === 'background' && urgency) {
        stopListening = urgency.onRaise(() => {
          const at = this.backgroundQueue.indexOf(waiter);
          if (at < 0) return; // granted already: on the wire, nothing to move
          this.backgroundQueue.splice(at, 1);
          waiter.priority = 'demand';
          this.demandQueue.push(waiter);
          this.pump();
        });
      }
    });
  }

  /** Whether a new request may start now without overtaking anyone who should go first. */
  private mayStart(priority: Priority): boolean {
    if (this.inFlight >= this.connections || this.demandQueue.length > 0) return false;
    if (priority === 'demand') return true;
    return this.backgroundQueue.length === 0 && this.backgroundInFlight < this.backgroundSlots;
  }

  private start(priority: Priority): void {
    this.inFlight++;
    if (priority === 'background') this.backgroundInFlight++;
  }

  private release(priority: Priority): void {
    this.inFlight--;
    if (priority === 'background') this.backgroundInFlight--;
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.connections) {
      const next =
        this.demandQueue.shift() ??
        (this.backgroundInFlight < this.backgroundSlots ? this.backgroundQueue.shift() : undefined);
      if (!next) return;
      this.start(next.priority);
      next.grant();
    }
  }
}

/** Drops a body we will not read, without an unhandled 'error' from undici's abort. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
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

/**
 * Why a block request failed, for the one-line fault. A mirror's block store
 * is served directly: a redirect per block would cost every block a second
 * round trip and a connection to another origin, so it is not followed, and
 * the message says where to point --mirror instead. (An index URL that
 * redirects is followed at mount, up to MAX_INDEX_REDIRECTS times, and
 * where it ends becomes the block base unless --mirror or --pool say otherwise.)
 */
function statusWhy(res: Dispatcher.ResponseData): string {
  const location = res.headers.location;
  if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
    return `HTTP ${res.statusCode} redirect to ${location} (blocks are not fetched through redirects: give the store's own URL with --mirror)`;
  }
  return `HTTP ${res.statusCode}`;
}
