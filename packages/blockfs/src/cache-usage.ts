import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatBytes } from '@thfc/cli';
import { type BlockRef, decodeIndex, fsError } from '@thfc/format';
import { listNames, walkBlockFiles } from './cache/block-files.js';
import { DAEMONS_DIR, parseRegistration } from './cache/cache-sealer.js';
import { processState } from './cache/process-identity.js';
import { requireCacheDir } from './cache-dir.js';

/** A directory of the cache that cannot be read stops the report. */
function unreadable(e: unknown, path: string): never {
  throw fsError(e, path);
}

const list = (dir: string) => listNames(dir, unreadable);

/** One block file of a cache, with when it was last used (the later of its access and modification times). */
export interface CacheBlock {
  readonly id: string;
  readonly path: string;
  readonly size: number;
  readonly lastUseMs: number;
}

/** How much of one cached index the cache holds. */
export interface IndexCoverage {
  /** The file under CACHE/indexes/. */
  readonly file: string;
  readonly name: string;
  readonly digest: string;
  readonly created: string;
  /** Distinct non-zero blocks of the image, and how many of them the cache holds (whole). */
  readonly uniqueBlocks: number;
  readonly cachedBlocks: number;
  /** Their decoded bytes, and those of the ones held. */
  readonly bytes: number;
  readonly cachedBytes: number;
}

export interface CacheReport {
  readonly cache: string;
  readonly blocks: number;
  readonly bytes: number;
  /** Each index kept under CACHE/indexes/, in file-name order; one that no longer decodes is named in `unreadable`. */
  readonly indexes: readonly IndexCoverage[];
  readonly unreadable: readonly { file: string; problem: string }[];
  /** Daemons registered as using the cache that are still running (CACHE/daemons/). */
  readonly daemons: readonly number[];
}

/**
 * The block files of a cache (blocks/ab/<id>, as DiskCache keeps them).
 * Synchronous, a stat per entry, as DiskCache.open: the cache is scanned once.
 */
export function cacheBlocks(cache: string): CacheBlock[] {
  const out: CacheBlock[] = [];
  for (const f of walkBlockFiles(cache, unreadable)) {
    if (f.kind === 'block')
      out.push({ id: f.id, path: f.path, size: f.stats.size, lastUseMs: Math.max(f.stats.atimeMs, f.stats.mtimeMs) });
  }
  return out;
}

/** The pids of running daemons registered in CACHE/daemons/ (read only: registrations of gone ones stay for fsck or a daemon to clear). */
export function cacheDaemons(cache: string): number[] {
  return list(join(cache, DAEMONS_DIR))
    .map(parseRegistration)
    .filter((p) => p !== undefined && processState(p) === 'running')
    .map((p) => p?.pid as number);
}

/** `httpstorged cache CACHE`: usage, and for each cached index how many of its blocks are held. */
export async function cacheReport(cache: string, signal?: AbortSignal): Promise<CacheReport> {
  requireCacheDir(cache);
  const blocks = cacheBlocks(cache);
  const held = new Map(blocks.map((b) => [b.id, b.size]));
  const indexes: IndexCoverage[] = [];
  const unreadable: { file: string; problem: string }[] = [];
  const dir = join(cache, 'indexes');
  for (const file of list(dir)
    .filter((f) => f.endsWith('.idx'))
    .sort()) {
    signal?.throwIfAborted();
    try {
      indexes.push(coverage(file, decodeIndex(await readFile(join(dir, file), { signal })), held));
    } catch (e) {
      signal?.throwIfAborted();
      unreadable.push({ file, problem: (e as Error).message });
    }
  }
  return {
    cache,
    blocks: blocks.length,
    bytes: blocks.reduce((n, b) => n + b.size, 0),
    indexes,
    unreadable,
    daemons: cacheDaemons(cache),
  };
}

/** The pure half: one decoded index against the blocks held (id → file size; a block is held when whole). */
export function coverage(
  file: string,
  decoded: ReturnType<typeof decodeIndex>,
  held: ReadonlyMap<string, number>,
): IndexCoverage {
  let cachedBlocks = 0;
  let bytes = 0;
  let cachedBytes = 0;
  const { index } = decoded;
  let uniqueBlocks = 0;
  for (const i of index.uniqueBlocks()) {
    const r = index.ref(i) as BlockRef;
    uniqueBlocks++;
    bytes += r.size;
    if (held.get(r.id) === r.size) {
      cachedBlocks++;
      cachedBytes += r.size;
    }
  }
  const h = decoded.index.header;
  return {
    file,
    name: h.name,
    digest: decoded.digest,
    created: h.created,
    uniqueBlocks,
    cachedBlocks,
    bytes,
    cachedBytes,
  };
}

/** The human form: a usage line, then one line per cached index. */
export function formatCacheReport(r: CacheReport): string {
  const lines = [`${r.cache}: ${r.blocks} blocks, ${formatBytes(r.bytes)}`];
  lines.push(r.daemons.length ? `in use by httpstorged pid ${r.daemons.join(', ')}` : 'no daemon is using it');
  for (const i of r.indexes) {
    const pct = i.uniqueBlocks ? ((i.cachedBlocks / i.uniqueBlocks) * 100).toFixed(1) : '100.0';
    lines.push(
      `${i.name}  ${i.digest.slice(0, 19)}  created ${i.created}  ${i.cachedBlocks}/${i.uniqueBlocks} blocks (${pct}%), ${formatBytes(i.cachedBytes)} of ${formatBytes(i.bytes)}`,
    );
  }
  for (const u of r.unreadable) lines.push(`${u.file}: unreadable: ${u.problem}`);
  return `${lines.join('\n')}\n`;
}
