import { decodeIndex, encodeIndex } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { RefBook } from '../src/ref-book.js';

describe('RefBook', () => {
  it('packs and restores every field of a ref, up to 4 MiB sizes', () => {
    const book = new RefBook();
    const refs = [
      { id: 'a'.repeat(40), codec: 'zstd' as const, storedSize: 1, size: 4096 },
      { id: 'b'.repeat(40), codec: 'none' as const, storedSize: 4 * 1024 * 1024, size: 4 * 1024 * 1024 },
      { id: 'c'.repeat(64), codec: 'zlib' as const, storedSize: 4 * 1024 * 1024 - 1, size: 4 * 1024 * 1024 },
    ];
    for (const r of refs) book.add(r);
    for (const r of refs) expect(book.get(r.id)).toEqual(r);
    expect(book.get('d'.repeat(40))).toBeUndefined();
    expect(book.size).toBe(3);
  });

  it('learns every block of an index once per digest', () => {
    const bytes = encodeIndex(
      {
        version: 1,
        name: 'x',
        size: 10000,
        blockSize: 4096,
        hash: 'sha1',
        codec: 'zstd:3',
        created: '2026-11-27T09:00:00Z',
      },
      [
        { id: '1'.repeat(40), codec: 'zstd', storedSize: 22 },
        { zero: true },
        { id: '2'.repeat(40), codec: 'none', storedSize: 1808 },
      ],
    );
    const d = decodeIndex(bytes);
    const book = new RefBook();
    book.addIndex(d.index, d.digest);
    expect(book.knows(d.digest)).toBe(true);
    expect(book.get('2'.repeat(40))).toEqual({ id: '2'.repeat(40), codec: 'none', storedSize: 1808, size: 1808 });
    expect(book.get('1'.repeat(40))?.size).toBe(4096);
    expect(book.has('3'.repeat(40))).toBe(false);
  });

  it('takes an id shared by two indexes from the one added later, and a ref added alone over both', () => {
    const header = {
      version: 1,
      name: 'x',
      size: 4096,
      blockSize: 4096,
      hash: 'sha1' as const,
      codec: 'zstd:3',
      created: '2026-11-27T09:00:00Z',
    };
    const older = decodeIndex(encodeIndex(header, [{ id: '1'.repeat(40), codec: 'zstd', storedSize: 22 }]));
    const newer = decodeIndex(encodeIndex(header, [{ id: '1'.repeat(40), codec: 'zlib', storedSize: 33 }]));
    const book = new RefBook();
    book.addIndex(older.index, older.digest);
    book.addIndex(newer.index, newer.digest);
    book.addIndex(older.index, older.digest);
    expect(book.get('1'.repeat(40))).toEqual({ id: '1'.repeat(40), codec: 'zlib', storedSize: 33, size: 4096 });
    book.add({ id: '1'.repeat(40), codec: 'none', storedSize: 4096, size: 4096 });
    expect(book.get('1'.repeat(40))?.codec).toBe('none');
  });
});
