import { createHash } from 'node:crypto';
import { IndexFormatError, InvalidArgumentError } from '@thfc/format';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSeal, encodeSeal, MAX_SEAL_ENTRIES } from '../src/cache/cache-seal.js';

const A = 'a'.repeat(40);
const B = `b${'0'.repeat(63)}`;
const C = `c${'1'.repeat(39)}`;
const ID1 = '2049 1234567 262144 1764000000123456789 1764000000123456700';
const ID2 = '2049 7654321 4096 1764000000999999999 0';

/** A seal's text with a correct end line, for tests that change its body. */
function sealOf(body: string): Buffer {
  return Buffer.from(`${body}end sha256:${createHash('sha256').update(body).digest('hex')}\n`, 'latin1');
}

function errorOf(bytes: Uint8Array): IndexFormatError {
  try {
    decodeSeal(bytes, '/c/seal');
  } catch (e) {
    expect(e).toBeInstanceOf(IndexFormatError);
    return e as IndexFormatError;
  }
  throw new Error('decoded');
}

describe('encodeSeal / decodeSeal', () => {
  it('round-trips, with entries in id order, and reads as the format says', () => {
    const bytes = encodeSeal(
      new Map([
        [B, ID2],
        [A, ID1],
      ]),
    );
    const text = Buffer.from(bytes).toString('latin1');
    const lines = text.split('\n');
    expect(lines.slice(0, 4)).toEqual(['thfc-cache-seal 1', 'entries 2', `${A} ${ID1}`, `${B} ${ID2}`]);
    expect(lines[4]).toMatch(/^end sha256:[0-9a-f]{64}$/);
    expect(lines[5]).toBe('');
    expect([...decodeSeal(bytes)]).toEqual([
      [A, ID1],
      [B, ID2],
    ]);
  });

  it('an empty seal is valid', () => {
    expect(decodeSeal(encodeSeal([])).size).toBe(0);
  });

  it('takes numbers up to their type’s limit and negative times', () => {
    const edge =
      '18446744073709551615 18446744073709551615 18446744073709551615 -9223372036854775807 9223372036854775807';
    expect(decodeSeal(encodeSeal([[A, edge]])).get(A)).toBe(edge);
  });

  it('encode refuses what decode would: a bad id, a bad identity, an id twice', () => {
    expect(() => encodeSeal([['xyz', ID1]])).toThrow(InvalidArgumentError);
    expect(() => encodeSeal([[A, '1 2 3 4']])).toThrow(InvalidArgumentError);
    expect(() => encodeSeal([[A, '1 2 03 4 5']])).toThrow(InvalidArgumentError);
    expect(() => encodeSeal([[A, '18446744073709551616 2 3 4 5']])).toThrow(InvalidArgumentError);
    expect(() =>
      encodeSeal([
        [A, ID1],
        [A, ID2],
      ]),
    ).toThrow(/listed twice/);
  });

  it.each([
    ['a wrong magic', 'thfc-index 1\nentries 0\n', 1, 'version'],
    ['another version', 'thfc-cache-seal 2\nentries 0\n', 1, 'version'],
    ['no count', 'thfc-cache-seal 1\ncount 0\n', 2, 'entries'],
    ['a count with a leading zero', 'thfc-cache-seal 1\nentries 01\n', 2, 'entries'],
    ['an id that is not one', `thfc-cache-seal 1\nentries 1\n${'g'.repeat(40)} ${ID1}\n`, 3, 'id'],
    ['an upper-case id', `thfc-cache-seal 1\nentries 1\n${'A'.repeat(40)} ${ID1}\n`, 3, 'id'],
    ['a missing column', `thfc-cache-seal 1\nentries 1\n${A} 1 2 3 4\n`, 3, 'mtime'],
    ['an extra column', `thfc-cache-seal 1\nentries 1\n${A} ${ID1} 9\n`, 3, undefined],
    ['a leading zero', `thfc-cache-seal 1\nentries 1\n${A} 1 02 3 4 5\n`, 3, 'ino'],
    ['a negative size', `thfc-cache-seal 1\nentries 1\n${A} 1 2 -3 4 5\n`, 3, 'size'],
    ['a dev past 2^64', `thfc-cache-seal 1\nentries 1\n${A} 18446744073709551616 2 3 4 5\n`, 3, 'dev'],
    ['a time past 2^63', `thfc-cache-seal 1\nentries 1\n${A} 1 2 3 9223372036854775808 5\n`, 3, 'ctime'],
    ['"-0"', `thfc-cache-seal 1\nentries 1\n${A} 1 2 3 4 -0\n`, 3, 'mtime'],
    ['two spaces', `thfc-cache-seal 1\nentries 1\n${A}  1 2 3 4 5\n`, 3, 'dev'],
    ['ids out of order', `thfc-cache-seal 1\nentries 2\n${B} ${ID1}\n${A} ${ID2}\n`, 4, 'id'],
    ['an id twice', `thfc-cache-seal 1\nentries 2\n${A} ${ID1}\n${A} ${ID2}\n`, 4, 'id'],
  ])('refuses %s, naming the line and column', (_what, body, line, field) => {
    const e = errorOf(sealOf(body));
    expect(e.line).toBe(line);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(new RegExp(`^/c/seal: line ${line}`));
  });

  it('refuses a truncated seal: no final newline, fewer lines than declared, no end line', () => {
    const good = Buffer.from(encodeSeal([[A, ID1]]));
    expect(errorOf(good.subarray(0, good.length - 1)).message).toMatch(/truncated: the last line has no newline/);
    const cut = good.subarray(0, good.indexOf('\nend ') + 1);
    expect(errorOf(cut)).toMatchObject({ line: 4, field: 'end' });
    expect(errorOf(Buffer.from('thfc-cache-seal 1\n'))).toMatchObject({ line: 2 });
    expect(errorOf(Buffer.alloc(0)).message).toMatch(/truncated/);
  });

  it('refuses a changed body (the end digest) and text after the end line', () => {
    const good = Buffer.from(encodeSeal([[A, ID1]]));
    const changed = Buffer.from(good);
    changed[good.indexOf(' 1234567 ') + 1] = '9'.charCodeAt(0); // another inode, well formed
    expect(errorOf(changed)).toMatchObject({ line: 4, field: 'end' });
    expect(errorOf(changed).message).toMatch(/does not match/);
    expect(errorOf(Buffer.concat([good, Buffer.from(`${C} ${ID2}\n`)]))).toMatchObject({ line: 5 });
  });

  it('refuses a count past the limit without reading on', () => {
    expect(errorOf(sealOf(`thfc-cache-seal 1\nentries ${MAX_SEAL_ENTRIES + 1}\n`))).toMatchObject({
      line: 2,
      field: 'entries',
    });
  });

  it('under hostile input it returns or throws IndexFormatError, nothing else', () => {
    const base = Buffer.from(
      encodeSeal([
        [A, ID1],
        [B, ID2],
        [C, ID1],
      ]),
    );
    const check = (b: Uint8Array) => {
      let decoded: Map<string, string>;
      try {
        decoded = decodeSeal(b);
      } catch (e) {
        expect(e).toBeInstanceOf(IndexFormatError);
        return;
      }
      expect(decodeSeal(encodeSeal(decoded))).toEqual(decoded);
    };
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        fc.nat(base.length),
        fc.constantFrom(' ', '\n', '0', '-', 'entries ', 'end '),
        (flips, cut, splice) => {
          const b = Buffer.from(base);
          for (const [at, v] of flips) b[at] = v;
          check(b);
          check(b.subarray(0, cut));
          check(Buffer.concat([b.subarray(0, cut), Buffer.from(splice), b.subarray(cut)]));
        },
      ),
      { seed: 20261128, numRuns: 400 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => check(b)),
      { seed: 20261128, numRuns: 300 },
    );
  });
});
