import { IndexFormatError } from '@thfc/format';
import { DirStore } from './dir-store.js';
import { readIndexFile } from './index-file.js';
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
  readonly now?: number | undefined;
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
  readonly deleted: boolean;
}

/**
 * Lists (and with `delete`, removes) block files no index in the store
 * references, and temp files left by killed runs. If any index cannot be read
 * it stops: deleting on the word of a damaged index would lose data.
 */
export async function runGc(options: GcOptions): Promise<GcReport> {
  await assertStoreDir(options.store, 'gc');
  const referenced = new Set<string>();
  const paths = await listIndexes(options.store);
  for (const path of paths) {
    try {
      for (const id of (await readIndexFile(path)).index.uniqueRefs().keys()) referenced.add(id);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new IndexFormatError(
        `gc stopped, nothing deleted: cannot read ${path} (${why}); fix or remove it first`,
        undefined,
      );
    }
  }
  const store = new DirStore(options.store);
  const now = options.now ?? Date.now();
  const graceMs = (options.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS) * 1000;
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
  if (options.delete) for (const f of unreferenced) await store.remove(f.path);
  return {
    store: options.store,
    indexes: paths.length,
    referencedBlocks: referenced.size,
    unreferenced,
    unreferencedBytes: bytes,
    tooYoung,
    deleted: options.delete ?? false,
  };
}
