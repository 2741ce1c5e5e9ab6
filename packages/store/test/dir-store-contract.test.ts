import { blockSourceContract } from '@thfc/format/testing';
import { DirStore } from '@thfc/store';
import { storeFiles, tempDir } from '@thfc/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

blockSourceContract(
  'DirStore',
  async () => {
    const t = await tempDir('thfc-dir-store-');
    cleanups.push(t.cleanup);
    return new DirStore(t.dir);
  },
  { describe, it, expect },
  { files: (store) => storeFiles(store.root) },
);
