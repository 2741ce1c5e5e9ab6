import { createHash } from 'node:crypto';
import { access, mkdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

/**
 * Fetched indexes under CACHE/indexes/, one copy per index digest:
 *
 *   sha256-<hex>.idx   the index whose digest is sha256:<hex> (as last fetched: signatures may grow)
 *   <sha256(url)>.ref  {"digest": "sha256:<hex>", "etag": "…"}: what URL last gave, and its validator
 *
 * A URL's ETag is sent back as If-None-Match, so a mount of an unchanged
 * index costs a 304, not the index; mirrors that serve the same index share
 * its copy. Caches written before the digest layout hold `<sha256(url)>.idx`,
 * still read (offline, fallback) until the URL is fetched again.
 */
export interface CachedIndexRef {
  /** Where the copy is; it may be missing or damaged: the caller decodes it and copes. */
  readonly path: string;
  /** The validator the server sent with it; undefined for a copy from before the digest layout. */
  readonly etag: string | undefined;
}

const DIGEST = /^sha256:([0-9a-f]{64})$/;

export class IndexCache {
  constructor(
    /** CACHE/indexes */
    private readonly dir: string,
  ) {}

  /** The copy `url` last gave, if the cache has a record of one. Never throws: a bad record is no record. */
  async lookup(url: string): Promise<CachedIndexRef | undefined> {
    const key = urlKey(url);
    try {
      const ref = JSON.parse(await readFile(join(this.dir, `${key}.ref`), 'utf8')) as Record<string, unknown>;
      if (typeof ref.digest === 'string' && DIGEST.test(ref.digest)) {
        const path = this.pathOf(ref.digest);
        await access(path);
        return { path, etag: typeof ref.etag === 'string' ? ref.etag : undefined };
      }
    } catch {
      // No record, or an unreadable one: fall through to a copy of the old layout.
    }
    const legacy = this.legacyPath(url);
    try {
      await access(legacy);
      return { path: legacy, etag: undefined };
    } catch {
      return undefined;
    }
  }

  /** Where the copy of the index with `digest` is kept (it may not exist). */
  pathOf(digest: string): string {
    const m = DIGEST.exec(digest);
    if (!m) throw new Error(`bad index digest ${digest}`);
    return join(this.dir, `sha256-${m[1]}.idx`);
  }

  /** Keeps a copy of an index by its digest alone (a pinned version: no URL gave it as its latest). */
  async keep(bytes: Uint8Array, digest: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.pathOf(digest), bytes);
  }

  /** Where a cache of the old layout kept `url`'s copy. */
  legacyPath(url: string): string {
    return join(this.dir, `${urlKey(url)}.idx`);
  }

  /** Keeps `bytes` (an index that decoded, with `digest`) as what `url` gave, with the server's validator. */
  async store(url: string, bytes: Uint8Array, digest: string, etag: string | undefined): Promise<void> {
    await this.keep(bytes, digest);
    await writeFileAtomic(join(this.dir, `${urlKey(url)}.ref`), Buffer.from(`${JSON.stringify({ digest, etag })}\n`));
    await unlink(this.legacyPath(url)).catch(() => {});
  }
}

function urlKey(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}
