import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CATALOG_FILE } from '@thfc/format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCatalogAdd, runCatalogRemove } from '../src/catalog.js';
import { runPack } from '../src/pack.js';
import { tempDir, testIo, writeImage } from './helpers.js';

const K = 1024;
let dir: string;
let cleanup: () => Promise<void>;
let store: string;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
  store = join(dir, 'store');
  for (const name of ['debian', 'knoppix']) {
    const img = join(dir, `${name}.img`);
    await writeImage(img, [['t', 64 * K]], name.length);
    await runPack({ image: img, store, blockSize: 64 * K }, testIo());
  }
});
afterEach(() => cleanup());

const catalog = async () => JSON.parse(await readFile(join(store, CATALOG_FILE), 'utf8'));

describe('thfc-pack catalog', () => {
  it('add creates catalog.json with URLs relative to it, named after the index', async () => {
    await mkdir(join(store, 'boot'));
    await writeFile(join(store, 'boot/vmlinux'), 'k');
    await writeFile(join(store, 'boot/initrd.gz'), 'i');
    const r = await runCatalogAdd({
      store,
      index: 'debian.idx',
      description: 'Debian 12',
      boot: { kernel: 'boot/vmlinux', initrd: join(store, 'boot/initrd.gz'), append: 'root=/dev/vda', mem: 256 },
    });
    expect(r).toMatchObject({ action: 'added', changed: ['debian'], images: 1 });
    expect(await catalog()).toEqual({
      format: 'thfc-catalog',
      version: 1,
      images: [
        {
          name: 'debian',
          index: 'debian.idx',
          description: 'Debian 12',
          boot: { mem: 256, kernel: 'boot/vmlinux', initrd: 'boot/initrd.gz', append: 'root=/dev/vda' },
        },
      ],
    });
  });

  it('add again replaces the entry in place; other entries and unknown fields are kept', async () => {
    await runCatalogAdd({ store, index: join(store, 'debian.idx') });
    await runCatalogAdd({ store, index: 'knoppix.idx', name: 'knoppix-5.3.1' });
    const doc = await catalog();
    doc.images[1].extra = 'from a newer writer';
    await writeFile(join(store, CATALOG_FILE), JSON.stringify(doc));
    const r = await runCatalogAdd({ store, index: 'debian.idx', description: 'updated', boot: { net: 'user' } });
    expect(r.action).toBe('replaced');
    const after = await catalog();
    expect(after.images.map((e: { name: string }) => e.name)).toEqual(['debian', 'knoppix-5.3.1']);
    expect(after.images[0]).toEqual({
      name: 'debian',
      index: 'debian.idx',
      description: 'updated',
      boot: { net: 'user' },
    });
    expect(after.images[1].extra).toBe('from a newer writer');
  });

  it('remove takes entries out; an unknown name is refused and nothing changes', async () => {
    await runCatalogAdd({ store, index: 'debian.idx' });
    await runCatalogAdd({ store, index: 'knoppix.idx' });
    await expect(runCatalogRemove({ store, names: ['debian', 'plan9'] })).rejects.toThrow(
      /no entry named plan9.*debian, knoppix/,
    );
    expect((await catalog()).images).toHaveLength(2);
    expect(await runCatalogRemove({ store, names: ['debian'] })).toMatchObject({ images: 1, action: 'removed' });
    expect((await catalog()).images.map((e: { name: string }) => e.name)).toEqual(['knoppix']);
  });

  it('writes atomically: no temp files left behind', async () => {
    await runCatalogAdd({ store, index: 'debian.idx' });
    await runCatalogAdd({ store, index: 'knoppix.idx' });
    expect((await readdir(store)).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('refuses what the reader would reject, and files outside the store', async () => {
    await expect(runCatalogAdd({ store, index: 'debian.idx', name: 'a b' })).rejects.toThrow(/catalog name "a b"/);
    await expect(runCatalogAdd({ store, index: 'nope.idx' })).rejects.toThrow(/nope\.idx/);
    await writeFile(join(dir, 'outside-vmlinux'), 'k');
    await expect(
      runCatalogAdd({ store, index: 'debian.idx', boot: { kernel: join(dir, 'outside-vmlinux') } }),
    ).rejects.toThrow(/outside .*copy it into the store/);
    await expect(runCatalogAdd({ store, index: 'debian.idx', boot: { kernel: 'boot/none' } })).rejects.toThrow(
      /no such file/,
    );
    await expect(runCatalogAdd({ store, index: 'debian.idx', boot: { append: 'x' } })).rejects.toThrow(
      /--append needs --kernel/,
    );
    await expect(runCatalogAdd({ store, index: 'debian.idx', boot: { mem: 4 } })).rejects.toThrow(/at least 16/);
    expect(
      await runCatalogAdd({ store, index: 'debian.idx', boot: { kernel: 'https://k.example/vmlinuz' } }),
    ).toMatchObject({
      action: 'added',
    });
  });

  it('never rewrites a catalog it does not understand', async () => {
    await writeFile(join(store, CATALOG_FILE), JSON.stringify({ format: 'thfc-catalog', version: 2, images: [] }));
    await expect(runCatalogAdd({ store, index: 'debian.idx' })).rejects.toThrow(/version 2/);
    await writeFile(join(store, CATALOG_FILE), '{oops');
    await expect(runCatalogAdd({ store, index: 'debian.idx' })).rejects.toThrow(/not JSON/);
    expect(await readFile(join(store, CATALOG_FILE), 'utf8')).toBe('{oops');
  });
});
