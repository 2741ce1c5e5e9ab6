import { describe, expect, it } from 'vitest';
import { decodeCatalog, encodeCatalog } from '../src/catalog.js';
import { CatalogFormatError } from '../src/errors.js';
import { SAMPLE_CATALOG as good } from '../src/testing/sample-catalog.js';

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

describe('encodeCatalog', () => {
  it('writes what decodeCatalog reads back, leaving out an empty description and absent boot keys', () => {
    const c = decode(good);
    const text = encodeCatalog(c);
    expect(decodeCatalog(text, 'x')).toEqual(c);
    expect(text.endsWith('}\n')).toBe(true);
    expect(JSON.parse(text).images[1]).toEqual({ name: 'bare', index: 'https://other.example/x/bare.idx' });
    expect(JSON.parse(text)).toEqual(good);
  });

  it('an empty catalog is a version 1 document with no images', () => {
    expect(JSON.parse(encodeCatalog({ images: [] }))).toEqual({ format: 'thfc-catalog', version: 1, images: [] });
  });
});

describe('unknown fields', () => {
  const newer = {
    ...good,
    mirrors: ['http://m2/'],
    images: [{ name: 'a', index: 'a.idx', icon: 'a.png', boot: { mem: 64, tpm: true } }],
  };

  it('a reader refuses them; a writer that asks keeps them through encode', () => {
    rejects(newer, 'images[0].icon', /unknown field/);
    rejects({ ...good, mirrors: [] }, 'mirrors', /unknown field/);
    const kept = decodeCatalog(JSON.stringify(newer), 'x', { keepUnknownFields: true });
    expect(kept.images[0]?.extra).toEqual({ icon: 'a.png' });
    expect(JSON.parse(encodeCatalog(kept))).toEqual(newer);
  });
});
