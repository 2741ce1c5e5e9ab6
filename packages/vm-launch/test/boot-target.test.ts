import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nameOfIndex, resolveTarget } from '../src/boot-target.js';
import { tempDir, testIo } from './helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

describe('resolveTarget', () => {
  it('a disk file, an index URL, an index file recognised by its first bytes', async () => {
    await writeFile(join(dir, 'deb.img'), 'x');
    await writeFile(join(dir, 'latest'), 'thfc-index 1\nname deb\n');
    const io = testIo({ cwd: dir });
    expect(await resolveTarget({ image: 'deb.img' }, io)).toMatchObject({
      kind: 'file',
      location: join(dir, 'deb.img'),
      name: 'deb',
    });
    expect(await resolveTarget({ image: 'http://m/x/deb.idx' }, io)).toMatchObject({
      kind: 'index',
      location: 'http://m/x/deb.idx',
      name: 'deb',
    });
    expect(await resolveTarget({ image: 'latest' }, io)).toMatchObject({
      kind: 'index',
      location: join(dir, 'latest'),
    });
  });

  it('a catalog name: its index (as a path for file:// catalogs) and its entry', async () => {
    await writeFile(
      join(dir, 'catalog.json'),
      JSON.stringify({ format: 'thfc-catalog', version: 1, images: [{ name: 'menu-name', index: 'store/deb.idx' }] }),
    );
    const t = await resolveTarget({ image: 'menu-name', catalog: '.' }, testIo({ cwd: dir }));
    expect(t).toMatchObject({
      kind: 'index',
      source: 'catalog',
      location: join(dir, 'store/deb.idx'),
      name: 'menu-name',
      diskName: 'deb',
    });
    expect(t.entry?.name).toBe('menu-name');
  });

  it('names an index after its file', () => {
    expect(nameOfIndex('http://m/a/debian%2012.idx?x=1')).toBe('debian 12');
    expect(nameOfIndex('/s/knoppix.idx')).toBe('knoppix');
  });
});
