import { createHash } from 'node:crypto';
import { close, read } from 'node:fs';
import { access, constants, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  blockPath,
  decodeIndex,
  decodeIndexBody,
  decodeVersionList,
  fsError,
  INDEX_ZST_SUFFIX,
  MAX_VERSION_LIST_BYTES,
  UsageError,
  VERSION_LIST_FILE,
  VERSIONS_DIR,
  versionListPath,
} from '@thfc/format';
import { DEFAULT_FILE_REVALIDATE_MS, DirStore, OpenFiles } from '@thfc/store';
import { type OpenFile, openRegularFile, REGULAR_FILES } from './regular-file.js';
import { type ListedFile, type ListingEntry, MAX_LISTED_VERSIONS } from './store-listing.js';

/** An index larger than this is not decoded for the listing (blockfs refuses to fetch one, too). */
export const MAX_LISTED_INDEX_BYTES = 256 * 1024 * 1024;

/**
 * Facts about root files kept by identity. Each is a few hundred bytes; 4096
 * covers every index and catalog of a large store many times over, and a
 * republished file is a new identity, so old entries only cost memory until
 * the bound clears them.
 */
const MAX_FILE_FACTS = 4096;

/** A root file's content facts, computed once per identity. */
export interface FileFacts {
  /** Lowercase hex SHA-256 of the whole file: the strong validator (ETag) clients and caches compare. */
  readonly sha256: string;
  /** For an index that decodes: its format digest (`sha256:…`, signatures excluded, FORMAT.md §5.6). */
  readonly digest?: string | undefined;
  /**
   * For NAME.idx.zst: SHA-256 of its decoded content, undefined when it does
   * not decode. It is served for NAME.idx only while this equals NAME.idx's
   * `sha256`, so a stale or damaged .zst is never sent.
   */
  readonly decodedSha256?: string | undefined;
  /** For versions/NAME/versions.json that decodes: the versions' digests, newest first. */
  readonly versionDigests?: readonly string[] | undefined;
}

export interface StoreReaderOptions {
  readonly root: string;
  readonly maxOpenFiles?: number | undefined;
  readonly revalidateMs?: number | undefined;
}

/**
 * The read side of a store for serving: block files through the descriptor
 * cache, files at the store root, and the facts (validators, digests) the
 * responses carry. Every path is built from a name that passed the request
 * classifier (routes/request-target.ts), under the store's real path:
 * - the root is resolved with realpath once, at open;
 * - a block's shard directory must resolve to exactly ROOT/blocks/ab (a
 *   symlinked shard or `blocks` pointing elsewhere is refused);
 * - the final component is opened with O_NOFOLLOW and must be a regular file.
 * So no request can make the mirror read a file outside the store.
 */
export class StoreReader {
  /** Where pulled blocks are written (the same layout, temp + rename). */
  readonly dirStore: DirStore;
  private readonly fds: OpenFiles<OpenFile | undefined>;
  private readonly shardChecks = new Map<string, ShardCheck>();
  private readonly facts = new Map<string, Promise<FileFacts>>();
  private readonly revalidateMs: number;

  private constructor(
    /** The store's real path (symlinks resolved). */
    readonly root: string,
    private readonly components: { readonly now: () => number },
    options: StoreReaderOptions,
  ) {
    this.dirStore = new DirStore(root);
    this.revalidateMs = options.revalidateMs ?? DEFAULT_FILE_REVALIDATE_MS;
    this.fds = new OpenFiles(
      { opener: REGULAR_FILES, now: components.now },
      { max: options.maxOpenFiles, revalidateMs: this.revalidateMs },
    );
  }

  /** Resolves the store's real path; UsageError or InputError when it is not a readable directory. */
  static async open(components: { readonly now?: () => number }, options: StoreReaderOptions): Promise<StoreReader> {
    let root: string;
    try {
      root = await realpath(options.root);
      if (!(await stat(root)).isDirectory()) throw new UsageError(`store ${options.root} is not a directory`);
      await access(root, constants.R_OK | constants.X_OK);
    } catch (e) {
      throw fsError(e, `store ${options.root}`);
    }
    return new StoreReader(root, { now: components.now ?? Date.now }, options);
  }

  get openFiles(): number {
    return this.fds.size;
  }

  /** The block's file, held open; undefined when the store lacks it. Release it with `release`. */
  async openBlock(id: string): Promise<OpenFile | undefined> {
    const rel = blockPath(id);
    const shard = rel.slice(0, 9); // blocks/ab
    const inside = this.shardIsInside(shard);
    if (inside === false || (inside !== true && !(await inside))) return undefined;
    const path = join(this.root, rel);
    return this.fds.acquire(path, path);
  }

  releaseBlock(file: OpenFile): void {
    this.fds.release(file);
  }

  /** Drops a cached descriptor, e.g. after the block file was just written by pull-through. */
  forgetBlock(id: string): void {
    this.fds.drop(join(this.root, blockPath(id)));
  }

  /** A file at the store root, opened for this request only; close it with `closeFile`. */
  openRootFile(name: string): Promise<OpenFile | undefined> {
    return openRegularFile(join(this.root, name));
  }

  closeFile(file: OpenFile): void {
    close(file.fd, () => {});
  }

  /** SHA-256 (and, for an index, the format digest) of an open root file, computed once per identity. */
  factsOf(name: string, file: OpenFile): Promise<FileFacts> {
    let facts = this.facts.get(file.identity);
    if (!facts) {
      if (this.facts.size >= MAX_FILE_FACTS) this.facts.clear();
      facts = name.endsWith(`.idx${INDEX_ZST_SUFFIX}`)
        ? computeZstFacts(file)
        : name.endsWith(`/${VERSION_LIST_FILE}`)
          ? computeVersionListFacts(file, name)
          : computeFacts(file, name.endsWith('.idx'));
      facts.catch(() => this.facts.delete(file.identity));
      this.facts.set(file.identity, facts);
    }
    return facts;
  }

  /**
   * Every `*.idx` at the root that decodes, sorted by name: the content of
   * the store listing, with what else the store holds for each image (its
   * profile, its retained versions), so a replica need not ask for them.
   * One readdir of the root and one of versions/ say which exist; the files
   * that do are read once per identity, as indexes are.
   */
  async listIndexes(): Promise<ListingEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (e) {
      throw fsError(e, `store ${this.root}`);
    }
    const rootFiles = new Set(names);
    // A store with no versions/ holds no versions (`[]`); one whose versions/ cannot be read says nothing (undefined),
    // so a replica asks for each version list rather than conclude there are none.
    const versioned = await readdir(join(this.root, VERSIONS_DIR)).then(
      (dirs) => new Set(dirs),
      (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? new Set<string>() : undefined),
    );
    const out: ListingEntry[] = [];
    for (const file of names.filter((n) => n.endsWith('.idx') && /^[A-Za-z0-9]/.test(n)).sort()) {
      const opened = await this.openRootFile(file);
      if (!opened) continue;
      let entry: ListingEntry | undefined;
      try {
        const facts = await this.factsOf(file, opened);
        if (facts.digest) {
          entry = { name: file.slice(0, -4), file, bytes: opened.size, sha256: facts.sha256, digest: facts.digest };
        }
      } finally {
        this.closeFile(opened);
      }
      if (!entry) continue;
      const name = entry.name;
      const profile = rootFiles.has(`${name}.profile`) ? await this.listedProfile(name) : null;
      const versions = versioned === undefined ? undefined : versioned.has(name) ? await this.listedVersions(name) : [];
      out.push({
        ...entry,
        ...(profile !== undefined && { profile }),
        ...(versions !== undefined && { versions }),
      });
    }
    return out;
  }

  /** NAME.profile's size and SHA-256; undefined (not said) when it cannot be read as a regular file. */
  private async listedProfile(name: string): Promise<ListedFile | null | undefined> {
    const opened = await this.openRootFile(`${name}.profile`).catch(() => undefined);
    if (!opened) return undefined;
    try {
      return { bytes: opened.size, sha256: (await this.factsOf(`${name}.profile`, opened)).sha256 };
    } finally {
      this.closeFile(opened);
    }
  }

  /** The digests versions/NAME/versions.json lists; [] without one; undefined (not said) when it does not decode or is long. */
  private async listedVersions(name: string): Promise<readonly string[] | undefined> {
    const relative = versionListPath(name);
    let opened: OpenFile | undefined;
    try {
      opened = await openRegularFile(join(this.root, relative));
    } catch {
      return undefined;
    }
    if (!opened) return [];
    try {
      const digests = (await this.factsOf(relative, opened)).versionDigests;
      return digests && digests.length <= MAX_LISTED_VERSIONS ? digests : undefined;
    } finally {
      this.closeFile(opened);
    }
  }

  /** The store root is still a readable directory (for /healthz and the heartbeat's health). */
  async healthy(): Promise<boolean> {
    try {
      await access(this.root, constants.R_OK | constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.fds.close();
  }

  /**
   * Whether ROOT/blocks/ab resolves to exactly itself: checked once per
   * revalidation period and shared by concurrent requests; a plain boolean
   * once known, so the hot path does not wait on a promise.
   */
  private shardIsInside(shard: string): Promise<boolean> | boolean {
    const now = this.components.now();
    const known = this.shardChecks.get(shard);
    if (known && now - known.at < this.revalidateMs) return known.value ?? known.pending;
    const expected = join(this.root, shard);
    const check: ShardCheck = { at: now, value: undefined, pending: Promise.resolve(true) };
    check.pending = realpath(expected).then(
      (real) => {
        check.value = real === expected;
        return check.value;
      },
      // A missing shard holds no block; it is checked again once it exists.
      () => {
        this.shardChecks.delete(shard);
        return true;
      },
    );
    this.shardChecks.set(shard, check);
    return check.pending;
  }
}

interface ShardCheck {
  readonly at: number;
  value: boolean | undefined;
  pending: Promise<boolean>;
}

async function computeZstFacts(file: OpenFile): Promise<FileFacts> {
  const bytes = Buffer.allocUnsafe(Math.min(file.size, MAX_LISTED_INDEX_BYTES));
  await readFully(file.fd, bytes, 0);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    const decoded = await decodeIndexBody([bytes], 'zstd', MAX_LISTED_INDEX_BYTES, 'zst');
    return { sha256, decodedSha256: createHash('sha256').update(decoded).digest('hex') };
  } catch {
    return { sha256 };
  }
}

async function computeVersionListFacts(file: OpenFile, name: string): Promise<FileFacts> {
  if (file.size > MAX_VERSION_LIST_BYTES) return computeFacts(file, false);
  const bytes = Buffer.allocUnsafe(file.size);
  await readFully(file.fd, bytes, 0);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  try {
    const list = decodeVersionList(bytes.toString('utf8'), name);
    return { sha256, versionDigests: list.versions.map((v) => v.digest) };
  } catch {
    return { sha256 };
  }
}

async function computeFacts(file: OpenFile, isIndex: boolean): Promise<FileFacts> {
  if (isIndex && file.size <= MAX_LISTED_INDEX_BYTES) {
    const bytes = Buffer.allocUnsafe(file.size);
    await readFully(file.fd, bytes, 0);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    try {
      return { sha256, digest: decodeIndex(bytes).digest };
    } catch {
      return { sha256 };
    }
  }
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(1024 * 1024);
  for (let pos = 0; pos < file.size; ) {
    const n = await readAt(file.fd, chunk, Math.min(chunk.length, file.size - pos), pos);
    if (n === 0) break;
    hash.update(chunk.subarray(0, n));
    pos += n;
  }
  return { sha256: hash.digest('hex') };
}

async function readFully(fd: number, into: Buffer, position: number): Promise<void> {
  for (let off = 0; off < into.length; ) {
    const n = await readAt(fd, into.subarray(off), into.length - off, position + off);
    if (n === 0) throw new Error('file shrank while being read');
    off += n;
  }
}

export function readAt(fd: number, into: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, into, 0, length, position, (e, n) => (e ? reject(e) : resolve(n)));
  });
}
