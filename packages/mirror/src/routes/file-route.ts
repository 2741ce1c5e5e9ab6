import { isImageName, MirrorUnavailableError } from '@thfc/format';
import { sendEncodedIndex } from './encoded-index.js';
import type { Exchange } from './exchange.js';
import type { RouteContext } from './route-context.js';
import { sendFile } from './send-representation.js';

/**
 * Indexes and other root files change when an image is republished (same
 * name, new bytes), so caches may keep them a minute, then must ask again:
 * a minute bounds how stale a republished image can look through a cache or
 * CDN, and asking again costs a 304 thanks to the ETag (the file's SHA-256).
 * The format digest is not the ETag: it ignores signatures, so a cache would
 * keep serving the unsigned copy of a newly signed index.
 */
export const INDEX_MAX_AGE_SECONDS = 60;
export const ROOT_FILE_CACHE_CONTROL = `public, max-age=${INDEX_MAX_AGE_SECONDS}`;

/** The files pull-through fills: an image's index and boot profile, and its retained versions and their list. */
type Pulled =
  | { kind: 'index' | 'profile' | 'versions'; image: string }
  | { kind: 'version'; image: string; file: string };

function pulledKind(name: string): Pulled | undefined {
  const v = /^versions\/([^/]+)\/([^/]+)$/.exec(name);
  if (v && isImageName(v[1] as string))
    return v[2] === 'versions.json'
      ? { kind: 'versions', image: v[1] as string }
      : { kind: 'version', image: v[1] as string, file: v[2] as string };
  if (name.endsWith('.idx') && isImageName(name.slice(0, -4))) return { kind: 'index', image: name.slice(0, -4) };
  if (name.endsWith('.profile') && isImageName(name.slice(0, -8))) return { kind: 'profile', image: name.slice(0, -8) };
  return undefined;
}

/** Asks pull-through for a missing file; true once it is in the store. */
function pull(p: Pulled, pt: NonNullable<RouteContext['pull']>): Promise<boolean> {
  switch (p.kind) {
    case 'index':
      return pt.index(p.image);
    case 'profile':
      return pt.profile(p.image);
    case 'versions':
      return pt.versionList(p.image);
    case 'version':
      return pt.version(p.image, p.file);
  }
}

/** A served copy is checked against the upstream in the background once old; a version file never changes. */
function revalidate(p: Pulled, pt: NonNullable<RouteContext['pull']>): void {
  if (p.kind === 'index') pt.revalidateIndex(p.image);
  else if (p.kind === 'profile') pt.revalidateProfile(p.image);
  else if (p.kind === 'versions') pt.revalidateVersionList(p.image);
}

function contentTypeOf(name: string): string {
  if (name.endsWith('.idx') || name.endsWith('.profile') || name.endsWith('.pub'))
    return 'text/plain; charset=us-ascii';
  if (name.endsWith('.json')) return 'application/json';
  if (name.endsWith('.txt')) return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}

/**
 * `GET|HEAD /NAME` for a plain file at the store root of a served kind
 * (routes/request-target.ts): `NAME.idx`, `NAME.profile`, `catalog.json`,
 * public keys. With an upstream, a missing index or boot profile is pulled
 * (pull-through.ts; 502 when the upstreams could not deliver one that
 * passes its checks), and a served one revalidated in the background.
 * Indexes carry their format digest in `X-Thfc-Digest`, and are sent
 * zstd- or gzip-encoded to a client that accepts it (encoded-index.ts).
 */
export async function serveRootFile(ex: Exchange, name: string, ctx: RouteContext): Promise<void> {
  const pulled = pulledKind(name);
  let file = await ctx.store.openRootFile(name);
  if (ctx.pull && pulled) {
    const { kind } = pulled;
    if (file) revalidate(pulled, ctx.pull);
    else {
      try {
        if (await pull(pulled, ctx.pull)) file = await ctx.store.openRootFile(name);
      } catch (e) {
        if (!(e instanceof MirrorUnavailableError)) throw e;
        ctx.logger.fault(`pull-through of ${name} failed: ${e.message}`);
        ex.reply(502, `upstream could not deliver this ${kind}\n`);
        return;
      }
    }
  }
  if (!file) {
    ex.reply(404, 'no such file\n');
    return;
  }
  const opened = file;
  let facts: Awaited<ReturnType<typeof ctx.store.factsOf>>;
  try {
    facts = await ctx.store.factsOf(name, opened);
  } catch (e) {
    ctx.store.closeFile(opened);
    throw e;
  }
  const isIndex = name.endsWith('.idx');
  const rep = {
    size: opened.size,
    etag: `"${facts.sha256}"`,
    contentType: contentTypeOf(name),
    cacheControl: ROOT_FILE_CACHE_CONTROL,
    extra: [...(facts.digest ? ['x-thfc-digest', facts.digest] : []), ...(isIndex ? ['vary', 'accept-encoding'] : [])],
  };
  const close = () => ctx.store.closeFile(opened);
  try {
    if (isIndex && (await sendEncodedIndex(ex, name, rep, opened, ctx, close))) return;
  } catch (e) {
    close();
    throw e;
  }
  sendFile(ex, rep, opened, ctx, close);
}
