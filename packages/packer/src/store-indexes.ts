import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { looksLikeIndex } from '@thfc/store';
import { fsError, UsageError } from './errors.js';

/** Checks that `store` is a store directory, with a hint when an index was given instead. */
export async function assertStoreDir(store: string, command: string): Promise<void> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(store);
  } catch (e) {
    throw fsError(e, `store ${store}`);
  }
  if (st.isDirectory()) return;
  if (await looksLikeIndex(store)) {
    throw new UsageError(
      `${store} is an index file, not a store directory (usage: thfc-pack ${command} STORE [NAME.idx…])`,
    );
  }
  throw new UsageError(`${store} is not a store directory`);
}

/** The index files of a store: `STORE/*.idx`, sorted. */
export async function listIndexes(store: string): Promise<string[]> {
  try {
    return (await readdir(store))
      .filter((n) => n.endsWith('.idx') && !n.startsWith('.'))
      .sort()
      .map((n) => join(store, n));
  } catch (e) {
    throw fsError(e, store);
  }
}

/** An index argument may be a path, or a file name inside the store. */
export async function resolveIndexArg(store: string, arg: string): Promise<string> {
  if (
    await stat(arg).then(
      () => true,
      () => false,
    )
  )
    return arg;
  return join(store, arg);
}
