import type { IncomingHttpHeaders } from 'node:http';
import { BlockCorruptError, type BlockRef, MirrorUnavailableError } from '@thfc/format';
import type { Dispatcher } from 'undici';
import { LowSpeedError } from './low-speed-error.js';
import type { FetchOptions } from './urgency.js';

/**
 * A body is reported as dripping (FetchOptions.onStalling, a hedge at once)
 * when, STALLING_CHECK_MS or more after its headers, it has moved fewer bytes
 * than STALLING_FACTOR times the low-speed limit would in that time: the
 * tell-tale of a mirror's slow tail (issue 13 §3), seen long before the
 * low-speed limit itself could be sure. An ordinary body follows its headers
 * at the link's pace (the first TCP segments carry both), so at 1 KiB/s it
 * needs 205 bytes in the first 50 ms: a full segment is ~1,400. Only a link
 * slower than ~4 KiB/s per request in flight could be taken for one, and
 * then the cost is a hedge, which the hedge budget bounds. 50 ms is one
 * round trip of a continental link: the earlier it is seen, the less a
 * reader waits; a dripped block then costs about that plus one round trip.
 */
export const STALLING_CHECK_MS = 50;
export const STALLING_FACTOR = 4;

/**
 * A body we do not keep (an error page) is drained for the connection's sake
 * up to this many bytes, then the connection is dropped instead.
 */
const MAX_DRAINED_BYTES = 64 * 1024;

/** What came back for one request: the status and, for a block, exactly its stored bytes. */
export interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer | undefined;
}

/** What every exchange of one mirror shares: its name for errors, and the low-speed limit (0 bps: none). */
export interface WireLimits {
  readonly name: string;
  readonly lowSpeedBps: number;
  readonly lowSpeedTimeMs: number;
}

type Timer = ReturnType<typeof setInterval>;

/**
 * One request on the wire: dispatch() with this as its handler, which keeps
 * exactly the stored bytes of a 200 to a GET (a body of any other length is
 * BlockCorruptError), drains any other body up to MAX_DRAINED_BYTES, tells
 * `onStalling` once if the body drips and `onProgress` of its headers and of
 * each piece of it. It settles once, with the answer or with the first reason
 * it was stopped: the deadline, the low-speed limit, the caller's abort (the
 * signal's reason), a bad length, or the connection's error.
 */
export class WireExchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private failure: Error | undefined;
  private settled = false;
  private received = 0;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private body: Buffer | undefined;
  private drained = 0;
  /** When the headers came, for the drip judgement (0 while it is off). */
  private bodyFrom = 0;
  private deadline: Timer | undefined;
  private speedCheck: Timer | undefined;
  private dripCheck: Timer | undefined;
  private resolve!: (answer: Answer) => void;
  private reject!: (error: Error) => void;

  constructor(
    private readonly limits: WireLimits,
    private readonly method: 'GET' | 'HEAD',
    /** The block a GET fetches, whose stored bytes the body must be; none for a HEAD. */
    private readonly ref: BlockRef | undefined,
    private readonly timeoutMs: number,
    private readonly options: FetchOptions,
  ) {}

  /** Sends the request under the deadline, the low-speed limit and the caller's signal. */
  run(dispatcher: Dispatcher, origin: string, path: string): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const opened = performance.now();
      this.deadline = setTimeout(
        () => this.stop(new MirrorUnavailableError(this.limits.name, `timeout after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.speedCheck = this.watchLowSpeed(opened);
      this.options.signal?.addEventListener('abort', this, { once: true });
      try {
        dispatcher.dispatch({ origin, path, method: this.method }, this);
      } catch (e) {
        this.finish(e as Error);
      }
    });
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.stop(this.options.signal?.reason ?? new Error('aborted'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.failure) controller.abort(this.failure);
  }

  /** The head: a 200 to a GET of the right length gets a buffer of the stored size; anything else is drained. */
  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: the real answer follows
    this.status = statusCode;
    this.headers = headers;
    const ref = this.ref;
    if (this.method !== 'GET' || statusCode !== 200 || !ref) return;
    this.options.onProgress?.(0, ref.storedSize);
    const mismatch = contentLengthMismatch(headers['content-length'], ref, this.limits.name);
    if (mismatch) {
      this.stop(mismatch);
      return;
    }
    // Not from Buffer's shared slab: a cached small block would otherwise pin 8 KiB of unrelated bytes.
    this.body = Buffer.allocUnsafeSlow(ref.storedSize);
    const dripFloorBps = this.limits.lowSpeedBps * STALLING_FACTOR;
    if (this.options.onStalling && dripFloorBps > 0) {
      this.bodyFrom = performance.now();
      const judge = () => this.judgeDrip(dripFloorBps);
      this.dripCheck = setInterval(() => setImmediate(judge), STALLING_CHECK_MS);
    }
  }

  /** A piece of the body: into the block's buffer, never past its stored size, or drained. */
  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    const { body, ref } = this;
    if (body && ref) {
      if (this.received + chunk.length > ref.storedSize) {
        this.stop(new BlockCorruptError(ref.id, this.limits.name, `long body: more than ${ref.storedSize} bytes`));
        return;
      }
      chunk.copy(body, this.received);
    } else {
      this.drained += chunk.length;
      if (this.drained > MAX_DRAINED_BYTES) {
        // An error page this long is not worth keeping the connection for.
        this.stop(new MirrorUnavailableError(this.limits.name, statusWhy(this.answer())));
        return;
      }
    }
    this.received += chunk.length;
    if (body && ref) this.options.onProgress?.(this.received, ref.storedSize);
  }

  onResponseEnd(): void {
    const { body, ref } = this;
    if (body && ref && this.received !== ref.storedSize) {
      this.stop(
        new BlockCorruptError(
          ref.id,
          this.limits.name,
          `short body: ${this.received} bytes, the index says ${ref.storedSize}`,
        ),
      );
      return;
    }
    this.finish(undefined);
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    this.finish(this.failure ?? error);
  }

  /** Stops the exchange with `error` as its outcome (the first reason given wins). */
  private stop(error: Error): void {
    this.failure ??= error;
    if (this.controller && !this.controller.aborted) this.controller.abort(this.failure);
    this.finish(this.failure);
  }

  /** Settles once: the timers and the abort listener go, then the answer or the error. */
  private finish(error: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    clearInterval(this.speedCheck);
    clearInterval(this.dripCheck);
    this.options.signal?.removeEventListener('abort', this);
    if (error) this.reject(error);
    else this.resolve(this.answer());
  }

  private answer(): Answer {
    return { status: this.status, headers: this.headers, body: this.body };
  }

  /** Dripping: judged in the check phase, after the poll has read what already arrived. */
  private judgeDrip(dripFloorBps: number): void {
    if (this.settled || !this.body || !this.ref) return;
    if (this.received < (dripFloorBps * (performance.now() - this.bodyFrom)) / 1000) {
      clearInterval(this.dripCheck);
      this.options.onStalling?.();
    }
  }

  /** The low-speed limit, judged every half period over the last whole period: stops a transfer below it. */
  private watchLowSpeed(opened: number): Timer | undefined {
    const { name, lowSpeedBps, lowSpeedTimeMs } = this.limits;
    if (!(lowSpeedBps > 0)) return undefined;
    const half = lowSpeedTimeMs / 2;
    const floor = (lowSpeedBps * lowSpeedTimeMs) / 1000;
    const marks = [0, 0];
    return setInterval(() => {
      const moved = this.received - (marks[0] as number);
      marks.shift();
      marks.push(this.received);
      if (moved < floor && performance.now() - opened >= lowSpeedTimeMs) {
        const rate = Math.round(moved / (lowSpeedTimeMs / 1000));
        this.stop(
          new LowSpeedError(
            name,
            `too slow: ${rate} B/s over ${lowSpeedTimeMs / 1000} s (the low-speed limit is ${lowSpeedBps} B/s)`,
          ),
        );
      }
    }, half);
  }
}

/**
 * Why a block request failed, for the one-line fault. A mirror's block store
 * is served directly: a redirect per block would cost every block a second
 * round trip and a connection to another origin, so it is not followed, and
 * the message says where to point --mirror instead. (An index URL that
 * redirects is followed at mount, up to MAX_INDEX_REDIRECTS times, and
 * where it ends becomes the block base unless --mirror or --pool say otherwise.)
 */
export function statusWhy(answer: Answer): string {
  const location = answer.headers.location;
  if (answer.status >= 300 && answer.status < 400 && typeof location === 'string') {
    return `HTTP ${answer.status} redirect to ${location} (blocks are not fetched through redirects: give the store's own URL with --mirror)`;
  }
  return `HTTP ${answer.status}`;
}

/** The error for a 200 whose Content-Length is not the stored size the index gives; undefined when it agrees. */
function contentLengthMismatch(
  declared: string | string[] | undefined,
  ref: BlockRef,
  source: string,
): BlockCorruptError | undefined {
  if (typeof declared !== 'string' || Number(declared) === ref.storedSize) return undefined;
  const which = Number(declared) > ref.storedSize ? 'long' : 'short';
  return new BlockCorruptError(
    ref.id,
    source,
    `${which} body: Content-Length ${declared}, the index says ${ref.storedSize}`,
  );
}
