import { describe, expect, it } from 'vitest';
import { parseRequestTarget } from '../../src/routes/request-target.js';

const SHA1 = 'ab'.padEnd(40, '0');
const SHA256 = 'cd'.padEnd(64, 'f');

describe('parseRequestTarget', () => {
  it('routes blocks, files, the listing, health and metrics', () => {
    expect(parseRequestTarget(`/blocks/ab/${SHA1}`)).toEqual({ kind: 'block', id: SHA1 });
    expect(parseRequestTarget(`/blocks/cd/${SHA256}`)).toEqual({ kind: 'block', id: SHA256 });
    expect(parseRequestTarget(`/blocks/ab/${SHA1}?x=1`)).toEqual({ kind: 'block', id: SHA1 });
    expect(parseRequestTarget('/debian-12.idx')).toEqual({ kind: 'file', name: 'debian-12.idx' });
    expect(parseRequestTarget('/catalog.json')).toEqual({ kind: 'file', name: 'catalog.json' });
    expect(parseRequestTarget('/release.pub')).toEqual({ kind: 'file', name: 'release.pub' });
    expect(parseRequestTarget('/debian-12.profile')).toEqual({ kind: 'file', name: 'debian-12.profile' });
    expect(parseRequestTarget('/index.json')).toEqual({ kind: 'listing' });
    expect(parseRequestTarget('/healthz')).toEqual({ kind: 'healthz' });
    expect(parseRequestTarget('/metrics')).toEqual({ kind: 'metrics' });
  });

  it('serves retained versions and their list, and nothing else under versions/', () => {
    const f = '20261206T101500Z-0123456789ab.idx';
    expect(parseRequestTarget(`/versions/debian-12/${f}`)).toEqual({ kind: 'file', name: `versions/debian-12/${f}` });
    expect(parseRequestTarget('/versions/debian-12/versions.json')).toEqual({
      kind: 'file',
      name: 'versions/debian-12/versions.json',
    });
    expect(parseRequestTarget('/versions/debian-12/signing.key')).toEqual({ kind: 'unknown' });
    expect(parseRequestTarget('/versions/debian-12/.tmp-versions.json.1.ab')).toEqual({ kind: 'unknown' });
    expect(parseRequestTarget('/versions/a/b/versions.json')).toEqual({ kind: 'unknown' });
    expect(parseRequestTarget('/versions/../versions.json').kind).toBe('bad');
  });

  it('calls well-formed paths that name nothing unknown', () => {
    const notServed = ['/release.key', '/mirrors', '/blocks', '/run.sh', '/.idx', '/x.idx.bak'];
    for (const t of ['/', '/a/b', '/.hidden', '/.tmp-x.idx', '/-dash', '/x'.padEnd(140, 'y'), ...notServed]) {
      expect(parseRequestTarget(t).kind, t).toBe('unknown');
    }
  });

  it('refuses traversal, encodings, control bytes and malformed block names before any path is built', () => {
    const hostile = [
      '/../etc/passwd',
      '/blocks/../../etc/passwd',
      '/a/../b.idx',
      '/./b.idx',
      '/%2e%2e/etc/passwd',
      '/%2E%2E%2Fetc%2Fpasswd',
      '/..%2fsecret',
      '/blocks%2fab%2f' + SHA1,
      '/..\\secret',
      '/a\\b.idx',
      '/a\0.idx',
      '/a%00.idx',
      '/a\r\nx: y',
      '//etc/passwd',
      'http://evil/a.idx',
      '*',
      '',
      `/blocks/ab/${SHA1.toUpperCase()}`,
      `/blocks/ab/${SHA1}0`,
      `/blocks/ab/${SHA1.slice(1)}`,
      `/blocks/cd/${SHA1}`,
      `/blocks/ab/${SHA1}/x`,
      `/blocks/ab/../${SHA1}`,
      '/blocks/ab/..',
      `/${'a'.repeat(2000)}`,
    ];
    for (const t of hostile) expect(parseRequestTarget(t).kind, JSON.stringify(t)).toBe('bad');
    expect(parseRequestTarget(undefined).kind).toBe('bad');
  });
});
