import { IndexFormatError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { decodeListing, encodeListing } from '../src/store-listing.js';

const entry = {
  name: 'debian-12',
  file: 'debian-12.idx',
  bytes: 1580,
  sha256: 'a'.repeat(64),
  digest: `sha256:${'b'.repeat(64)}`,
};

describe('store listing', () => {
  it('round-trips and ignores unknown keys', () => {
    const text = encodeListing([entry]);
    expect(JSON.parse(text)).toEqual({ format: 'thfc-store-listing', version: 1, indexes: [entry] });
    expect(decodeListing(text, 'u')).toEqual([entry]);
    const extra = JSON.stringify({ format: 'thfc-store-listing', version: 1, more: 1, indexes: [{ ...entry, x: 2 }] });
    expect(decodeListing(extra, 'u')).toEqual([entry]);
  });

  it('carries what else the store holds for an image (profile, versions), each optional', () => {
    const full = {
      ...entry,
      profile: { bytes: 120, sha256: 'c'.repeat(64) },
      versions: [`sha256:${'d'.repeat(64)}`, `sha256:${'e'.repeat(64)}`],
    };
    const none = { ...entry, name: 'b', file: 'b.idx', profile: null, versions: [] };
    const unsaid = { ...entry, name: 'c', file: 'c.idx' };
    const text = encodeListing([full, none, unsaid]);
    expect(JSON.parse(text).indexes).toEqual([full, none, unsaid]);
    // Not said (an older mirror, a hand-made file) stays undefined: a replica then asks, as before.
    expect(decodeListing(text, 'u')).toEqual([full, none, unsaid]);
    expect(decodeListing(text, 'u')[2]).not.toHaveProperty('profile');
  });

  it('refuses anything sync could turn into a bad file name or a wrong skip, naming the entry', () => {
    const doc = (indexes: unknown[], over: Record<string, unknown> = {}) =>
      JSON.stringify({ format: 'thfc-store-listing', version: 1, indexes, ...over });
    const cases: [string, RegExp][] = [
      ['nope', /not JSON/],
      ['[]', /format/],
      [doc([], { version: 2 }), /version 2 is not supported/],
      [doc([], { indexes: {} }), /not an array/],
      [doc([{ ...entry, name: '../etc' }]), /indexes\[0\]\.name/],
      [doc([{ ...entry, name: 'x.idx', file: 'x.idx.idx' }]), /indexes\[0\]\.name/],
      [doc([{ ...entry, file: 'other.idx' }]), /indexes\[0\]\.file/],
      [doc([{ ...entry, bytes: 0 }]), /bytes/],
      [doc([{ ...entry, sha256: 'A'.repeat(64) }]), /sha256/],
      [doc([{ ...entry, digest: 'md5:x' }]), /digest/],
      [doc([entry, entry]), /listed twice/],
      [doc([{ ...entry, profile: 'yes' }]), /indexes\[0\]\.profile/],
      [doc([{ ...entry, profile: { bytes: 1, sha256: 'x' } }]), /indexes\[0\]\.profile/],
      [doc([{ ...entry, profile: { bytes: -1, sha256: 'c'.repeat(64) } }]), /indexes\[0\]\.profile/],
      [doc([{ ...entry, versions: 'sha256:x' }]), /indexes\[0\]\.versions/],
      [doc([{ ...entry, versions: ['md5:x'] }]), /indexes\[0\]\.versions/],
      [doc([{ ...entry, versions: Array(65).fill(entry.digest) }]), /indexes\[0\]\.versions/],
    ];
    for (const [text, message] of cases) {
      expect(() => decodeListing(text, 'http://u/index.json'), text).toThrow(message);
      expect(() => decodeListing(text, 'http://u/index.json')).toThrow(IndexFormatError);
    }
  });
});
