/** Conditional and partial requests (RFC 9110 §13–14): If-None-Match, If-Range and a single byte Range. */

/**
 * The one `Range` form a block store needs: a single byte range (RFC 9110
 * §14.1.2). Clients read whole blocks; a range is for resuming a transfer or
 * probing, and multipart responses would buy nothing but parser surface.
 */
export type RangeRequest =
  /** Serve the whole representation: no Range header, one we ignore (not bytes, several ranges, malformed). */
  | { readonly kind: 'full' }
  /** Serve bytes [start, end] inclusive with 206. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** 416 with `Content-Range: bytes *\/size`. */
  | { readonly kind: 'unsatisfiable' };

const FULL: RangeRequest = { kind: 'full' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };
const SINGLE = /^bytes=(\d{0,15})-(\d{0,15})$/;

/**
 * Per RFC 9110 a server may ignore a Range it does not support, and must
 * ignore one it cannot parse: both give `full`. A well-formed single range
 * that selects no byte of a `size`-byte file gives `unsatisfiable`.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return FULL;
  const m = SINGLE.exec(header.trim());
  if (!m) return FULL;
  const [, first, last] = m as unknown as [string, string, string];
  if (first === '' && last === '') return FULL;
  if (first === '') {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return UNSATISFIABLE;
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return FULL; // invalid range-spec: ignore the header
  if (start >= size) return UNSATISFIABLE;
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/** True when `If-None-Match` lists `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  for (const part of header.split(',')) {
    const tag = part.trim();
    if (tag === etag || (tag.startsWith('W/') && tag.slice(2) === etag)) return true;
  }
  return false;
}

/**
 * `If-Range`: a Range applies only when the validator still names this
 * representation (strong comparison; a date validator never matches, since
 * we send no Last-Modified).
 */
export function ifRangeAllows(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}
