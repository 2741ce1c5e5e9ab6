import { existsSync, statSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeNewFile } from '../src/io/file-writer.js';
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

describe('writeNewFile', () => {
  it('writes the bytes whole through the temp name and leaves only the file', async () => {
    const d = await dir();
    const bytes = patternBytes(1024 * 1024 + 7, 1);
    await writeNewFile(join(d, '.tmp-x'), join(d, 'x'), bytes);
    expect(Buffer.compare(await readFile(join(d, 'x')), Buffer.from(bytes))).toBe(0);
    expect(await readdir(d)).toEqual(['x']);
  });

  it('resolves to the fstat of the file it wrote, taken after the rename (what a later stat of the name shows)', async () => {
    const d = await dir();
    const st = await writeNewFile(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('12345'));
    const byName = statSync(join(d, 'x'), { bigint: true });
    expect(st.size).toBe(5n);
    expect([st.ino, st.ctimeNs, st.mtimeNs]).toEqual([byName.ino, byName.ctimeNs, byName.mtimeNs]);
  });

  it('replaces an existing file at the final name (another writer’s copy of the same block)', async () => {
    const d = await dir();
    await writeFile(join(d, 'x'), 'old');
    await writeNewFile(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('new'));
    expect(await readFile(join(d, 'x'), 'utf8')).toBe('new');
  });

  it('refuses a temp name that exists (someone else’s) and leaves it alone', async () => {
    const d = await dir();
    await writeFile(join(d, '.tmp-x'), 'theirs');
    await expect(writeNewFile(join(d, '.tmp-x'), join(d, 'x'), Buffer.from('mine'))).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await readFile(join(d, '.tmp-x'), 'utf8')).toBe('theirs');
    expect(existsSync(join(d, 'x'))).toBe(false);
  });

  it('a rename that fails removes the temp file and rejects with the fs code', async () => {
    const d = await dir();
    await expect(
      writeNewFile(join(d, '.tmp-x'), join(d, 'no-such-dir', 'x'), Buffer.from('data')),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(d)).toEqual([]);
  });
});
