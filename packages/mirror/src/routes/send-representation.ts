import { read } from 'node:fs';
import type { BufferPool } from '../buffer-pool.js';
import type { Metrics } from '../metrics.js';
import type { OpenFile } from '../regular-file.js';
import { etagMatches, ifRangeAllows, parseRange } from './conditional.js';
import type { Exchange } from './exchange.js';

/** What the headers of a served file say; the body comes from a descriptor or a buffer. */
export interface Representation {
  readonly size: number;
  /** Quoted strong validator, e.g. `"ab12…"`. */
  readonly etag: string;
  readonly contentType: string;
  readonly cacheControl: string;
  /** More headers, as a flat [name, value, …] list. */
  readonly extra?: readonly string[];
}

export interface SendComponents {
  readonly pool: BufferPool;
  readonly metrics: Metrics;
}

/**
 * Answers a GET or HEAD for one representation: 304 when If-None-Match
 * names its ETag, 416 for an unsatisfiable single range, 206 for a
 * satisfiable one (unless If-Range names another version), else 200. The
 * body streams from `file` in pooled chunks with backpressure, so memory per
 * response is one chunk whatever the file's size. `done` runs exactly once,
 * when the descriptor is no longer needed (sent, refused or aborted).
 */
export function sendFile(
  ex: Exchange,
  rep: Representation,
  file: OpenFile,
  components: SendComponents,
  done: () => void,
): void {
  const range = writeHeaders(ex, rep);
  if (range === undefined) {
    done();
    return;
  }
  streamFd(ex, file.fd, range.start, range.length, components, done);
}

/** As sendFile, for bytes already in memory (a block just pulled through). */
export function sendBuffer(ex: Exchange, rep: Representation, body: Uint8Array): void {
  const range = writeHeaders(ex, rep);
  if (range === undefined) return;
  ex.bytes += range.length;
  ex.res.end(body.subarray(range.start, range.start + range.length));
}

/** Writes the status and headers; returns the body range to send, or undefined when there is no body. */
function writeHeaders(ex: Exchange, rep: Representation): { start: number; length: number } | undefined {
  const { req, res } = ex;
  const validators = ['etag', rep.etag, 'cache-control', rep.cacheControl];
  if (etagMatches(req.headers['if-none-match'], rep.etag)) {
    res.writeHead(304, validators);
    res.end();
    return undefined;
  }
  const range = ifRangeAllows(req.headers['if-range'] as string | undefined, rep.etag)
    ? parseRange(req.headers.range, rep.size)
    : { kind: 'full' as const };
  if (range.kind === 'unsatisfiable') {
    ex.reply(416, 'range not satisfiable\n', { 'content-range': `bytes */${rep.size}` });
    return undefined;
  }
  const headers = [
    'content-type',
    rep.contentType,
    'content-length',
    '',
    ...validators,
    'accept-ranges',
    'bytes',
    ...(rep.extra ?? []),
  ];
  let start = 0;
  let length = rep.size;
  if (range.kind === 'partial') {
    start = range.start;
    length = range.end - range.start + 1;
    headers.push('content-range', `bytes ${range.start}-${range.end}/${rep.size}`);
  }
  headers[3] = String(length);
  res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
  if (ex.head || length === 0) {
    res.end();
    return undefined;
  }
  return { start, length };
}

/**
 * Reads [start, start + length) from `fd` a pooled chunk at a time and
 * writes it to the response, waiting for 'drain' when the socket is full. A
 * chunk returns to the pool only from its write callback, once the socket is
 * done with it. A client that goes away stops the loop at the next step; a
 * read error cuts the response (the length was promised, so nothing else is
 * honest) and counts as an `io` error. The loop ends with the exchange, not
 * with res 'close', which a queued pipelined response never emits.
 */
function streamFd(
  ex: Exchange,
  fd: number,
  start: number,
  length: number,
  { pool, metrics }: SendComponents,
  done: () => void,
): void {
  const res = ex.res;
  const end = start + length;
  let pos = start;
  let reading = false;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  const onClose = () => {
    if (!reading) finish();
  };
  const next = () => {
    if (ex.closed || res.destroyed) {
      finish();
      return;
    }
    const buf = pool.take();
    reading = true;
    read(fd, buf, 0, Math.min(buf.length, end - pos), pos, (err, n) => {
      reading = false;
      if (err || n === 0) {
        pool.give(buf);
        finish();
        metrics.error('io');
        res.destroy(err ?? new Error('file shorter than its size'));
        return;
      }
      if (ex.closed || res.destroyed) {
        pool.give(buf);
        finish();
        return;
      }
      pos += n;
      ex.bytes += n;
      const chunk = n === buf.length ? buf : buf.subarray(0, n);
      const giveBack = (e?: Error | null) => {
        if (!e) pool.give(buf);
      };
      if (pos >= end) {
        finish();
        res.end(chunk, giveBack);
      } else if (res.write(chunk, giveBack)) next();
      else res.once('drain', next);
    });
  };
  ex.whenClosed(onClose);
  next();
}
