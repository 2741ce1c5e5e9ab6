import { describe, expect, it } from 'vitest';
import {
  decodeVersionList,
  encodeVersionList,
  findVersion,
  type ImageVersion,
  versionFileName,
} from '../src/version-list.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const v = (created: string, digest: string): ImageVersion => ({
  file: versionFileName(created, digest),
  created,
  digest,
  bytes: 100,
});

describe('version list', () => {
  it('names version files by compact creation time and 12 hex digits of the digest', () => {
    expect(versionFileName('2026-12-06T10:15:00Z', d('a'))).toBe('20261206T101500Z-aaaaaaaaaaaa.idx');
    expect(() => versionFileName('2026-12-06 10:15', d('a'))).toThrow(/created/);
  });

  it('round-trips, newest first, and finds versions by unique prefix only', () => {
    const list = {
      name: 'debian',
      latest: d('a'),
      versions: [v('2026-01-01T00:00:00Z', d('a')), v('2026-02-01T00:00:00Z', d('b'))],
    };
    const back = decodeVersionList(encodeVersionList(list), 'x');
    expect(back.versions.map((x) => x.digest)).toEqual([d('b'), d('a')]);
    expect(findVersion(back, 'aaaaaaaaaaaa')?.digest).toBe(d('a'));
    expect(findVersion(back, `sha256:${'b'.repeat(20)}`)?.digest).toBe(d('b'));
    expect(findVersion(back, 'aaaa')).toBeUndefined(); // too short to be safe
  });

  it('is strict on what becomes a path, and names the bad field', () => {
    const good = JSON.parse(
      encodeVersionList({ name: 'n', latest: undefined, versions: [v('2026-01-01T00:00:00Z', d('a'))] }),
    );
    type Doc = { name: string; version: number; versions: Record<string, unknown>[] };
    const bad = (mutate: (doc: Doc) => void) => {
      const doc = structuredClone(good);
      mutate(doc);
      return () => decodeVersionList(JSON.stringify(doc), 'L');
    };
    expect(bad((x) => ((x.versions[0] as Record<string, unknown>).file = '../../etc/passwd'))).toThrow(
      /versions\[0\]\.file/,
    );
    expect(bad((x) => (x.name = '../x'))).toThrow(/name/);
    expect(bad((x) => (x.version = 2))).toThrow(/version 2/);
    expect(bad((x) => x.versions.push(x.versions[0] as Record<string, unknown>))).toThrow(/listed twice/);
    expect(bad((x) => ((x.versions[0] as Record<string, unknown>).bytes = 0))).toThrow(/bytes/);
    expect(() => decodeVersionList('nope', 'L')).toThrow(/not JSON/);
  });
});
