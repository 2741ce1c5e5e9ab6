import { UsageError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FILE_CAPACITY, parseMirrorsFile } from '../../src/registry/mirrors-file.js';

describe('parseMirrorsFile', () => {
  it('reads URL REGION [CAPACITY] lines, skipping comments and blank lines', () => {
    const text = [
      '# thfc mirrors',
      '',
      'http://127.0.0.1:8080/   jp  32   # the origin',
      '   http://mirror.example.org/thfc  us',
      'https://[2001:db8::1]:8443/s eu 8',
    ].join('\n');
    expect(parseMirrorsFile(text)).toEqual([
      { id: '127.0.0.1:8080', url: 'http://127.0.0.1:8080/', region: 'jp', capacity: 32 },
      {
        id: 'mirror.example.org:80',
        url: 'http://mirror.example.org/thfc/',
        region: 'us',
        capacity: DEFAULT_FILE_CAPACITY,
      },
      { id: '[2001:db8::1]:8443', url: 'https://[2001:db8::1]:8443/s/', region: 'eu', capacity: 8 },
    ]);
  });

  it('an empty file lists no mirrors', () => {
    expect(parseMirrorsFile('')).toEqual([]);
    expect(parseMirrorsFile('# nothing yet\n')).toEqual([]);
  });

  it('names the file and line of every mistake', () => {
    const cases: [string, RegExp][] = [
      ['http://a/', /m\.txt line 1: expected "URL REGION \[CAPACITY\]", found 1 field/],
      ['\nhttp://a/ jp 1 extra', /line 2: .*found 4 field/],
      ['ftp://a/ jp', /line 1: url: "ftp:\/\/a\/" is not http/],
      ['http://a/ JP', /line 1: region must be a lower-case word/],
      ['http://a/ jp 0', /line 1: capacity must be a whole number >= 1/],
      ['http://a/ jp many', /line 1: capacity/],
      ['http://a/ jp\nhttp://a:80/x us', /line 2: mirror a:80 is already listed on line 1/],
    ];
    for (const [text, pattern] of cases) {
      expect(() => parseMirrorsFile(text, 'm.txt'), text).toThrow(UsageError);
      expect(() => parseMirrorsFile(text, 'm.txt'), text).toThrow(pattern);
    }
  });

  it('refuses a file too large to be a mirrors file', () => {
    expect(() => parseMirrorsFile('#'.repeat(2 * 1024 * 1024))).toThrow(/larger than/);
  });
});
