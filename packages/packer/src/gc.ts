import { basename, join } from 'node:path';
import { type BlockRef, type DecodedIndex, type ImageVersion, IndexFormatError, indexFileName } from '@thfc/format';
import { DirStore, readIndexFile, VersionStore } from '@thfc/store';
import {
  DEFAULT_KEEP_DAYS,
  DEFAULT_KEEP_VERSIONS,
  decideRetention,
  type KeepReason,
  type RetentionPolicy,
} from './retention.js';
import { assertStoreDir, listIndexes } from './store-indexes.js';

export interface GcOptions {
  readonly store: string;
  /** Really delete; without it gc only lists. */
  readonly delete?: boolean | undefined;
  /**
   * Leave files younger than this alone. A pack writes its blocks before its
   * index, so a block that no index references yet may be one a running pack
   * is about to publish. One hour is far longer than any pack, as git's
   * prune expiry is.
   */
  readonly graceSeconds?: number | undefined;
  /** Keep the blocks of each image's newest N retained versions (docs/FORMAT.md §5.9). */
  readonly keep?: number | undefined;
  /** …and of every version younger than this many days. */
  readonly keepDays?: number | undefined;
  readonly now?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export const DEFAULT_GC_GRACE_SECONDS = 3600;

export interface GcReport {
  readonly store: string;
  readonly indexes: number;
  readonly referencedBlocks: number;
  readonly unreferenced: { path: string; id: string | undefined; size: number }[];
  readonly unreferencedBytes: number;
  /** Files younger than the grace period, left alone whatever they are. */
  readonly tooYoung: number;
  /** Per image with retained versions: which are kept (and why) and which are retired. */
  readonly versions: readonly ImageRetention[];
  readonly policy: RetentionPolicy;
  readonly deleted: boolean;
}

export interface ImageRetention {
  readonly name: string;
  readonly kept: readonly (ImageVersion & { readonly why: KeepReason })[];
  readonly retired: readonly ImageVersion[];
}

/**
 * Lists (and with `delete`, removes) block files that neither a published
 * index nor a retained version gc keeps references, temp files left by
 * killed runs, and retired versions. If any index cannot be read it stops:
 * deleting on the word of a damaged index would lose data.
 */
export async function runGc(options: GcOptions): Promise<GcReport> {
  await assertStoreDir(options.store, 'gc');
  const now = options.now ?? Date.now();
  const policy: RetentionPolicy = {
    keep: options.keep ?? DEFAULT_KEEP_VERSIONS,
    keepDays: options.keepDays ?? DEFAULT_KEEP_DAYS,
  };
  const referenced = new Set<string>();
  /** Image name → the digest its published NAME.idx holds. */
  const published = new Map<string, string>();
  const paths = await listIndexes(options.store);
  for (const path of paths) {
    const { index, digest } = await reference(path, referenced);
    if (basename(path) === indexFileName(index.header.name)) published.set(index.header.name, digest);
  }
  const versionStore = new VersionStore(options.store);
  const versions = await retainVersions(versionStore, published, policy, now, referenced);
  const store = new DirStore(options.store);
  const graceMs = (options.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS) * 1000;
  const { unreferenced, bytes, tooYoung } = await sweep(store, referenced, now, graceMs);
  if (options.delete) {
    // Versions first: a crash between the two leaves blocks nobody references, which the next gc removes.
    for (const v of versions) await versionStore.retire(v.name, v.retired, options.signal);
    for (const f of unreferenced) await store.remove(f.path);
  }
  return {
    store: options.store,
    indexes: paths.length,
    referencedBlocks: referenced.size,
    unreferenced,
    unreferencedBytes: bytes,
    tooYoung,
    versions,
    policy,
    deleted: options.delete ?? false,
  };
}

/** Reads one index and adds every block it references to `referenced`; an index that cannot be read stops gc. */
async function reference(path: string, referenced: Set<string>): Promise<DecodedIndex> {
  try {
    const decoded = await readIndexFile(path);
    const { index } = decoded;
    for (const i of index.uniqueBlocks()) referenced.add((index.ref(i) as BlockRef).id);
    return decoded;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new IndexFormatError(
      `gc stopped, nothing deleted: cannot read ${path} (${why}); fix or remove it first`,
      undefined,
    );
  }
}

/** Per image with versions, which the policy keeps (their blocks are added to `referenced`) and which it retires. */
async function retainVersions(
  versionStore: VersionStore,
  published: ReadonlyMap<string, string>,
  policy: RetentionPolicy,
  now: number,
  referenced: Set<string>,
): Promise<ImageRetention[]> {
  const versions: ImageRetention[] = [];
  for (const name of await versionStore.names()) {
    const list = await versionStore.list(name);
    // A withdrawn image (NAME.idx removed) has no latest; its versions age out by the policy alone.
    const decision = decideRetention(list.versions, published.get(name), policy, now);
    for (const { version } of decision.kept) await reference(join(versionStore.dir(name), version.file), referenced);
    versions.push({
      name,
      kept: decision.kept.map(({ version, why }) => ({ ...version, why })),
      retired: decision.retired,
    });
  }
  return versions;
}

/** The store's files that nothing references, but for those younger than `graceMs` (counted, left alone). */
async function sweep(
  store: DirStore,
  referenced: ReadonlySet<string>,
  now: number,
  graceMs: number,
): Promise<{ unreferenced: GcReport['unreferenced']; bytes: number; tooYoung: number }> {
  const unreferenced: GcReport['unreferenced'] = [];
  let bytes = 0;
  let tooYoung = 0;
  for await (const f of store.list()) {
    if (f.id && referenced.has(f.id)) continue;
    if (now - f.mtimeMs < graceMs) {
      tooYoung++;
      continue;
    }
    unreferenced.push({ path: f.path, id: f.id, size: f.size });
    bytes += f.size;
  }
  return { unreferenced, bytes, tooYoung };
}
