import { readIndexFile } from '@thfc/store';

export interface DiffOptions {
  readonly old: string;
  readonly new: string;
}

export interface DiffReport {
  readonly old: string;
  readonly new: string;
  /** Blocks a client holding every block of OLD must fetch to read all of NEW, in NEW's order. */
  readonly fetch: { id: string; storedSize: number }[];
  readonly fetchBytes: number;
  /** Distinct non-zero blocks of NEW, and their stored bytes. */
  readonly newUniqueBlocks: number;
  readonly newStoredBytes: number;
  readonly reusedBlocks: number;
}

/** Block-set difference: zero blocks cost nothing and a block shared with OLD is already cached. */
export async function runDiff(options: DiffOptions): Promise<DiffReport> {
  const [a, b] = await Promise.all([readIndexFile(options.old), readIndexFile(options.new)]);
  const have = new Set(a.index.uniqueRefs().keys());
  const fetch: DiffReport['fetch'] = [];
  let fetchBytes = 0;
  let newStoredBytes = 0;
  let reused = 0;
  for (const ref of b.index.uniqueRefs().values()) {
    newStoredBytes += ref.storedSize;
    if (have.has(ref.id)) reused++;
    else {
      fetch.push({ id: ref.id, storedSize: ref.storedSize });
      fetchBytes += ref.storedSize;
    }
  }
  return {
    old: options.old,
    new: options.new,
    fetch,
    fetchBytes,
    newUniqueBlocks: fetch.length + reused,
    newStoredBytes,
    reusedBlocks: reused,
  };
}
