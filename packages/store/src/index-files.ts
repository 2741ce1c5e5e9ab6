import { compressIndex, INDEX_ZST_SUFFIX } from '@thfc/format';
import { writeFileAtomic } from './atomic-file.js';

/**
 * Publishes an index as NAME.idx and its wire twin NAME.idx.zst (FORMAT.md
 * §9), each written atomically and durably. The .zst goes first: a reader
 * between the two renames sees a .zst that does not match NAME.idx, and a
 * mirror serves NAME.idx plain until it does (it checks; see
 * thfc-mirror's file route). Every writer of an index goes through here, so
 * no command leaves a stale .zst behind.
 */
export async function writeIndexFiles(
  path: string,
  bytes: Uint8Array,
  options: { mode?: number; signal?: AbortSignal | undefined } = {},
): Promise<void> {
  await writeFileAtomic(`${path}${INDEX_ZST_SUFFIX}`, compressIndex(bytes), { ...options, durable: true });
  await writeFileAtomic(path, bytes, { ...options, durable: true });
}
