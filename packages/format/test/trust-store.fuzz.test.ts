import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrustStoreFormatError } from '../src/errors.js';
import { decodeTrustStore, encodeTrustStore, mergeTrustStores } from '../src/trust-store.js';

/**
 * The trust-store decoder under hostile input: it returns, or it throws
 * TrustStoreFormatError naming a line, and nothing else; whatever it accepts
 * encodes back to a file that decodes to the same lines.
 */
const SEED = 20261127;
const VALID = [
  'thfc-trust 1',
  '# keys',
  'key iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w= expires=2027-07-01 scope=debian-*,alpine label=release',
  'key 0KvZ1b0qKSmX0S8Eo2mLgR6ioL/F5aFq2Vd3cr2M1GU=',
  'revoke 3c1f0a6e9b2d4f51',
  '',
].join('\n');

function check(bytes: Uint8Array): void {
  let decoded: ReturnType<typeof decodeTrustStore>;
  try {
    decoded = decodeTrustStore(bytes, 'fuzz');
  } catch (e) {
    expect(e).toBeInstanceOf(TrustStoreFormatError);
    return;
  }
  expect(decodeTrustStore(encodeTrustStore(decoded), 'fuzz').lines).toEqual(decoded.lines);
  mergeTrustStores([decoded]);
}

describe('decodeTrustStore, fuzzed', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (b) => check(b)),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('a valid store with bytes flipped, cut or spliced', () => {
    const base = Buffer.from(VALID);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0x00, max: 0xff })), { maxLength: 4 }),
        fc.nat(base.length),
        fc.constantFrom(' ', '=', ',', '*', '\n', 'key ', 'revoke ', 'scope=', 'expires='),
        (flips, cut, splice) => {
          const b = Buffer.from(base);
          for (const [at, v] of flips) b[at] = v;
          check(b);
          check(b.subarray(0, cut));
          check(Buffer.concat([b.subarray(0, cut), Buffer.from(splice), b.subarray(cut)]));
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });
});
