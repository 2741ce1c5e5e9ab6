import { describe, expect, it } from 'vitest';
import { classifyImage } from '../src/image-ref.js';

const facts = { isFile: false, looksLikeIndex: false, hasCatalog: false };

describe('classifyImage', () => {
  it('URLs and *.idx are indexes', () => {
    expect(classifyImage('http://m/x.idx', facts)).toEqual({ kind: 'index', url: 'http://m/x.idx' });
    expect(classifyImage('file:///s/x.idx', facts)).toEqual({ kind: 'index', url: 'file:///s/x.idx' });
    expect(classifyImage('store/x.idx', { ...facts, isFile: true })).toEqual({ kind: 'index', url: 'store/x.idx' });
  });
  it('an index file under another name is recognised by its content', () => {
    expect(classifyImage('latest', { ...facts, isFile: true, looksLikeIndex: true })).toEqual({
      kind: 'index',
      url: 'latest',
    });
  });
  it('an existing file is a disk', () => {
    expect(classifyImage('/mnt/thfc/debian', { ...facts, isFile: true })).toEqual({
      kind: 'file',
      path: '/mnt/thfc/debian',
    });
  });
  it('a bare word is a catalog name, given a catalog', () => {
    expect(classifyImage('debian', { ...facts, hasCatalog: true })).toEqual({ kind: 'catalog', name: 'debian' });
    expect(() => classifyImage('debian', facts)).toThrow(/--catalog/);
  });
  it('missing files say so', () => {
    expect(() => classifyImage('/no/such', facts)).toThrow(/no such file/);
    expect(() => classifyImage('gone.idx', { ...facts, hasCatalog: true })).toThrow(/no such index/);
  });
  it('a directory says so, not "no such file"', () => {
    expect(() => classifyImage('/srv/images', { ...facts, isDirectory: true })).toThrow(/is a directory/);
  });
  it('with --pool a bare NAME (or NAME.idx) is an index the pool serves', () => {
    expect(classifyImage('debian', { ...facts, hasPool: true })).toEqual({ kind: 'index', url: 'debian' });
    expect(classifyImage('debian.idx', { ...facts, hasPool: true })).toEqual({ kind: 'index', url: 'debian.idx' });
    expect(() => classifyImage('./x/debian', { ...facts, hasPool: true })).toThrow(/no such file/);
  });
});
