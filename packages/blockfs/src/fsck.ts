import { constants as fsc } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type CommandIo, formatBytes, progressFor } from '@thfc/cli';
import { blockId, hashOfId, InputError, InterruptedError, MAX_BLOCK_SIZE, UsageError } from '@thfc/format';
import { listNames, walkBlockFiles } from './cache/block-files.js';
import { CacheSealer, identityAt } from './cache/cache-sealer.js';
import { requireCacheDir } from './cache-dir.js';
import { type FileIdentity, identityOf, sameVersion } from './io/file-identity.js';

export interface FsckOptions {
  /** The cache directory (the daemon's --cache). */
  readonly cache: string;
}

/** An entry fsck removed, and why. */
export interface FsckDrop {
  readonly id: string;
  readonly problem: 'corrupt' | 'unreadable';
  readonly detail: string;
}

export interface FsckReport {
  readonly cache: string;
  /** Block files hashed, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
  readonly good: number;
  readonly dropped: readonly FsckDrop[];
  /** Temp files of writers that are gone (a killed daemon's half-written blocks, seals, indexes), removed. */
  readonly leftovers: number;
  /** Other files (misplaced or foreign names), left alone as a daemon leaves them. */
  readonly strays: number;
  /** Entries in the seal written at the end. */
  readonly sealed: number;
  /** Nothing was dropped. */
  readonly ok: boolean;
  readonly seconds: number;
}

/**
 * Block files hashed at once: reads of one overlap the hash of another. Four
 * keep a disk busy; hashing (~1.3 GB/s) is the bound past that.
 */
const PARALLEL = 4;

/** Temp names: `.tmp-NAME.PID.N` (blocks, indexes, seals) and `seal.lock.PID.NONCE`; the pid says whose. */
const TEMP = /^(?:\.tmp-.+|seal\.lock)\.([1-9]\d{0,9})\.[0-9a-f]+$/;

/**
 * `httpstorged fsck CACHE`, the original's check_compressed_blocks: hashes
 * every entry of a block cache, removes those that do not hash to their name
 * and the temp files of writers that are gone, and writes the seal again
 * with every entry found good, so the next daemon trusts them without a hash.
 *
 * Refuses (UsageError) while a daemon is registered as using the cache:
 * a daemon trusts entries by identity and would not see a seal rewritten
 * under it, and fsck's reads would compete with its readers. A daemon that
 * starts while fsck runs is safe (fsck removes only bad files and temp files
 * of dead processes, and its seal is merged, not forced), but it checks its
 * entries itself.
 */
export async function runFsck(options: FsckOptions, io: CommandIo): Promise<FsckReport> {
  try {
    return await fsck(options, io);
  } catch (e) {
    if (!io.signal.aborted || e instanceof InterruptedError) throw e;
    throw new InterruptedError(`fsck of ${options.cache} interrupted: entries dropped so far stay dropped`);
  }
}

async function fsck(options: FsckOptions, io: CommandIo): Promise<FsckReport> {
  const started = performance.now();
  const { cache } = options;
  requireCacheDir(cache);
  const sealer = new CacheSealer({}, { dir: cache });
  const users = await sealer.users(io.signal);
  if (users.live.length) {
    throw new UsageError(
      `${cache} is in use by httpstorged (pid ${users.live.map((p) => p.pid).join(', ')}): unmount first (httpstorged umount MOUNTPOINT)`,
    );
  }

  const { entries, leftovers, strays } = await survey(cache);
  const { good, dropped, bytes } = await checkEntries(entries, io);
  if (io.signal.aborted) {
    throw new InterruptedError(
      `fsck of ${cache} interrupted: entries dropped so far stay dropped; the seal is unchanged`,
    );
  }
  const sealed = await sealer.seal(good, io.signal);
  dropped.sort((a, b) => (a.id < b.id ? -1 : 1));
  return {
    cache,
    entries: entries.length,
    bytes,
    good: good.size,
    dropped,
    leftovers,
    strays,
    sealed,
    ok: dropped.length === 0,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * Hashes every entry, PARALLEL at a time, with progress: the good ones with their identities, and those
 * removed (corrupt or unreadable). Stops taking entries on abort.
 */
async function checkEntries(
  entries: readonly Entry[],
  io: CommandIo,
): Promise<{ good: Map<string, FileIdentity>; dropped: FsckDrop[]; bytes: number }> {
  const total = entries.reduce((n, e) => n + e.size, 0);
  const progress = progressFor(io, 'fsck', total);
  const good = new Map<string, FileIdentity>();
  const dropped: FsckDrop[] = [];
  let bytes = 0;
  const queue = entries.slice();
  const worker = async () => {
    for (let e = queue.shift(); e; e = queue.shift()) {
      if (io.signal.aborted) return;
      const outcome = await checkEntry(e.path, e.id);
      if ('identity' in outcome) good.set(e.id, outcome.identity);
      else if ('drop' in outcome) {
        // Only the file that was hashed (or could not be opened): a name holding another file now is left alone.
        if (outcome.was === undefined || identityAt(e.path) === outcome.was) {
          const failed = await unlink(e.path).then(
            () => '',
            (err: Error) => `; not removed: ${err.message}`,
          );
          dropped.push({ id: e.id, problem: outcome.drop, detail: outcome.detail + failed });
        }
      }
      bytes += e.size;
      progress.update(bytes);
    }
  };
  try {
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  } finally {
    progress.finish();
  }
  return { good, dropped, bytes };
}

/** The human form of a report: one line per dropped entry, then a summary line. */
export function formatFsckReport(r: FsckReport): string {
  const lines = r.dropped.map((d) => `dropped ${d.id}: ${d.problem}: ${d.detail}`);
  lines.push(
    `${r.ok ? 'ok' : 'DROPPED'}: ${r.cache}: ${r.entries} entries (${formatBytes(r.bytes)}) hashed, ${r.good} good, ${r.dropped.length} dropped; ${r.leftovers} temp leftovers removed, ${r.strays} other files left alone; sealed ${r.sealed} entries in ${r.seconds.toFixed(1)} s`,
  );
  return `${lines.join('\n')}\n`;
}

interface Entry {
  readonly id: string;
  readonly path: string;
  readonly size: number;
}

/** A directory of the cache that cannot be read stops fsck. */
function unreadable(e: unknown, path: string): never {
  throw new InputError(`${path}: ${(e as Error).message}`);
}

const list = (dir: string) => listNames(dir, unreadable);

/**
 * The entries of the cache (block files in their shard), after removing temp
 * files whose writer is gone, in the cache root, its shards and indexes/.
 * Synchronous: a stat per entry, as DiskCache.open does.
 */
async function survey(cache: string): Promise<{ entries: Entry[]; leftovers: number; strays: number }> {
  const entries: Entry[] = [];
  let leftovers = 0;
  let strays = 0;
  const sweep = async (dir: string, name: string): Promise<boolean> => {
    const m = TEMP.exec(name);
    if (!m) return false;
    if (!isRunning(Number(m[1]))) {
      await unlink(join(dir, name)).catch(() => {});
      leftovers++;
    }
    return true;
  };
  for (const name of list(cache)) await sweep(cache, name);
  for (const name of list(join(cache, 'indexes'))) await sweep(join(cache, 'indexes'), name);
  for (const f of walkBlockFiles(cache, unreadable)) {
    if (f.kind === 'block') entries.push({ id: f.id, path: f.path, size: f.stats.size });
    else if (f.shard === undefined || !(await sweep(f.dir, f.name))) strays++;
  }
  return { entries, leftovers, strays };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type Outcome =
  | { identity: FileIdentity }
  | { drop: FsckDrop['problem']; detail: string; was: FileIdentity | undefined }
  | { changed: true };

/**
 * Hashes one block file, bound to its identity: good only if fstat shows the
 * same version before and after the read (a file that changed meanwhile is
 * neither good nor dropped).
 */
async function checkEntry(path: string, id: string): Promise<Outcome> {
  let fh: FileHandle | undefined;
  let was: FileIdentity | undefined;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_NOATIME).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'EPERM') return open(path, 'r');
      throw e;
    });
    const before = await fh.stat({ bigint: true });
    was = identityOf(before);
    const size = Number(before.size);
    if (size > MAX_BLOCK_SIZE) return { drop: 'corrupt', detail: `${size} bytes, more than any block`, was };
    const buf = Buffer.allocUnsafe(size);
    let n = 0;
    while (n < size) {
      const { bytesRead } = await fh.read(buf, n, size - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    const after = await fh.stat({ bigint: true });
    if (!sameVersion(before, after) || n !== size) return { changed: true };
    const alg = hashOfId(id);
    const actual = alg && blockId(buf, alg);
    if (actual !== id) return { drop: 'corrupt', detail: `content hashes to ${actual}`, was };
    return { identity: was };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { changed: true };
    return { drop: 'unreadable', detail: (e as Error).message, was };
  } finally {
    await fh?.close().catch(() => {});
  }
}
