import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  readonly dir: string;
  /** Removes the directory and everything in it; never throws for a directory already gone. */
  readonly cleanup: () => Promise<void>;
}

/** A fresh directory under the system's temp directory, named PREFIX + random characters. */
export async function tempDir(prefix = 'thfc-test-'): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
