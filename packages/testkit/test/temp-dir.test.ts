import { stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../src/temp-dir.js';

describe('tempDir', () => {
  it('makes a fresh directory with the prefix, and cleanup removes it with its contents, twice safely', async () => {
    const a = await tempDir('thfc-kit-');
    const b = await tempDir('thfc-kit-');
    expect(a.dir).not.toBe(b.dir);
    expect(basename(a.dir)).toMatch(/^thfc-kit-/);
    await writeFile(join(a.dir, 'f'), 'x');
    await a.cleanup();
    await a.cleanup();
    await expect(stat(a.dir)).rejects.toThrow(/ENOENT/);
    expect((await stat(b.dir)).isDirectory()).toBe(true);
    await b.cleanup();
  });
});
