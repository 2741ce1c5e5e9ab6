import { describe, expect, it } from 'vitest';
import { catalogUrl, decodeCatalog, findEntry, isUrl, resolveEntry } from '../src/catalog.js';
import { CatalogFormatError } from '../src/errors.js';

const good = {
  format: 'thfc-catalog',
  version: 1,
  images: [
    {
      name: 'debian',
      index: 'debian.idx',
      description: 'Debian 12',
      boot: {
        mem: 512,
        cpus: 2,
        kernel: 'boot/vmlinux',
        initrd: 'boot/initrd.gz',
        append: 'root=/dev/vda',
        net: 'user',
      },
    },
    { name: 'bare', index: 'https://other.example/x/bare.idx' },
  ],
};
const decode = (v: unknown) => decodeCatalog(JSON.stringify(v), 'cat.json');

function rejects(v: unknown, field: string | undefined, reason: RegExp): void {
  try {
    decodeCatalog(typeof v === 'string' ? v : JSON.stringify(v), 'cat.json');
  } catch (e) {
    expect(e).toBeInstanceOf(CatalogFormatError);
    expect((e as CatalogFormatError).field).toBe(field);
    expect((e as CatalogFormatError).message).toMatch(reason);
    return;
  }
  throw new Error('accepted a bad catalog');
}

describe('decodeCatalog', () => {
  it('reads entries with their boot defaults', () => {
    const c = decode(good);
    expect(c.images.map((e) => e.name)).toEqual(['debian', 'bare']);
    expect(c.images[0]?.boot).toMatchObject({ mem: 512, cpus: 2, kernel: 'boot/vmlinux', net: 'user' });
    expect(c.images[1]).toEqual({ name: 'bare', index: 'https://other.example/x/bare.idx', description: '', boot: {} });
  });

  it('names the bad field', () => {
    rejects('{', undefined, /not JSON/);
    rejects([], undefined, /object/);
    rejects({ ...good, format: 'x' }, 'format', /thfc-catalog/);
    rejects({ ...good, version: 2 }, 'version', /unsupported version 2/);
    rejects({ ...good, images: {} }, 'images', /array/);
    rejects({ ...good, images: [{ index: 'a.idx' }] }, 'images[0].name', /letters/);
    rejects({ ...good, images: [{ name: '../x', index: 'a.idx' }] }, 'images[0].name', /letters/);
    rejects(
      {
        ...good,
        images: [
          { name: 'a', index: 'a.idx' },
          { name: 'a', index: 'b.idx' },
        ],
      },
      'images[1].name',
      /twice/,
    );
    rejects({ ...good, images: [{ name: 'a' }] }, 'images[0].index', /index URL/);
    rejects({ ...good, images: [{ name: 'a', index: 'a.idx', descr: 'typo' }] }, 'images[0].descr', /unknown field/);
    rejects(
      { ...good, images: [{ name: 'a', index: 'a.idx', boot: { memory: 5 } }] },
      'images[0].boot.memory',
      /unknown/,
    );
    rejects({ ...good, images: [{ name: 'a', index: 'a.idx', boot: { mem: 8 } }] }, 'images[0].boot.mem', />= 16/);
    rejects(
      { ...good, images: [{ name: 'a', index: 'a.idx', boot: { cpus: 1.5 } }] },
      'images[0].boot.cpus',
      /integer/,
    );
    rejects(
      { ...good, images: [{ name: 'a', index: 'a.idx', boot: { net: 'tap' } }] },
      'images[0].boot.net',
      /user, none/,
    );
    rejects(
      { ...good, images: [{ name: 'a', index: 'a.idx', boot: { kernel: '' } }] },
      'images[0].boot.kernel',
      /non-empty/,
    );
  });
});

describe('catalog locations', () => {
  it('completes a store URL or directory with catalog.json', () => {
    expect(catalogUrl('http://m.example/store', '/')).toBe('http://m.example/store/catalog.json');
    expect(catalogUrl('http://m.example/store/', '/')).toBe('http://m.example/store/catalog.json');
    expect(catalogUrl('http://m.example/s/menu.json', '/')).toBe('http://m.example/s/menu.json');
    expect(catalogUrl('store', '/srv')).toBe('file:///srv/store/catalog.json');
    expect(catalogUrl('/srv/x/catalog.json', '/')).toBe('file:///srv/x/catalog.json');
    expect(isUrl('file:///x')).toBe(true);
    expect(isUrl('/x')).toBe(false);
  });

  it('resolves entry URLs against the catalog, so a mirrored store keeps working', () => {
    const c = decode(good);
    const e = resolveEntry(findEntry(c, 'debian', 'c'), 'http://mirror.example/pub/catalog.json');
    expect(e.indexUrl).toBe('http://mirror.example/pub/debian.idx');
    expect(e.kernelUrl).toBe('http://mirror.example/pub/boot/vmlinux');
    expect(e.initrdUrl).toBe('http://mirror.example/pub/boot/initrd.gz');
    const b = resolveEntry(findEntry(c, 'bare', 'c'), 'file:///srv/catalog.json');
    expect(b.indexUrl).toBe('https://other.example/x/bare.idx');
    expect(b.kernelUrl).toBeUndefined();
  });

  it('an unknown name lists the ones there are', () => {
    expect(() => findEntry(decode(good), 'knoppix', 'cat.json')).toThrow(/no image named "knoppix".*debian, bare/);
  });
});
