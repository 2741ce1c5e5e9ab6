import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { INDEX_ZST_SUFFIX } from '@thfc/format';
import type { OpenFile } from '../regular-file.js';
import type { FileFacts } from '../store-reader.js';
import { etagMatches } from './conditional.js';
import { acceptedIndexCodings } from './content-negotiation.js';
import type { Exchange } from './exchange.js';
import type { RouteContext } from './route-context.js';
import { type Representation, sendFile } from './send-representation.js';

/**
 * gzip is made on the fly, for clients that lack zstd (curl --compressed,
 * browsers, CDNs): level 1 gave 0.55× on a 201 MB index at ~40 MB/s of one
 * core, level 6 0.53× at half that speed. Our own clients ask for zstd,
 * which is precomputed (NAME.idx.zst) and costs no CPU to serve.
 */
const GZIP_LEVEL = 1;

/**
 * Larger indexes are not gzipped on the fly: 32 MiB is ~1 s of a core per
 * request, while a 200 MB index cost 9–10 s, which a fleet of clients
 * mounting at once (ours accept gzip when a store has no .zst) would turn
 * into a stalled mirror. Such indexes go plain unless their .zst is there.
 */
export const MAX_GZIP_INDEX_BYTES = 32 * 1024 * 1024;

/**
 * Serves NAME.idx in the best coding the client accepts (FORMAT.md §9):
 * zstd from NAME.idx.zst when that file decodes to exactly NAME.idx (a
 * stale or damaged one is ignored), gzip made on the fly (up to
 * MAX_GZIP_INDEX_BYTES), else the plain file. Each coding is its own representation: its own ETag (the index's
 * SHA-256 with `-zstd` or `-gzip`), and `Vary: Accept-Encoding` on all of
 * them so shared caches keep them apart. Returns false when it sent
 * nothing and the caller should send the plain file; `done` then has not
 * run.
 */
export async function sendEncodedIndex(
  ex: Exchange,
  name: string,
  plain: Representation,
  file: OpenFile,
  ctx: RouteContext,
  done: () => void,
): Promise<boolean> {
  for (const coding of acceptedIndexCodings(ex.req.headers['accept-encoding'] as string | undefined)) {
    const facts = await ctx.store.factsOf(name, file);
    if (coding === 'zstd') {
      const zst = await ctx.store.openRootFile(`${name}${INDEX_ZST_SUFFIX}`);
      if (!zst) continue;
      let zstFacts: FileFacts;
      try {
        zstFacts = await ctx.store.factsOf(`${name}${INDEX_ZST_SUFFIX}`, zst);
      } catch (e) {
        ctx.store.closeFile(zst);
        throw e;
      }
      if (zstFacts.decodedSha256 !== facts.sha256) {
        ctx.store.closeFile(zst);
        continue;
      }
      done(); // the plain file is not needed
      sendFile(ex, encoded(plain, facts, 'zstd', zst.size), zst, ctx, () => ctx.store.closeFile(zst));
      return true;
    }
    if (file.size > MAX_GZIP_INDEX_BYTES) continue;
    sendGzip(ex, encoded(plain, facts, 'gzip', undefined), file, done);
    return true;
  }
  return false;
}

function encoded(plain: Representation, facts: FileFacts, coding: string, size: number | undefined): Representation {
  return {
    ...plain,
    size: size ?? -1,
    etag: `"${facts.sha256}-${coding}"`,
    extra: [...(plain.extra ?? []), 'content-encoding', coding],
  };
}

/** A whole body gzipped as it streams: no length known up front, so no ranges either. */
function sendGzip(ex: Exchange, rep: Representation, file: OpenFile, done: () => void): void {
  const { req, res } = ex;
  const validators = ['etag', rep.etag, 'cache-control', rep.cacheControl];
  if (etagMatches(req.headers['if-none-match'] as string | undefined, rep.etag)) {
    res.writeHead(304, validators);
    res.end();
    done();
    return;
  }
  res.writeHead(200, ['content-type', rep.contentType, ...validators, ...(rep.extra ?? [])]);
  if (ex.head) {
    res.end();
    done();
    return;
  }
  const source = createReadStream('', { fd: file.fd, autoClose: false, start: 0, end: file.size - 1 });
  const gzip = createGzip({ level: GZIP_LEVEL });
  gzip.on('data', (c: Buffer) => {
    ex.bytes += c.length;
  });
  pipeline(source, gzip, res)
    .catch(() => res.destroy())
    .finally(done);
}
