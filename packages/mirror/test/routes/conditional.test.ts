import { describe, expect, it } from 'vitest';
import { etagMatches, ifRangeAllows, parseRange } from '../../src/routes/conditional.js';

describe('parseRange', () => {
  it('serves the whole file without a usable Range', () => {
    for (const h of [
      undefined,
      'bytes=',
      'bytes=-',
      'items=0-1',
      'bytes=0-1,3-4',
      'bytes=5-2',
      'bytes=a-b',
      'bytes=-1-2',
    ]) {
      expect(parseRange(h, 100), String(h)).toEqual({ kind: 'full' });
    }
  });

  it('selects a single range, clipped to the file', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=90-1000', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange(' bytes=99-99 ', 100)).toEqual({ kind: 'partial', start: 99, end: 99 });
  });

  it('says unsatisfiable when no byte is selected', () => {
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=100-200', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});

describe('etagMatches / ifRangeAllows', () => {
  it('compares weakly for If-None-Match, strongly for If-Range', () => {
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('"x", W/"a"', '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches(undefined, '"a"')).toBe(false);
    expect(ifRangeAllows(undefined, '"a"')).toBe(true);
    expect(ifRangeAllows('"a"', '"a"')).toBe(true);
    expect(ifRangeAllows('W/"a"', '"a"')).toBe(false);
    expect(ifRangeAllows('Wed, 21 Oct 2015 07:28:00 GMT', '"a"')).toBe(false);
  });
});
