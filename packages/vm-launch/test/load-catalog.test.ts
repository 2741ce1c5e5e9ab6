import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CatalogFormatError, InputError } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog } from '../src/load-catalog.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());
const never = new AbortController().signal;

describe('loadCatalog', () => {
  it('a store directory means its catalog.json; entries come back absolute', async () => {
    await writeFile(
      join(dir, 'catalog.json'),
      JSON.stringify({ format: 'thfc-catalog', version: 1, images: [{ name: 'a', index: 'sub/a.idx' }] }),
    );
    const { href, entries } = await loadCatalog(dir, { cwd: '/', signal: never });
    expect(href).toBe(`file://${dir}/catalog.json`);
    expect(entries[0]?.indexUrl).toBe(`file://${dir}/sub/a.idx`);
  });
  it('a missing catalog is missing input; a bad one is bad data naming its source', async () => {
    await expect(loadCatalog(dir, { cwd: '/', signal: never })).rejects.toBeInstanceOf(InputError);
    await writeFile(join(dir, 'catalog.json'), '{"format":"thfc-catalog","version":1,"images":[{"name":"a"}]}');
    const p = loadCatalog(dir, { cwd: '/', signal: never });
    await expect(p).rejects.toBeInstanceOf(CatalogFormatError);
    await expect(p).rejects.toThrow(`file://${dir}/catalog.json: images[0].index`);
  });
});
