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

  it('a catalog entry pinned to a digest keeps its pin, over http and as a path (issue 15 §1)', async () => {
    const pin = `#sha256:${'ab'.repeat(32)}`;
    await writeFile(
      join(dir, 'catalog.json'),
      JSON.stringify({ format: 'thfc-catalog', version: 1, images: [{ name: 'deb', index: `store/deb.idx${pin}` }] }),
    );
    const t = await resolveTarget({ image: 'deb', catalog: '.' }, testIo({ cwd: dir }));
    expect(t).toMatchObject({ kind: 'index', location: `${join(dir, 'store', 'deb.idx')}${pin}`, name: 'deb' });
    expect(t.diskName).toBe('deb');
    expect(await resolveTarget({ image: `http://m/x/deb.idx${pin}` }, testIo({ cwd: dir }))).toMatchObject({
      location: `http://m/x/deb.idx${pin}`,
      name: 'deb',
    });
    await writeFile(join(dir, 'local.idx'), 'thfc-index 1\nname local\n');
    await writeFile(join(dir, 'disk.img'), 'x');
    expect(await resolveTarget({ image: `local.idx${pin}` }, testIo({ cwd: dir }))).toMatchObject({
      kind: 'index',
      location: `${join(dir, 'local.idx')}${pin}`,
      name: 'local',
    });
    await expect(resolveTarget({ image: `disk.img${pin}` }, testIo({ cwd: dir }))).rejects.toThrow(
      /not of a disk file/,
    );
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
