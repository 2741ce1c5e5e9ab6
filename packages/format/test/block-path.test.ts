import { describe, expect, it } from 'vitest';
import { assertImageName, blockPath, indexFileName, isImageName } from '../src/block-path.js';
import { InvalidArgumentError } from '../src/errors.js';

const SHA1 = 'a9993e364706816aba3e25717850c26c9cd0d89d';
const SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('blockPath', () => {
  it('shards by the first hex pair', () => {
    expect(blockPath(SHA1)).toBe(`blocks/a9/${SHA1}`);
    expect(blockPath(SHA256)).toBe(`blocks/ba/${SHA256}`);
  });

  it('refuses anything that is not a block name, so no path can escape the store', () => {
    for (const bad of ['', '..', `../${SHA1.slice(3)}`, SHA1.toUpperCase(), `${SHA1}/x`, 'a9/../../etc/passwd']) {
      expect(() => blockPath(bad), bad).toThrow(InvalidArgumentError);
    }
  });
});

describe('image names', () => {
  it('accepts the safe alphabet, 1 to 128 characters', () => {
    for (const good of ['a', 'debian', 'Debian-12.5_amd64+gui', '0', 'x'.repeat(128), 'a.img', 'v1.idx2']) {
      expect(isImageName(good), good).toBe(true);
      expect(assertImageName(good)).toBe(good);
    }
  });

  it('rejects empty, too long, leading punctuation, separators, spaces and a .idx suffix', () => {
    for (const bad of [
      '',
      'x'.repeat(129),
      '.hidden',
      '-flag',
      '_x',
      'a/b',
      'a\\b',
      'a b',
      '..',
      'debian.idx',
      'é',
      'a\n',
    ]) {
      expect(isImageName(bad), JSON.stringify(bad)).toBe(false);
      expect(() => assertImageName(bad)).toThrow(InvalidArgumentError);
    }
  });

  it('names the index file NAME.idx and checks the name', () => {
    expect(indexFileName('debian')).toBe('debian.idx');
    expect(() => indexFileName('../x')).toThrow(InvalidArgumentError);
  });
});
