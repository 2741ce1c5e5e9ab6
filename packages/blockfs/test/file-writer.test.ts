import { existsSync, statSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type FileIdentity, identityOf } from '../src/sources/file-identity.js';
import { writeNewFile } from '../src/sources/file-writer.js';
import { FileWriterPool } from '../src/sources/file-writer-pool.js';
import { patternBytes, tempDir } from './image-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function dir(): Promise<string> {
  const t = await tempDir('thfc-file-writer-');
  cleanups.push(t.cleanup);
  return t.dir;
}

type Write = (tmp: string, path: string, bytes: Uint8Array) => Promise<FileIdentity>;

/** The same contract for both ways of creating a cache file: through libuv's pool, and on the writer thread. */
function writerContract(name: string, write: Write): void {
  describe(name, () => {
    it('writes the bytes whole through the temp name and leaves only the file', async () => {
      const d = await dir();
      const bytes = patternBytes(1024 * 1024 + 7, 1);
      await write(join(d, '.tmp-x'), join(d, 'x'), bytes);
      expect(Buffer.compare(await readFile(join(d, 'x')), Buffer.from(bytes))).toBe(0);
      expect(await readdir(d)).toEqual(['x']);
    });

    it('resolves to the identity of the file it wrote, taken after the rename (what a later stat of the name shows)', async () => {
      const d = await dir();
      const identity = await write(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('12345'));
      expect(identity).toBe(identityOf(statSync(join(d, 'x'), { bigint: true })));
      expect(identity.split(' ')[2]).toBe('5');
    });

    it('replaces an existing file at the final name (another writer’s copy of the same block)', async () => {
      const d = await dir();
      await writeFile(join(d, 'x'), 'old');
      await write(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('new'));
      expect(await readFile(join(d, 'x'), 'utf8')).toBe('new');
    });

    it('refuses a temp name that exists (someone else’s) and leaves it alone', async () => {
      const d = await dir();
      await writeFile(join(d, '.tmp-x'), 'theirs');
      await expect(write(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('mine'))).rejects.toMatchObject({
        code: 'EEXIST',
      });
      expect(await readFile(join(d, '.tmp-x'), 'utf8')).toBe('theirs');
      expect(existsSync(join(d, 'x'))).toBe(false);
    });

    it('a rename that fails removes the temp file and rejects with the fs code', async () => {
      const d = await dir();
      await expect(write(join(d, '.tmp-x'), join(d, 'no-such-dir', 'x'), Buffer.from('data'))).rejects.toMatchObject({
        code: 'ENOENT',
      });
      expect(await readdir(d)).toEqual([]);
    });

    it('many writes at once each land whole', async () => {
      const d = await dir();
      const all = Array.from({ length: 40 }, (_, i) => patternBytes(10_000 + i, i));
      await Promise.all(all.map((b, i) => write(join(d, `.tmp-${i}`), join(d, `${i}`), b)));
      for (const [i, b] of all.entries()) {
        expect(Buffer.compare(await readFile(join(d, `${i}`)), Buffer.from(b))).toBe(0);
      }
      expect(await readdir(d)).toHaveLength(40);
    });
  });
}

writerContract('writeNewFile', async (tmp, path, bytes) => identityOf(await writeNewFile(tmp, path, bytes)));

const pool = new FileWriterPool();
afterAll(() => pool.close());
writerContract('FileWriterPool (its own thread)', (tmp, path, bytes) => pool.write(tmp, path, bytes));
