import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The names of every file under ROOT/blocks/ab/ (block files and temp files
 * alike), sorted: what a store or cache directory holds after a test.
 */
export async function storeFiles(root: string): Promise<string[]> {
  const blocks = join(root, 'blocks');
  const out: string[] = [];
  for (const shard of await readdir(blocks).catch(() => [] as string[])) {
    out.push(...(await readdir(join(blocks, shard))));
  }
  return out.sort();
}
