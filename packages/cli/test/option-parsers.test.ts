import { InvalidArgumentError } from '@thfc/format';
import { describe, expect, it } from 'vitest';
import { count, seconds, size, wholeSeconds } from '../src/option-parsers.js';

/** The message a parser throws for V, or the value it returns. */
function parse(parser: (v: string) => number, v: string): number | string {
  try {
    return parser(v);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return (e as Error).message;
  }
}

describe('option parsers', () => {
  it('size: bytes with a unit; a bad one names the flag', () => {
    expect(parse(size('--cache-size'), '2G')).toBe(2 * 1024 ** 3);
    expect(parse(size('--cache-size'), '4096')).toBe(4096);
    expect(parse(size('--cache-size'), 'lots')).toMatch(/^--cache-size: /);
  });

  it('count: a whole number no smaller than its minimum', () => {
    expect(parse(count('--retries', 1), '3')).toBe(3);
    expect(parse(count('--readahead', 0), '0')).toBe(0);
    expect(parse(count('--retries', 1), '0')).toBe('--retries must be a whole number >= 1, not "0"');
    expect(parse(count('--retries', 1), '1.5')).toBe('--retries must be a whole number >= 1, not "1.5"');
    expect(parse(count('--keep', 0), 'x')).toBe('--keep must be a whole number >= 0, not "x"');
  });

  it('seconds: a positive number, fractions allowed', () => {
    expect(parse(seconds('--timeout'), '2.5')).toBe(2.5);
    expect(parse(seconds('--timeout'), '0')).toBe('--timeout must be a positive number of seconds, not "0"');
    expect(parse(seconds('--timeout'), 'Infinity')).toBe(
      '--timeout must be a positive number of seconds, not "Infinity"',
    );
  });

  it('wholeSeconds: digits only, 0 allowed', () => {
    expect(parse(wholeSeconds('--boot-timeout'), '0')).toBe(0);
    expect(parse(wholeSeconds('--boot-timeout'), '90')).toBe(90);
    for (const bad of ['-1', '1.5', '1e3', ' 9']) {
      expect(parse(wholeSeconds('--boot-timeout'), bad)).toBe(
        `--boot-timeout must be whole seconds >= 0, not "${bad}"`,
      );
    }
  });
});
