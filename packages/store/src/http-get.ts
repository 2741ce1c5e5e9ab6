import { EXIT, InputError, MirrorUnavailableError, ThfcError } from '@thfc/format';
import { type Dispatcher, request } from 'undici';

/** The server answered with a status the caller did not expect: it could not answer this request. */
export class HttpStatusError extends MirrorUnavailableError {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(url, `HTTP ${status}`);
  }
}

/** No answer (headers and body) within the timeout. */
export class HttpTimeoutError extends MirrorUnavailableError {
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(url, `no answer within ${timeoutMs} ms`, options);
  }
}

/** A body longer than the caller's bound: the server sent something other than what was asked for. */
export class ResponseTooLargeError extends ThfcError {
  readonly code = 'ERR_RESPONSE_TOO_LARGE';
  readonly exitCode: number = EXIT.DATA;
  constructor(
    readonly url: string,
    readonly maxBytes: number,
  ) {
    super(`${url}: larger than ${maxBytes} bytes`);
  }
}

export interface HttpGetOptions {
  /** The whole exchange, headers and body, ends within this or fails with HttpTimeoutError. */
  readonly timeoutMs: number;
  /** Aborting rejects with the signal's reason, not a thfc error. */
  readonly signal?: AbortSignal | undefined;
  /** The pool to send through (tests, a mount's own agent); undici's global dispatcher otherwise. */
  readonly dispatcher?: Dispatcher | undefined;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** A validator from an earlier response: ask only for a changed body (If-None-Match); a 304 says unchanged. */
  readonly etag?: string | undefined;
  /**
   * Redirects followed (redirectTarget), all within the one timeout; more is
   * MirrorUnavailableError. Default 0: a redirect is answered like any other
   * status.
   */
  readonly maxRedirects?: number | undefined;
}

/** A response whose body is still to be read, with the deadline that bounds reading it. */
export interface HttpResponse {
  /** Where the response came from, after redirects. */
  readonly url: string;
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Dispatcher.ResponseData['body'];
  /** The caller's signal and the timeout: pass it to whatever consumes the body. */
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly callerSignal: AbortSignal | undefined;
}

/**
 * Sends one GET, following at most `maxRedirects` redirects, and resolves to
 * the response, whatever its status, its body unread: read it with
 * readBody() or consumeBody(), or drop it with discardBody().
 * MirrorUnavailableError when there is no answer (HttpTimeoutError past
 * `timeoutMs`; otherwise the connection error's code) or too many redirects;
 * InputError for a redirect redirectTarget refuses; the caller's abort
 * rejects with its reason.
 */
export async function httpGet(given: string, options: HttpGetOptions): Promise<HttpResponse> {
  const { timeoutMs, signal: callerSignal } = options;
  const signal = callerSignal
    ? AbortSignal.any([callerSignal, AbortSignal.timeout(timeoutMs)])
    : AbortSignal.timeout(timeoutMs);
  let headers = options.headers;
  if (options.etag !== undefined) headers = { ...headers, 'if-none-match': options.etag };
  const maxRedirects = options.maxRedirects ?? 0;
  let url = given;
  for (let redirects = 0; ; redirects++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        signal,
        dispatcher: options.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (e) {
      throw unanswered(url, e, signal, timeoutMs, callerSignal);
    }
    const response = {
      url,
      statusCode: res.statusCode,
      headers: res.headers,
      body: res.body,
      signal,
      timeoutMs,
      callerSignal,
    };
    let next: string | undefined;
    try {
      next = maxRedirects > 0 ? redirectTarget(url, res) : undefined;
    } catch (e) {
      await discardBody(response);
      throw e;
    }
    if (next === undefined) return response;
    await discardBody(response);
    if (redirects >= maxRedirects)
      throw new MirrorUnavailableError(given, `more than ${maxRedirects} redirects (last to ${next})`);
    url = next;
  }
}

/**
 * Where a 301/302/303/307/308 with a Location points, resolved against the
 * URL asked; undefined for any other answer. A redirect to anything but
 * http(s), or from https to http, is refused (InputError): a URL a user gave
 * must not reach file:// or the clear through a server's say-so.
 */
export function redirectTarget(
  url: string,
  res: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers'>,
): string | undefined {
  if (![301, 302, 303, 307, 308].includes(res.statusCode)) return undefined;
  const location = res.headers.location;
  if (typeof location !== 'string' || location === '') return undefined;
  let next: URL;
  try {
    next = new URL(location, url);
  } catch {
    throw new InputError(`${url}: HTTP ${res.statusCode} to an unparsable location "${location.slice(0, 200)}"`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:')
    throw new InputError(`${url}: HTTP ${res.statusCode} to ${next.protocol} URL, not followed`);
  // Asked for over https, it must not arrive in the clear because a server said so.
  if (new URL(url).protocol === 'https:' && next.protocol === 'http:')
    throw new InputError(`${url}: HTTP ${res.statusCode} from https to ${next.href}, not followed`);
  next.hash = '';
  return next.href;
}

/**
 * The body, read whole and bounded: ResponseTooLargeError past `maxBytes`
 * (the rest is not read); the errors of consumeBody() otherwise.
 */
export function readBody(res: HttpResponse, maxBytes: number): Promise<Buffer> {
  return consumeBody(
    res,
    async (body) => {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk);
      return Buffer.concat(chunks);
    },
    { maxBytes },
  );
}

/**
 * Runs `consume` over the body (a bounded decoder, a file being written).
 * With `maxBytes`, the body is bounded: ResponseTooLargeError before anything
 * is read when the server declares more (Content-Length), and as soon as it
 * has sent more; the excess never reaches `consume`. A thfc error `consume`
 * throws passes through and the rest of the body is dropped unread; a body
 * cut short is MirrorUnavailableError, one that stops for `timeoutMs`
 * HttpTimeoutError; the caller's abort rejects with its reason.
 */
export async function consumeBody<T>(
  res: HttpResponse,
  consume: (body: AsyncIterable<Buffer>) => Promise<T>,
  options: { maxBytes?: number | undefined } = {},
): Promise<T> {
  try {
    const { maxBytes } = options;
    const body = res.body as AsyncIterable<Buffer>;
    return await consume(maxBytes === undefined ? body : bounded(res, body, maxBytes));
  } catch (e) {
    // Refused before the first read (a Content-Length over maxBytes), the body has no reader: the AbortError
    // that destroying it emits would go unhandled and end the process.
    res.body.on('error', () => {});
    res.body.destroy();
    if (e instanceof ThfcError) throw e;
    throw unanswered(res.url, e, res.signal, res.timeoutMs, res.callerSignal, 'body');
  }
}

/** `body`, ending in ResponseTooLargeError once more than `maxBytes` is declared or has arrived. */
async function* bounded(res: HttpResponse, body: AsyncIterable<Buffer>, maxBytes: number): AsyncIterable<Buffer> {
  if (Number(res.headers['content-length']) > maxBytes) throw new ResponseTooLargeError(res.url, maxBytes);
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > maxBytes) throw new ResponseTooLargeError(res.url, maxBytes);
    yield chunk;
  }
}

/** Reads and drops a body that is not wanted, so the connection can serve the next request. */
export async function discardBody(res: HttpResponse): Promise<void> {
  await res.body.dump().catch(() => {});
}

export interface GetBoundedOptions extends HttpGetOptions {
  /** The largest body taken (ResponseTooLargeError beyond). */
  readonly maxBytes: number;
  /** Statuses that mean "there is none" (404, 410): getBounded resolves undefined for them. */
  readonly absent?: readonly number[] | undefined;
}

/**
 * GET `url` and read its body whole: the bytes of a 200, undefined for a
 * status in `absent`, HttpStatusError for any other; the errors of httpGet()
 * and readBody() otherwise.
 */
export async function getBounded(url: string, options: GetBoundedOptions): Promise<Buffer | undefined> {
  const res = await httpGet(url, options);
  if (res.statusCode !== 200) {
    await discardBody(res);
    if (options.absent?.includes(res.statusCode)) return undefined;
    throw new HttpStatusError(url, res.statusCode);
  }
  return readBody(res, options.maxBytes);
}

/** What failed to arrive, as a thfc error; the caller's abort as its own reason. */
function unanswered(
  url: string,
  e: unknown,
  signal: AbortSignal,
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  part: 'answer' | 'body' = 'answer',
): unknown {
  if (callerSignal?.aborted) return callerSignal.reason;
  const code = (e as { code?: string }).code;
  if (signal.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new HttpTimeoutError(url, timeoutMs, { cause: e });
  }
  // A refused or reset connection is best named by its code (ECONNREFUSED); a cut body by what undici saw.
  const why = part === 'body' ? `body: ${(e as Error).message}` : (code ?? (e as Error).message);
  return new MirrorUnavailableError(url, why, { cause: e });
}
