import { isBlockId } from '@thfc/format';

/**
 * What a request line asks for. Classification is purely textual and happens
 * before any file system access, so a hostile target is refused without a
 * path ever being built from it:
 *
 * - `bad`: not a plain absolute path of safe characters: percent-encoding
 *   (`%2e%2e`, `%2f`, `%00`…), backslashes, NUL and other control bytes,
 *   empty, `.` or `..` segments, absolute-form targets, or a malformed name
 *   under `/blocks/`. Answered 400.
 * - `block`, `file` (a root file with a served extension, or a retained
 *   version under `versions/NAME/`), `listing`,
 *   `healthz`, `metrics`: the routes.
 * - `unknown`: well-formed but names nothing the mirror serves (404).
 *
 * No percent-decoding is ever done: every name the mirror serves is spelled
 * in characters that need none, so an encoded character can only be an
 * attempt to smuggle something past this check.
 */
export type RequestTarget =
  | { readonly kind: 'block'; readonly id: string }
  | { readonly kind: 'file'; readonly name: string }
  | { readonly kind: 'listing' }
  | { readonly kind: 'healthz' }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'bad'; readonly reason: string };

/** The route names metrics and the access log use: a small fixed set, never the raw path. */
export type RouteName = RequestTarget['kind'];
export const ROUTE_NAMES: readonly RouteName[] = ['block', 'file', 'listing', 'healthz', 'metrics', 'unknown', 'bad'];

/** The store listing's path (store-listing.ts); it shadows a real file of the same name. */
export const LISTING_PATH = '/index.json';

/** Longest target worth looking at: a sha256 block path is 75 bytes, a file name at most 128. */
const MAX_TARGET_LENGTH = 1024;
/** The only bytes a served path can contain. */
const SAFE_PATH = /^\/[A-Za-z0-9._+/-]*$/;
/** A file at the store root: an image name's alphabet, not a dot-file (temp files, `.well-known`…). */
const ROOT_FILE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/**
 * The only root files served: indexes, boot profiles (`NAME.profile`, which
 * clients replay at mount), JSON (`catalog.json`), public keys and detached
 * signatures, and text. A store root may also hold what is not
 * for clients (a private signing key kept there by mistake, a mirrors file,
 * scripts); serving by allow-list means such a file is a 404, not a leak.
 */
export const SERVED_ROOT_EXTENSIONS: readonly string[] = ['.idx', '.profile', '.json', '.pub', '.sig', '.txt'];

/**
 * Retained versions (docs/FORMAT.md §5.9): `versions/NAME/versions.json` and
 * `versions/NAME/<created>-<digest12>.idx`, served as files like the root's.
 */
const VERSION_FILE = /^versions\/[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\/(versions\.json|\d{8}T\d{6}Z-[0-9a-f]{12}\.idx)$/;

const BAD_TARGET = (reason: string): RequestTarget => ({ kind: 'bad', reason });
const HEALTHZ: RequestTarget = { kind: 'healthz' };
const METRICS: RequestTarget = { kind: 'metrics' };
const LISTING: RequestTarget = { kind: 'listing' };
const UNKNOWN: RequestTarget = { kind: 'unknown' };

export function parseRequestTarget(url: string | undefined): RequestTarget {
  if (!url || url.length > MAX_TARGET_LENGTH) return BAD_TARGET('missing or overlong target');
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (!SAFE_PATH.test(path)) return BAD_TARGET('unsafe characters in path');

  // The hot path first: /blocks/ab/<40 or 64 hex>.
  if (path.startsWith('/blocks/')) {
    const id = path.slice(11);
    if (path.length >= 51 && path[10] === '/' && isBlockId(id) && path.startsWith(id.slice(0, 2), 8)) {
      return { kind: 'block', id };
    }
    return BAD_TARGET('not a block path (/blocks/<first two hex digits>/<40 or 64 lowercase hex digits>)');
  }

  for (const segment of path.slice(1).split('/')) {
    if (segment === '.' || segment === '..') return BAD_TARGET('dot segment');
  }
  if (path.includes('//')) return BAD_TARGET('empty segment');
  switch (path) {
    case '/healthz':
      return HEALTHZ;
    case '/metrics':
      return METRICS;
    case LISTING_PATH:
      return LISTING;
  }
  const name = path.slice(1);
  if (VERSION_FILE.test(name)) return { kind: 'file', name };
  if (ROOT_FILE.test(name) && SERVED_ROOT_EXTENSIONS.some((ext) => name.endsWith(ext) && name.length > ext.length)) {
    return { kind: 'file', name };
  }
  return UNKNOWN;
}
