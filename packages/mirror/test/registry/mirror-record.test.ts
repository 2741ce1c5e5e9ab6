import { InvalidArgumentError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import {
  decodeMirrorRecord,
  encodeMirrorRecord,
  mirrorIdFromUrl,
  normaliseMirrorUrl,
  validateMirrorRecord,
} from '../../src/registry/mirror-record.js';
import { record } from './registry-contract.js';

describe('mirror records', () => {
  it('ids are host:port of the URL, with the scheme default port', () => {
    expect(mirrorIdFromUrl('http://127.0.0.2:8080/x/')).toBe('127.0.0.2:8080');
    expect(mirrorIdFromUrl('http://mirror.example.org/')).toBe('mirror.example.org:80');
    expect(mirrorIdFromUrl('https://mirror.example.org/')).toBe('mirror.example.org:443');
    expect(mirrorIdFromUrl('http://[::1]:9/')).toBe('[::1]:9');
  });

  it('URLs are normalised to a directory, without query or fragment', () => {
    expect(normaliseMirrorUrl('http://a:1')).toBe('http://a:1/');
    expect(normaliseMirrorUrl('http://a:1/store?x=1#y')).toBe('http://a:1/store/');
    expect(() => normaliseMirrorUrl('file:///srv')).toThrow(/not http/);
    expect(() => normaliseMirrorUrl('http://user:pw@a/')).toThrow(/credentials/);
    expect(() => normaliseMirrorUrl('not a url')).toThrow(/not a URL/);
  });

  it('round-trips through JSON', () => {
    expect(decodeMirrorRecord(encodeMirrorRecord(record()))).toEqual(record());
  });

  it('names the bad field', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not a JSON object/],
      [[], /not a JSON object/],
      [{ ...record(), id: '' }, /id/],
      [{ ...record(), id: 'has space' }, /id/],
      [{ ...record(), url: 3 }, /url/],
      [{ ...record(), region: 'JP' }, /region/],
      [{ ...record(), region: 'a.b' }, /region/],
      [{ ...record(), capacity: 1.5 }, /capacity/],
      [{ ...record(), load: -1 }, /load/],
      [{ ...record(), load: Number.NaN }, /load/],
      [{ ...record(), health: 'bad' }, /health/],
      [{ ...record(), updated: 'now' }, /updated/],
    ];
    for (const [value, pattern] of cases) {
      expect(() => validateMirrorRecord(value), JSON.stringify(value)).toThrow(InvalidArgumentError);
      expect(() => validateMirrorRecord(value)).toThrow(pattern);
    }
    expect(() => decodeMirrorRecord('{')).toThrow(/not valid JSON/);
  });

  it('drops unknown fields and freezes the result', () => {
    const r = validateMirrorRecord({ ...record(), extra: 'x' });
    expect(r).toEqual(record());
    expect(Object.isFrozen(r)).toBe(true);
  });
});
