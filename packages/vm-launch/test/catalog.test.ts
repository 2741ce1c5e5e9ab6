import { decodeCatalog } from '@thfc/format';
import { SAMPLE_CATALOG as good } from '@thfc/format/testing';
import { describe, expect, it } from 'vitest';
import { catalogUrl, findEntry, isUrl, resolveEntry } from '../src/catalog.js';

const decode = (v: unknown) => decodeCatalog(JSON.stringify(v), 'cat.json');

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
