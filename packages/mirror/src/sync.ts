import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CommandIo, formatBytes, progressFor } from '@thfc/cli';
import {
  type BlockRef,
  type DecodedIndex,
  decodeIndex,
  decodeVersionList,
  fsError,
  type ImageIndex,
  INDEX_ZST_SUFFIX,
  InputError,
  InterruptedError,
  isImageName,
  MAX_VERSION_LIST_BYTES,
  UsageError,
  VERSIONS_DIR,
  versionListPath,
} from '@thfc/format';
import { DirStore, LineLogger, type Logger, MAX_INDEX_BYTES, VersionStore, writeIndexFiles } from '@thfc/store';
import { checkReplicaProfile, dropStaleProfile, publishProfile } from './replica-profile.js';
import type { ListedFile, ListingEntry } from './store-listing.js';
import { type ProfileFetch, Upstream } from './upstream.js';

/**
 * Blocks fetched in parallel. limits.md: 4–8 requests in flight give ~1.6×
 * one's block rate over loopback and more buys nothing; verification
 * (decode + hash) runs between fetches on this thread, so 8 keeps the
 * connection pool busy while it does. A replica pulling from a public
 * mirror should not open dozens of connections.
 */
export const DEFAULT_SYNC_CONNECTIONS = 8;

/** Presence checks (one stat each) in flight: enough to keep libuv's 4 threads busy without flooding them. */
const PRESENCE_CHECKS = 32;

export interface SyncOptions {
  /** The upstream mirror's base URL (the directory holding NAME.idx, blocks/ and index.json). */
  readonly upstream: string;
  /** Images to sync (`NAME` or `NAME.idx`); default every index the upstream's listing names. */
  readonly names?: readonly string[] | undefined;
  /** The local store (created if missing). */
  readonly store: string;
  /** Sync again every this many seconds until io.signal aborts. */
  readonly watchSeconds?: number | undefined;
  readonly connections?: number | undefined;
  readonly verbose?: boolean | undefined;
}

export interface SyncIo extends CommandIo {
  /** With --watch, called after every pass (successful or not). */
  readonly onPass?: (result: { report?: SyncReport; error?: Error }) => void;
}

export interface IndexSyncReport {
  readonly name: string;
  /** `updated`: the index was (re)published; `unchanged`: the store already had these exact bytes. */
  readonly status: 'updated' | 'unchanged';
  readonly digest: string;
  /** Distinct non-zero blocks the index names. */
  readonly blocks: number;
  /** Of those, already in the store. */
  readonly present: number;
  readonly fetched: number;
  /** Retained versions (docs/FORMAT.md §5.9) copied in this pass, each with its blocks. */
  readonly versions: number;
  readonly fetchedBytes: number;
  /** NAME.profile, copied after the index: see ProfileSyncStatus. */
  readonly profile: ProfileSyncStatus;
}

/**
 * What became of the image's boot profile (NAME.profile):
 * - `updated`: the upstream's copy passed the check (replica-profile.ts) and was published;
 * - `unchanged`: the store already held those exact bytes;
 * - `none`: the upstream publishes none (404);
 * - `refused`: the upstream's copy failed the check and was not published (one log line; not an error);
 * - `failed`: the upstream could not answer, or the copy could not be written (an error, as for an index).
 * Whatever the status, a local profile bound to another index than the one
 * just published is removed; a local one that fits it is never replaced by a
 * refused copy, nor removed because the upstream has none.
 */
export type ProfileSyncStatus = 'updated' | 'unchanged' | 'none' | 'refused' | 'failed';

export interface SyncReport {
  readonly upstream: string;
  readonly store: string;
  readonly indexes: readonly IndexSyncReport[];
  readonly fetchedBlocks: number;
  readonly fetchedBytes: number;
  readonly seconds: number;
  /** Fetched stored bytes per second over the pass (decimal MB). */
  readonly mbPerSecond: number;
}

/**
 * `thfc-mirror sync`: replicates indexes from an upstream mirror into a
 * store. For each index: fetch it (or, when the listing's SHA-256 says the
 * store's copy is identical, read that), find the blocks the store lacks,
 * fetch those in parallel through failover(verified(http)), store each with
 * temp + rename, and only then publish the index (temp + fsync + rename),
 * then its boot profile, checked against it (syncProfile). So:
 * - a client of this store never sees an index whose blocks are missing;
 * - a profile is published only beside the index it is bound to;
 * - an interrupted sync leaves whole blocks and the previous index, and a
 *   rerun fetches only what is still missing (resumable);
 * - nothing unverified is ever stored.
 *
 * Errors: an index the upstream lacks is InputError; bad bytes after every
 * retry surface as MirrorUnavailableError (failover absorbs them per
 * attempt); an upstream index that does not decode is IndexFormatError; a
 * profile the upstream could not deliver is MirrorUnavailableError (its
 * index is published all the same). One index failing does not stop the
 * others: each is logged, and the first error is thrown at the end. A
 * profile that fails its check is logged and reported, not an error.
 * Ctrl-C: InterruptedError, except with --watch, where it ends the loop
 * normally.
 */
export async function runSync(options: SyncOptions, io: SyncIo): Promise<SyncReport> {
  const logger = new LineLogger((l) => io.stderr.write(l), !!options.verbose);
  const names = options.names?.map(imageNameArg);
  await ensureStore(options.store);
  const upstream = new Upstream(
    { logger },
    { urls: [options.upstream], connections: options.connections ?? DEFAULT_SYNC_CONNECTIONS },
  );
  try {
    if (options.watchSeconds === undefined) return await syncOnce(upstream, names, options.store, io, logger);
    let last: SyncReport | undefined;
    while (!io.signal.aborted) {
      try {
        last = await syncOnce(upstream, names, options.store, io, logger);
        io.onPass?.({ report: last });
      } catch (e) {
        if (io.signal.aborted) break;
        logger.fault(`sync pass failed: ${(e as Error).message}; next pass in ${options.watchSeconds} s`);
        io.onPass?.({ error: e as Error });
      }
      try {
        await sleep(options.watchSeconds * 1000, undefined, { signal: io.signal });
      } catch {
        break;
      }
    }
    return last ?? emptyReport(upstream, options.store);
  } finally {
    await upstream.close();
  }
}

async function syncOnce(
  upstream: Upstream,
  names: readonly string[] | undefined,
  storeDir: string,
  io: CommandIo,
  logger: Logger,
): Promise<SyncReport> {
  const started = performance.now();
  const { signal } = io;
  const store = new DirStore(storeDir);
  const reports: IndexSyncReport[] = [];
  let fetchedBlocks = 0;
  let fetchedBytes = 0;
  let firstError: Error | undefined;
  try {
    signal.throwIfAborted();
    const listed = names ? undefined : (await upstream.fetchListing(signal)).indexes;
    const todo = names ?? (listed ?? []).map((e) => e.name);
    for (const name of todo) {
      try {
        const entry = listed?.find((e) => e.name === name);
        const { report, profileError } = await syncIndex(upstream, store, name, entry, io, logger, (bytes) => {
          fetchedBlocks++;
          fetchedBytes += bytes;
        });
        reports.push(report);
        if (profileError) {
          logger.fault(`${name}.profile: ${profileError.message}`);
          firstError ??= profileError;
        }
      } catch (e) {
        if (signal.aborted) throw e;
        logger.fault(`${name}: ${(e as Error).message}`);
        firstError ??= e as Error;
      }
    }
  } catch (e) {
    if (signal.aborted) throw interrupted(fetchedBlocks, fetchedBytes);
    throw e;
  }
  if (firstError) throw firstError;
  const seconds = (performance.now() - started) / 1000;
  return {
    upstream: upstream.urls[0] as string,
    store: storeDir,
    indexes: reports,
    fetchedBlocks,
    fetchedBytes,
    seconds,
    mbPerSecond: seconds > 0 ? fetchedBytes / 1e6 / seconds : 0,
  };
}

async function syncIndex(
  upstream: Upstream,
  store: DirStore,
  name: string,
  listed: ListingEntry | undefined,
  io: CommandIo,
  logger: Logger,
  fetched: (bytes: number) => void,
): Promise<{ report: IndexSyncReport; profileError?: Error | undefined }> {
  const { signal } = io;
  const indexPath = join(store.root, `${name}.idx`);
  const localBytes = await readFile(indexPath).catch(() => undefined);
  let decoded: DecodedIndex | undefined;
  if (listed && localBytes && sha256Hex(localBytes) === listed.sha256) {
    decoded = decodeIndex(localBytes);
  } else {
    decoded = await upstream.fetchIndex(name, signal);
    if (!decoded) throw new InputError(`${name}.idx: the upstream ${upstream.urls[0]} has no such index`);
  }
  const unchanged = localBytes !== undefined && Buffer.compare(localBytes, decoded.bytes) === 0;

  const copied = await copyMissingBlocks(upstream, store, decoded.index, `sync ${name}`, io, fetched);

  // Through the version store (NAME.idx and NAME.idx.zst): the index it replaces stays retained (FORMAT.md §5.9).
  if (!unchanged) await new VersionStore(store.root).publish(name, decoded.bytes, signal);
  // A store synced before .zst files existed gets one for an unchanged index too.
  else if (!(await stat(`${indexPath}${INDEX_ZST_SUFFIX}`).catch(() => undefined)))
    await writeIndexFiles(indexPath, decoded.bytes, { signal });
  const versions = await syncVersions(upstream, store, name, listed?.versions, io, logger, fetched);
  const profile = await syncProfile(upstream, store.root, name, decoded, listed?.profile, signal, logger);
  return {
    report: {
      name,
      status: unchanged ? 'unchanged' : 'updated',
      digest: decoded.digest,
      blocks: copied.unique,
      present: copied.unique - copied.count,
      fetched: copied.count,
      fetchedBytes: copied.bytes,
      versions,
      profile: profile.status,
    },
    profileError: profile.error,
  };
}

/**
 * Copies NAME.profile once NAME.idx (`index`) is published: fetched whole,
 * checked against that index as a client would check it and more
 * (checkReplicaProfile), written with temp + fsync + rename. Without a good
 * copy, drops a local profile that is bound to another index. Never throws but for abort:
 * a failure comes back as `error`, for the caller to report like an index's.
 *
 * `listed` is what the upstream's listing says of the profile: with `null`
 * (it has none) nothing is fetched; with the SHA-256 of the local copy, that
 * copy is checked against the index instead of fetching the same bytes.
 * Undefined (a listing that does not say, or no listing) fetches as always.
 */
async function syncProfile(
  upstream: Upstream,
  root: string,
  name: string,
  index: DecodedIndex,
  listed: ListedFile | null | undefined,
  signal: AbortSignal,
  logger: Logger,
): Promise<{ status: ProfileSyncStatus; error?: Error | undefined }> {
  let status: ProfileSyncStatus;
  let error: Error | undefined;
  try {
    const check = (bytes: Uint8Array, url: string) => checkReplicaProfile(bytes, index, url);
    const got =
      listed === null
        ? ({ kind: 'none' } as const)
        : ((await localProfile(root, name, listed, check)) ?? (await upstream.fetchProfile(name, check, signal)));
    if (got.kind === 'found') {
      status = (await publishProfile(root, name, got.bytes, signal)) ? 'updated' : 'unchanged';
    } else if (got.kind === 'refused') {
      logger.fault(`${name}.profile refused, not published: ${got.why}`);
      status = 'refused';
    } else status = 'none';
  } catch (e) {
    signal.throwIfAborted();
    status = 'failed';
    error = e as Error;
  }
  // A profile just written or found unchanged was checked against this index: only other outcomes can leave a stale one.
  try {
    if (status !== 'updated' && status !== 'unchanged' && (await dropStaleProfile(root, name, index.digest))) {
      logger.info(`${name}.profile: removed, it was bound to an older index than ${index.digest}`);
    }
  } catch (e) {
    error ??= e as Error;
  }
  return { status, error };
}

/**
 * The local NAME.profile as if fetched, when the listing gives its SHA-256
 * and it passes `check` against the index being synced; else undefined.
 */
async function localProfile(
  root: string,
  name: string,
  listed: ListedFile | undefined,
  check: (bytes: Uint8Array, url: string) => unknown,
): Promise<ProfileFetch | undefined> {
  if (!listed) return undefined;
  const path = join(root, `${name}.profile`);
  const bytes = await readFile(path).catch(() => undefined);
  if (!bytes || bytes.length !== listed.bytes || sha256Hex(bytes) !== listed.sha256) return undefined;
  try {
    check(bytes, path);
  } catch {
    return undefined;
  }
  return { kind: 'found', url: path, bytes };
}

/**
 * Copies the distinct blocks of `index` the store lacks from the upstream, verified,
 * in parallel; the first failure stops the rest (the index that needs them
 * will not be published anyway).
 */
async function copyMissingBlocks(
  upstream: Upstream,
  store: DirStore,
  index: ImageIndex,
  label: string,
  io: CommandIo,
  fetched: (bytes: number) => void,
): Promise<{ unique: number; count: number; bytes: number }> {
  const { signal } = io;
  const { unique, missing } = await missingRefs(store, index, signal);
  let bytes = 0;
  let count = 0;
  if (missing.length === 0) return { unique, count, bytes };
  const total = missing.reduce((n, r) => n + r.storedSize, 0);
  const progress = progressFor(io, label, total);
  const stop = new AbortController();
  const workSignal = AbortSignal.any([signal, stop.signal]);
  let next = 0;
  const worker = async () => {
    while (next < missing.length && !workSignal.aborted) {
      const ref = missing[next++] as BlockRef;
      const stored = await upstream.blocks.get(ref, { signal: workSignal });
      await store.put(ref, stored, { signal: workSignal });
      count++;
      bytes += stored.length;
      fetched(stored.length);
      progress.update(bytes);
    }
  };
  const workers = Array.from({ length: Math.min(upstream.connections, missing.length) }, () =>
    worker().catch((e) => {
      stop.abort(e);
      throw e;
    }),
  );
  const results = await Promise.allSettled(workers);
  progress.finish();
  signal.throwIfAborted();
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw stop.signal.reason ?? failed.reason;
  return { unique, count, bytes };
}

/**
 * Copies the upstream's retained versions of `name` (docs/FORMAT.md §5.9)
 * that this store lacks, each after its blocks, so a client pinned to an
 * older version can use this replica. A version whose bytes do not carry
 * the digest its list names is logged and skipped. Returns how many were copied.
 * `listed`, the digests the upstream's listing names, when it names them:
 * if this store holds every one, the upstream's list is not even fetched.
 */
async function syncVersions(
  upstream: Upstream,
  store: DirStore,
  name: string,
  listed: readonly string[] | undefined,
  io: CommandIo,
  logger: Logger,
  fetched: (bytes: number) => void,
): Promise<number> {
  const { signal } = io;
  const local = new VersionStore(store.root);
  if (listed?.length === 0) return 0;
  if (listed) {
    const held = new Set((await local.list(name)).versions.map((v) => v.digest));
    if (listed.every((d) => held.has(d))) return 0;
  }
  const listBytes = await upstream.fetchStoreFile(versionListPath(name), MAX_VERSION_LIST_BYTES, signal);
  if (!listBytes) return 0;
  const list = decodeVersionList(listBytes.toString('utf8'), `upstream ${versionListPath(name)}`);
  const have = new Set((await local.list(name)).versions.map((v) => v.digest));
  let copied = 0;
  for (const v of list.versions) {
    if (have.has(v.digest)) continue;
    const relative = `${VERSIONS_DIR}/${name}/${v.file}`;
    const bytes = await upstream.fetchStoreFile(relative, MAX_INDEX_BYTES, signal);
    let decoded: DecodedIndex | undefined;
    try {
      decoded = bytes ? decodeIndex(bytes) : undefined;
    } catch (e) {
      logger.fault(`${relative}: ${(e as Error).message}; not copied`);
      continue;
    }
    if (!decoded || decoded.digest !== v.digest || decoded.index.header.name !== name) {
      logger.fault(`${relative}: ${decoded ? `holds ${decoded.digest}` : 'missing upstream'}; not copied`);
      continue;
    }
    await copyMissingBlocks(upstream, store, decoded.index, `sync ${relative}`, io, fetched);
    await local.add(name, decoded.bytes, signal);
    copied++;
  }
  return copied;
}

/**
 * The distinct blocks of `index` whose block file the store lacks, in index
 * order, and how many distinct blocks it has. Walks the index's first blocks
 * (uniqueBlocks()), not a Map of every ref: ~1.5 GB for 4M blocks.
 */
async function missingRefs(
  store: DirStore,
  index: ImageIndex,
  signal: AbortSignal,
): Promise<{ unique: number; missing: BlockRef[] }> {
  const firsts = Uint32Array.from(index.uniqueBlocks());
  const refAt = (i: number) => index.ref(firsts[i] as number) as BlockRef;
  const present = new Uint8Array(firsts.length);
  let next = 0;
  const checker = async () => {
    while (next < firsts.length) {
      const i = next++;
      if ((await store.has(refAt(i), { signal })) === true) present[i] = 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PRESENCE_CHECKS, firsts.length) }, checker));
  const missing: BlockRef[] = [];
  for (let i = 0; i < firsts.length; i++) if (present[i] === 0) missing.push(refAt(i));
  return { unique: firsts.length, missing };
}

function interrupted(blocks: number, bytes: number): InterruptedError {
  return new InterruptedError(
    `sync interrupted: ${blocks} block(s)${bytes ? ` (${formatBytes(bytes)})` : ''} fetched so far are kept; run the same command again to resume`,
  );
}

function imageNameArg(arg: string): string {
  const name = arg.endsWith('.idx') ? arg.slice(0, -4) : arg;
  if (!isImageName(name)) {
    throw new UsageError(`bad image name "${arg}": expected NAME or NAME.idx (1-128 of A-Z a-z 0-9 . _ + -)`);
  }
  return name;
}

async function ensureStore(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    if (!(await stat(dir)).isDirectory()) throw new UsageError(`--store ${dir} is not a directory`);
  } catch (e) {
    throw fsError(e, `store ${dir}`);
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function emptyReport(upstream: Upstream, store: string): SyncReport {
  return {
    upstream: upstream.urls[0] as string,
    store,
    indexes: [],
    fetchedBlocks: 0,
    fetchedBytes: 0,
    seconds: 0,
    mbPerSecond: 0,
  };
}
