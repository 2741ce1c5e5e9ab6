import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockId } from '../src/block-id.js';
import { IndexFormatError } from '../src/errors.js';
import {
  type DecodedIndex,
  decodeIndex,
  encodeIndex,
  IndexDecoder,
  type IndexEntry,
  type IndexHeader,
  signIndex,
  verifyIndexSignatures,
} from '../src/image-index.js';
import { generateSigningKey, parsePrivateKey, parsePublicKey } from '../src/signature.js';

/**
 * The decoder's contract under hostile input: it returns, or it throws
 * IndexFormatError, and nothing else; it is as fast on garbage as on a valid
 * index; and feeding the same bytes in chunks changes nothing.
 */
const SEED = 20261127;
/**
 * A hang detector, not a speed test: a decode of a few KiB takes well under a
 * millisecond, but on two shared cores a GC pause or a busy neighbour has
 * been seen to take 200 ms. Anything quadratic or unbounded would still take
 * far longer than this.
 */
const MAX_RUN_MS = 2000;

const HEADER: IndexHeader = {
  version: 1,
  name: 'fuzz',
  size: 5 * 4096 + 123,
  blockSize: 4096,
  hash: 'sha1',
  codec: 'zstd:3',
  created: '2026-11-27T09:00:00Z',
  previous: `sha256:${'0f'.repeat(32)}`,
};

const ENTRIES: IndexEntry[] = [
  { id: blockId(new Uint8Array([1]), 'sha1'), codec: 'zstd', storedSize: 1234 },
  { zero: true },
  { id: blockId(new Uint8Array([2]), 'sha1'), codec: 'none', storedSize: 4096 },
  { id: blockId(new Uint8Array([3]), 'sha1'), codec: 'zlib', storedSize: 4095 },
  { zero: true },
  { id: blockId(new Uint8Array([4]), 'sha1'), codec: 'zstd', storedSize: 122 },
];

const keyA = generateSigningKey();
const keyB = generateSigningKey();
const UNSIGNED = encodeIndex(HEADER, ENTRIES);
const SIGNED = signIndex(
  signIndex(UNSIGNED, parsePrivateKey(keyA.privateKeyPem), parsePublicKey(keyA.publicKeyPem)),
  parsePrivateKey(keyB.privateKeyPem),
  parsePublicKey(keyB.publicKeyPem),
);
const BASE_DIGEST = decodeIndex(SIGNED).digest;

type Outcome = { ok: DecodedIndex } | { error: IndexFormatError };

/** Decodes whole or in chunks of the given sizes (cycled); any error other than IndexFormatError escapes. */
function outcome(bytes: Uint8Array, chunks?: readonly number[]): Outcome {
  try {
    if (!chunks || chunks.length === 0) return { ok: decodeIndex(bytes) };
    const d = new IndexDecoder();
    for (let off = 0, i = 0; off < bytes.length; i++) {
      const n = chunks[i % chunks.length] as number;
      d.push(bytes.subarray(off, off + n));
      off += n;
    }
    return { ok: d.finish() };
  } catch (e) {
    if (e instanceof IndexFormatError) return { error: e };
    throw e;
  }
}

function summary(o: Outcome): string {
  return 'ok' in o ? `ok ${o.ok.digest} ${o.ok.signatures.length}` : `error ${o.error.message}`;
}

/** Decodes whole and chunked, checks the two agree and were fast, and returns the whole-input outcome. */
function checkDecoder(bytes: Uint8Array, chunks: readonly number[]): Outcome {
  const t0 = performance.now();
  const whole = outcome(bytes);
  const chunked = outcome(bytes, chunks);
  const ms = performance.now() - t0;
  expect(ms).toBeLessThan(MAX_RUN_MS);
  expect(summary(chunked)).toBe(summary(whole));
  if ('error' in whole) {
    expect(whole.error.line === undefined || whole.error.line >= 1).toBe(true);
  } else {
    // Whatever decodes must at least survive signature checking.
    expect(verifyIndexSignatures(whole.ok).every((v) => typeof v.valid === 'boolean')).toBe(true);
  }
  return whole;
}

const chunkSizes = fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 });

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'insert'; at: number; byte: number }
  | { kind: 'delete'; at: number }
  | { kind: 'truncate'; at: number };

/** Bytes that matter to the grammar come up often; any byte can. */
const interestingByte = fc.oneof(fc.constantFrom(0x0a, 0x20, 0x30, 0x39, 0x61, 0x66, 0x3d, 0x00, 0xff), fc.nat(255));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: interestingByte }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(base: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = (b[at] as number) ^ m.xor;
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else b = b.subarray(0, at);
  }
  return b;
}

/** Tokens of the grammar, to reach deeper states than random bytes do. */
const token = fc.constantFrom(
  'thfc-index',
  '1',
  'name',
  'fuzz',
  'size',
  '20603',
  'block-size',
  '4096',
  'hash',
  'sha1',
  'sha256',
  'codec',
  'zstd:3',
  'created',
  '2026-11-27T09:00:00Z',
  'previous',
  'blocks',
  '6',
  '2147483647',
  'zero',
  'none',
  'zlib',
  'zstd',
  blockId(new Uint8Array([1]), 'sha1'),
  'end',
  `sha256:${'0f'.repeat(32)}`,
  'sig',
  'ed25519',
  '\n',
  ' ',
  '',
);

describe('decodeIndex under fuzzing', () => {
  it('arbitrary bytes: returns or throws IndexFormatError, whole or chunked', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), chunkSizes, (bytes, chunks) => {
        checkDecoder(bytes, chunks);
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('a valid header prefix followed by arbitrary bytes', () => {
    const prefix = UNSIGNED.subarray(0, Buffer.from(UNSIGNED).indexOf('blocks'));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), chunkSizes, (tail, chunks) => {
        checkDecoder(Buffer.concat([prefix, tail]), chunks);
      }),
      { seed: SEED + 1, numRuns: 500 },
    );
  });

  it('token soup from the grammar', () => {
    fc.assert(
      fc.property(fc.array(token, { maxLength: 80 }), chunkSizes, (tokens, chunks) => {
        checkDecoder(Buffer.from(`thfc-index 1\n${tokens.join(' ')}\n`, 'latin1'), chunks);
      }),
      { seed: SEED + 2, numRuns: 500 },
    );
  });

  it('a valid signed index with random flips, insertions, deletions and truncations', () => {
    const body = Buffer.from(SIGNED).subarray(0, Buffer.from(SIGNED).indexOf('\nsig ') + 1);
    let decoded = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), chunkSizes, (mutations, chunks) => {
        const bytes = mutate(SIGNED, mutations);
        const o = checkDecoder(bytes, chunks);
        if ('ok' in o) {
          // Only changes after the end line can leave an index decodable, and they never change its identity.
          decoded++;
          expect(o.ok.digest).toBe(BASE_DIGEST);
          expect(Buffer.from(o.ok.bytes).subarray(0, body.length).equals(body)).toBe(true);
        }
      }),
      { seed: SEED + 3, numRuns: 2000 },
    );
    // Truncations at the end of a signature line decode; make sure that path was exercised.
    expect(decoded).toBeGreaterThan(0);
  });

  it('valid indexes round-trip, whole and chunked', () => {
    const entry = (length: number): fc.Arbitrary<IndexEntry> =>
      fc.oneof(
        fc.constant<IndexEntry>({ zero: true }),
        fc.constant<IndexEntry>({
          id: blockId(new Uint8Array([length & 0xff]), 'sha1'),
          codec: 'none',
          storedSize: length,
        }),
        fc.record({
          id: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex')),
          codec: fc.constantFrom('zstd' as const, 'zlib' as const),
          storedSize: fc.integer({ min: 1, max: Math.max(1, length - 1) }),
        }),
      );
    const index = fc
      .record({ blocks: fc.integer({ min: 1, max: 40 }), tail: fc.integer({ min: 2, max: 4096 }) })
      .chain(({ blocks, tail }) =>
        fc.tuple(
          fc.constant((blocks - 1) * 4096 + tail),
          fc.tuple(...Array.from({ length: blocks }, (_, i) => entry(i === blocks - 1 ? tail : 4096))),
        ),
      );
    fc.assert(
      fc.property(index, chunkSizes, ([size, entries], chunks) => {
        const bytes = encodeIndex({ ...HEADER, size, previous: undefined }, entries);
        const o = checkDecoder(bytes, chunks);
        expect('ok' in o).toBe(true);
        if ('ok' in o) expect([...o.ok.index.entries()]).toEqual(entries);
      }),
      { seed: SEED + 4, numRuns: 300 },
    );
  });
});

describe('memory is bounded by the bytes received, not by counts the input claims', () => {
  const maxBlocksHeader = [
    'thfc-index 1',
    'name huge',
    `size ${(2 ** 31 - 1) * 4194304}`,
    'block-size 4194304',
    'hash sha256',
    'codec zstd:3',
    'created 2026-11-27T09:00:00Z',
    `blocks ${2 ** 31 - 1}`,
    '',
  ].join('\n');

  function measure(input: Uint8Array): { error: IndexFormatError; ms: number; grew: number } {
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const o = outcome(input);
    const ms = performance.now() - t0;
    const grew = process.memoryUsage().arrayBuffers - before;
    if (!('error' in o)) throw new Error('expected the index to be refused');
    return { error: o.error, ms, grew };
  }

  it('a header claiming 2^31-1 blocks and no entries fails fast without allocating for them', () => {
    const { error, ms, grew } = measure(Buffer.from(maxBlocksHeader));
    expect(error.reason).toMatch(/truncated: 0 of 2147483647 block entries/);
    expect(error.line).toBe(9);
    expect(ms).toBeLessThan(MAX_RUN_MS);
    expect(grew).toBeLessThan(1024 * 1024);
  });

  it('a few thousand entries of such a header grow storage only for those entries', () => {
    const input = Buffer.from(maxBlocksHeader + 'zero\n'.repeat(3000));
    const { error, grew } = measure(input);
    expect(error.reason).toMatch(/truncated: 3000 of 2147483647/);
    // 4096 slots × (32-byte id + 1-byte codec + 4-byte size) ≈ 150 KiB, plus the input itself.
    expect(grew).toBeLessThan(2 * 1024 * 1024);
  });
});
